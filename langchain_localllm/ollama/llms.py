"""``Ollama``: models served by a local Ollama server (``/api/generate``), plus model management."""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar, Literal

from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import GenerationChunk
from pydantic import Field, PrivateAttr

from langchain_localllm._core.generation_info import timings_info
from langchain_localllm._core.http_errors import OLLAMA, ServerKind
from langchain_localllm._core.http_llm import (
    ResponseParser,
    ServerLLM,
    ServerRequest,
    drop_none,
    nanos_to_ms,
)
from langchain_localllm.errors import (
    GenerationError,
    MalformedResponseError,
    ModelNotFoundError,
    ServerResponseError,
)
from langchain_localllm.ollama.options import _OPTION_FIELDS, OllamaOptions

#: Top-level request fields set on the instance (and overridable per call).
_REQUEST_FIELDS = ("system", "template", "raw", "format", "keep_alive")
#: Top-level request fields only given per call.
_CALL_ONLY_FIELDS = ("suffix", "images")

DEFAULT_OLLAMA_PORT = 11434


def ollama_base_url_from_env() -> str:
    """``OLLAMA_HOST`` as a URL (``host``, ``host:port``, ``:port`` or a full URL), else localhost."""
    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return f"http://localhost:{DEFAULT_OLLAMA_PORT}"
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    rest = rest.rstrip("/")
    hostname, colon, port = rest.rpartition(":") if not rest.endswith("]") else (rest, "", "")
    if not colon or not port.isdigit():
        hostname, port = rest, str(DEFAULT_OLLAMA_PORT)
    if hostname in ("", "0.0.0.0"):  # the server listens everywhere; connect locally
        hostname = "127.0.0.1"
    return f"{scheme}://{hostname}:{port}"


class Ollama(OllamaOptions, ServerLLM):
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
        (*_OPTION_FIELDS, *_REQUEST_FIELDS, *_CALL_ONLY_FIELDS, "options")
    )

    model: str
    """Name of the Ollama model (``name[:tag]``)."""

    base_url: str = Field(default_factory=ollama_base_url_from_env)
    """Root URL of the Ollama server; default from ``OLLAMA_HOST``, else ``http://localhost:11434``."""

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

    _show: dict[str, Any] | None = PrivateAttr(default=None)

    # --- LangChain identity -------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "ollama"

    @property
    def model_name(self) -> str:
        """The Ollama model name."""
        return self.model

    @property
    def _model_for_errors(self) -> str | None:
        return self.model

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
        if options:
            payload["options"] = options
        return ServerRequest("/api/generate", payload, "ndjson" if self.streaming else None)

    def _new_parser(self) -> ResponseParser:
        return _GenerateParser(self.model)

    # --- model information and management --------------------------------------------------

    def server_version(self) -> str:
        """The Ollama server's version (``GET /api/version``)."""
        answer = self.client.get_json("/api/version")
        return str(answer.get("version")) if isinstance(answer, dict) else str(answer)

    def list_models(self) -> list[dict[str, Any]]:
        """The models the server has (``GET /api/tags``): dicts with ``name``, ``size``, ``details``..."""
        answer = self.client.get_json("/api/tags")
        models = answer.get("models") if isinstance(answer, dict) else None
        return list(models or [])

    async def alist_models(self) -> list[dict[str, Any]]:
        """Async :meth:`list_models`."""
        answer = await self.client.aget_json("/api/tags")
        models = answer.get("models") if isinstance(answer, dict) else None
        return list(models or [])

    def show(self, model: str | None = None) -> dict[str, Any]:
        """``POST /api/show`` for ``model`` (default: this instance's, cached): ``template``,
        ``parameters``, ``details`` (``family``...), ``model_info``.

        Raises ``ModelNotFoundError`` if the server does not have the model.
        """
        name = model or self.model
        if name == self.model and self._show is not None:
            return self._show
        answer = self.client.post_json("/api/show", {"model": name}, model=name)
        if not isinstance(answer, dict):
            url = self.client.url("/api/show")
            raise MalformedResponseError(f"{url} did not answer a JSON object: {answer!r}", url=url)
        if name == self.model:
            self._show = answer
        return answer

    def pull(
        self, model: str | None = None, *, progress: bool = True, insecure: bool = False
    ) -> dict[str, Any]:
        """Download ``model`` (default: this instance's) into the server (``POST /api/pull``).

        Shows a tqdm progress bar per layer fed by the streamed ``total``/``completed``
        counts (``progress=False`` for none). Returns the last status (``{"status": "success"}``).
        """
        name = model or self.model
        payload = {"model": name, "stream": True, "insecure": insecure}
        bars: dict[str, Any] = {}
        last: dict[str, Any] = {}
        try:
            for event in self.client.stream_events("/api/pull", payload, "ndjson", model=name):
                if not isinstance(event, dict):
                    continue
                last = event
                if progress:
                    _show_pull_progress(bars, event)
        except (GenerationError, ServerResponseError) as error:
            if "not exist" in error.message or "not found" in error.message:
                hint = "Check the name (and tag) of the model in the Ollama library."
                reason = getattr(error, "server_message", error.message)
                msg = f"Ollama could not pull {name!r}: {reason}. {hint}"
                raise ModelNotFoundError(msg, model=name, url=self.client.url("/api/pull")) from error
            raise
        finally:
            for bar in bars.values():
                bar.close()
        if name == self.model:
            self._show = None
        return last

    # --- LocalLLM hooks -----------------------------------------------------------------------

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
        for key, value in (info.get("model_info") or {}).items():
            if key.endswith(".context_length") and isinstance(value, int):
                return value
        return None

    def chat_template(self) -> str | None:
        """The model's prompt template from ``/api/show`` (Ollama's Go template syntax)."""
        template = self.show().get("template")
        return template if isinstance(template, str) and template else None

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text`` for this model, counted by the server.

        Ollama has no tokenize endpoint: this sends ``text`` raw with ``num_predict=1`` and
        reads ``prompt_eval_count`` (the model's tokenizer, BOS included; one token generated).
        """
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
        return count


def _show_pull_progress(bars: dict[str, Any], event: dict[str, Any]) -> None:
    from tqdm.auto import tqdm

    digest, total = event.get("digest"), event.get("total")
    if not digest or not isinstance(total, int):
        return
    bar = bars.get(digest)
    if bar is None:
        label = f"pulling {str(digest).removeprefix('sha256:')[:12]}"
        bar = bars[digest] = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024)
    completed = event.get("completed")
    if isinstance(completed, int):
        bar.update(max(0, completed - bar.n))


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


class _GenerateParser(ResponseParser):
    """``/api/generate`` answers: NDJSON ``{"response", "done": false}`` lines then a final line."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.thinking: list[str] = []

    def feed(self, event: Any) -> GenerationChunk | None:
        if not isinstance(event, dict) or not ("response" in event or "done" in event):
            raise MalformedResponseError(
                f"Ollama sent a line that is not a generate response: {event!r}", event=event
            )
        text = event.get("response") or ""
        if event.get("thinking"):
            self.thinking.append(str(event["thinking"]))
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
