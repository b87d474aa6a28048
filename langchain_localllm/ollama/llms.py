"""``Ollama``: models served by a local Ollama server (``/api/generate``), plus model management."""

from __future__ import annotations

import base64
import re
from typing import Any, ClassVar, Literal

from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import GenerationChunk
from pydantic import PrivateAttr, field_validator

from langchain_localllm._core.base.peers import warn_no_effect
from langchain_localllm._core.base.timings import timings_info
from langchain_localllm._core.http.errors import OLLAMA, ServerKind
from langchain_localllm._core.server.exchange import AnswerReader, ServerRequest, text_field
from langchain_localllm._core.server.llm import ServerLLM, drop_none, nanos_to_ms
from langchain_localllm.errors import MalformedResponseError, UnsupportedParameterError
from langchain_localllm.ollama.client import DEFAULT_OLLAMA_PORT, OllamaConnection, ollama_base_url_from_env
from langchain_localllm.ollama.options import OPTION_FIELDS, OllamaOptions

__all__ = ["DEFAULT_OLLAMA_PORT", "Ollama", "OllamaLLM", "OllamaModel", "ollama_base_url_from_env"]

#: Top-level request fields set on the instance (and overridable per call).
_REQUEST_FIELDS = ("system", "template", "raw", "format", "keep_alive")
#: How many texts' token counts an instance remembers.
_TOKEN_COUNTS_KEPT = 256
#: Top-level request fields only given per call.
_CALL_ONLY_FIELDS = ("suffix", "images")


def ollama_timings(event: dict[str, Any]) -> dict[str, Any]:
    """The timings of a final ``/api/generate`` or ``/api/chat`` event (nanoseconds -> ms)."""
    timings = timings_info(
        event.get("prompt_eval_count"),
        nanos_to_ms(event.get("prompt_eval_duration")),
        event.get("eval_count"),
        nanos_to_ms(event.get("eval_duration")),
    )
    load_ms, total_ms = nanos_to_ms(event.get("load_duration")), nanos_to_ms(event.get("total_duration"))
    timings.update(drop_none({"load_ms": load_ms, "total_ms": total_ms}))
    return timings


class OllamaModel(OllamaConnection, OllamaOptions):
    """What ``Ollama`` and ``ChatOllama`` know of their model: ``/api/show`` (asked once per
    connection: the Ollama client keeps it), the context window, the template and token counts."""

    model: str
    """Name of the Ollama model (``name[:tag]``)."""

    counts_tokens_locally: ClassVar[bool] = False
    """Counting tokens runs the model on the server (Ollama's API has no tokenizer)."""

    _token_counts: dict[tuple[str, str, str], int] = PrivateAttr(default_factory=dict)

    @property
    def model_name(self) -> str:
        """The Ollama model name."""
        return self.model

    @property
    def _model_for_errors(self) -> str | None:
        return self.model

    def show(self, model: str | None = None) -> dict[str, Any]:
        """``POST /api/show`` for ``model`` (default: this instance's): ``template``,
        ``parameters``, ``details`` (``family``...), ``model_info``. Asked once per model
        while the connection settings stay the same.

        Raises ``ModelNotFoundError`` if the server does not have the model.
        """
        return self.ollama_client.cached_show(model or self.model)

    def get_context_window(self) -> int | None:
        """``num_ctx`` if set, else the model's ``num_ctx`` parameter, else its trained context length."""
        if self.num_ctx is not None:
            return self.num_ctx
        if isinstance((self.options or {}).get("num_ctx"), int):
            return int((self.options or {})["num_ctx"])
        info = self.show()
        match = re.search(r"^\s*num_ctx\s+(\d+)", str(info.get("parameters") or ""), re.MULTILINE)
        if match:
            return int(match.group(1))
        model_info = info.get("model_info")
        for key, value in (model_info if isinstance(model_info, dict) else {}).items():
            if key.endswith(".context_length") and isinstance(value, int):
                return value
        return None

    def chat_template(self) -> str | None:
        """The model's prompt template from ``/api/show`` (Ollama's Go template syntax)."""
        from langchain_localllm.prompts.template_source import sourced

        template = self.show().get("template")
        label = f"Ollama /api/show of model {self.model!r} at {self.base_url}"
        return sourced(template, label) if isinstance(template, str) and template else None

    def get_token_ids(self, text: str) -> list[int]:
        """Not available: Ollama's API has no tokenizer endpoint, so token ids never leave the server.

        Raises ``UnsupportedParameterError`` saying so. :meth:`get_num_tokens` counts tokens
        (by running the model on the text); for ids, load the model's GGUF file with
        ``LlamaCpp(model_path=...)``.
        """
        raise UnsupportedParameterError(
            "Ollama: token ids are not available, because Ollama's API has no tokenizer endpoint. "
            "get_num_tokens(text) counts tokens by having the server evaluate the text (a one-token "
            "generation); for ids, open the model's GGUF file with LlamaCpp(model_path=...).get_token_ids.",
            parameter="get_token_ids",
        )

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text`` for this model, counted by the server: **each new text runs the model**.

        Ollama's API has no tokenizer endpoint, so this sends ``text`` raw with
        ``num_predict=1`` and reads ``prompt_eval_count`` (the model's own tokenizer, BOS
        included): one prompt evaluation and one generated token per distinct text (counts
        are remembered per instance). The chains of this package therefore estimate
        instead of calling this for every chunk (``counts_tokens_locally`` is False).
        """
        server = self.base_url if isinstance(self.base_url, str) else " ".join(self.base_url)
        key = (server, self.model, text)  # copies share the dict: key by server and model
        cached = self._token_counts.get(key)
        if cached is not None:
            return cached
        payload = {
            "model": self.model,
            "prompt": text,
            "raw": True,
            "stream": False,
            "options": {**self._instance_options(), "num_predict": 1},
        }
        answer = self.client.post_json("/api/generate", payload, model=self.model)
        count = answer.get("prompt_eval_count") if isinstance(answer, dict) else None
        if not isinstance(count, int):
            url = self.client.url("/api/generate")
            raise MalformedResponseError(f"{url} answered without prompt_eval_count: {answer!r}", url=url)
        if len(self._token_counts) >= _TOKEN_COUNTS_KEPT:
            self._token_counts.pop(next(iter(self._token_counts)))
        self._token_counts[key] = count
        return count


class Ollama(OllamaModel, ServerLLM):
    """A model served by a local Ollama server.

    Setup:
        Install Ollama, start it and pull a model:

        ```bash
        ollama serve            # or start the Ollama app
        ollama pull llama3.2
        ```

        ``base_url`` defaults to ``OLLAMA_HOST`` when set, else ``http://localhost:11434``.

    Key init args — generation params:
        model: str
            Name of the Ollama model, e.g. ``"llama3.2"`` or ``"gemma3:1b"``.
        num_predict: int | None
            Most tokens to generate (-1: no limit).
        temperature: float | None
            Sampling temperature.
        num_ctx: int | None
            Context window to run the model with.
        stop: list[str] | None
            Stop sequences.
        format: "json" | dict | None
            JSON mode, or a JSON schema the answer must follow.

    Key init args — client params:
        base_url: str
            Root URL of the server.
        keep_alive: int | str | None
            How long the server keeps the model loaded after a call.
        timeout: float | None
            Read timeout in seconds.

    Instantiate:
        ```python
        from langchain_localllm import Ollama

        llm = Ollama(model="llama3.2", temperature=0.2, num_predict=256)
        ```

    Invoke:
        ```python
        llm.invoke("Why is the sky blue?")
        llm.invoke("Why is the sky blue?", options={"seed": 7})  # merged with the instance's
        ```

    Stream:
        ```python
        for token in llm.stream("Tell me a story"):
            print(token, end="", flush=True)
        ```

    Async:
        ```python
        await llm.ainvoke("Why is the sky blue?")
        async for token in llm.astream("Tell me a story"):
            print(token, end="")
        ```

    Model management:
        ```python
        llm.list_models()          # /api/tags
        llm.show()["template"]     # /api/show
        llm.pull()                 # /api/pull, with a progress bar
        llm.server_version()       # /api/version
        ```

    Errors are typed: ``ServerUnreachableError`` when nothing listens (with how to start
    Ollama), ``ModelNotFoundError`` for a model the server does not have (with the
    ``ollama pull`` command), ``GenerationError`` for an error reported mid-stream
    (``partial_text`` keeps what was already streamed).
    """

    _server_kind: ClassVar[ServerKind] = OLLAMA
    _call_params: ClassVar[frozenset[str]] = frozenset(
        (*OPTION_FIELDS, *_REQUEST_FIELDS, *_CALL_ONLY_FIELDS, "options", "reasoning")
    )

    system: str | None = None
    """System prompt (overrides the model's)."""

    template: str | None = None
    """Prompt template (Go template syntax; overrides the model's)."""

    raw: bool | None = None
    """Send the prompt as is, without the model's template."""

    format: Literal["json"] | dict[str, Any] | None = None
    """``"json"`` for JSON mode, or a JSON schema the answer must follow."""

    keep_alive: int | str | None = None
    """How long the model stays loaded after the call (``"5m"``, seconds, ``0`` to unload)."""

    reasoning: bool | None = None
    """Whether a thinking model thinks first (Ollama's ``think``); the thoughts go to
    ``generation_info["thinking"]``, not the text. None: the model's default."""

    auth: tuple[str, str] | Any = None
    """``(user, password)`` for HTTP basic authentication by a proxy in front of Ollama.
    (langchain-community's callable ``auth`` has no effect here: use ``headers=``.)"""

    @field_validator("format", mode="before")
    @classmethod
    def _no_format(cls, value: Any) -> Any:
        return None if value == "" else value  # langchain-ollama's default: no format

    def model_post_init(self, context: Any, /) -> None:
        if self.auth is not None and not _is_user_password(self.auth):
            reason = "only a (user, password) tuple is used; pass other credentials with headers="
            warn_no_effect(type(self).__name__, "auth", self.auth, reason, stacklevel=4)
        super().model_post_init(context)

    def _request_headers(self) -> dict[str, str]:
        headers = super()._request_headers()
        if _is_user_password(self.auth):
            user, password = self.auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            headers.setdefault("Authorization", f"Basic {token}")
        return headers

    # --- LangChain identity -------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "ollama"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "model": self.model,
            "options": self._instance_options(),
            **drop_none({name: getattr(self, name) for name in _REQUEST_FIELDS}),
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="ollama", ls_model_name=self.model, ls_model_type="llm")
        options = self._merged_options(kwargs)
        if options.get("temperature") is not None:
            params["ls_temperature"] = options["temperature"]
        if options.get("num_predict") is not None:
            params["ls_max_tokens"] = options["num_predict"]
        stops = self._stop_sequences(stop)
        if stops:
            params["ls_stop"] = stops
        return params

    # --- requests -------------------------------------------------------------------------

    def _build_request(self, prompt: str, stop: list[str], kwargs: dict[str, Any]) -> ServerRequest:
        options = self._merged_options(kwargs)
        if stop:
            options["stop"] = list(dict.fromkeys([*options.get("stop", []), *stop]))
        payload: dict[str, Any] = {"model": self.model, "prompt": prompt, "stream": self.streaming}
        for name in (*_REQUEST_FIELDS, *_CALL_ONLY_FIELDS):
            value = kwargs.get(name, getattr(self, name, None))
            if value is not None:
                payload[name] = value
        reasoning = kwargs.get("reasoning", self.reasoning)
        if reasoning is not None:
            payload["think"] = reasoning
        if options:
            payload["options"] = options
        return ServerRequest("/api/generate", payload, "ndjson" if self.streaming else None)

    def _new_reader(self) -> AnswerReader[GenerationChunk]:
        return _GenerateReader(self.model, self.client.url("/api/generate"))

    # --- model information and management --------------------------------------------------

    def server_version(self) -> str:
        """The Ollama server's version (``GET /api/version``)."""
        return self.ollama_client.version()

    def list_models(self) -> list[dict[str, Any]]:
        """The models the server has (``GET /api/tags``): dicts with ``name``, ``size``, ``details``..."""
        return self.ollama_client.list_models()

    async def alist_models(self) -> list[dict[str, Any]]:
        """Async :meth:`list_models`."""
        return await self.ollama_client.alist_models()

    def pull(
        self, model: str | None = None, *, progress: bool = True, insecure: bool = False
    ) -> dict[str, Any]:
        """Download ``model`` (default: this instance's) into the server (``POST /api/pull``),
        with a progress bar per layer (``progress=False`` for none). Returns the last status."""
        return self.ollama_client.pull(model or self.model, progress=progress, insecure=insecure)


def _is_user_password(auth: Any) -> bool:
    return isinstance(auth, tuple | list) and len(auth) == 2 and all(isinstance(x, str) for x in auth)


class _GenerateReader(AnswerReader[GenerationChunk]):
    """``/api/generate`` answers: NDJSON ``{"response", "done": false}`` lines then a final line."""

    def __init__(self, model: str, url: str) -> None:
        self.model = model
        self.url = url
        self.thinking: list[str] = []

    def feed(self, event: Any) -> GenerationChunk | None:
        if not isinstance(event, dict) or not ("response" in event or "done" in event):
            raise MalformedResponseError(
                f"Ollama sent a line that is not a generate response: {event!r}", event=event
            )
        text = text_field(event.get("response"), self.url, "a response")
        thinking = text_field(event.get("thinking"), self.url, "thinking")
        if thinking:
            self.thinking.append(thinking)
        if not event.get("done"):
            return GenerationChunk(text=text) if text else None
        self.done = True
        return GenerationChunk(text=text, generation_info=self._final_info(event))

    def _final_info(self, event: dict[str, Any]) -> dict[str, Any]:
        prompt_tokens = event.get("prompt_eval_count")
        completion_tokens = event.get("eval_count")
        timings = ollama_timings(event)
        info: dict[str, Any] = {
            "finish_reason": event.get("done_reason"),
            "done_reason": event.get("done_reason"),
            "model": event.get("model") or self.model,
            "created_at": event.get("created_at"),
        }
        if isinstance(prompt_tokens, int) or isinstance(completion_tokens, int):
            p = prompt_tokens if isinstance(prompt_tokens, int) else 0
            c = completion_tokens if isinstance(completion_tokens, int) else 0
            info["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        if timings:
            info["timings"] = timings
        if self.thinking:
            info["thinking"] = "".join(self.thinking)
        return drop_none(info)


OllamaLLM = Ollama
"""langchain-ollama's name for the Ollama LLM: ``from langchain_localllm import OllamaLLM`` works too."""
