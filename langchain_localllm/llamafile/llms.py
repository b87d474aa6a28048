"""``Llamafile``: a llamafile (or llama.cpp's ``llama-server``) running as a local server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import GenerationChunk
from pydantic import Field, PrivateAttr, model_validator

from langchain_localllm._core.base.derived import derived
from langchain_localllm._core.base.peers import Ignored
from langchain_localllm._core.http.errors import LLAMA_SERVER, ServerKind
from langchain_localllm._core.server.exchange import AnswerReader, ServerRequest, text_field
from langchain_localllm._core.server.llm import ServerLLM, drop_none
from langchain_localllm.errors import InvalidParameterError, MalformedResponseError
from langchain_localllm.llamafile.client import LlamaServerConnection
from langchain_localllm.prompts.base_model import LLAMA_SERVER_FALLBACK_TEMPLATE
from langchain_localllm.prompts.template_source import sourced

#: Sampling/generation parameters sent to ``/completion`` as they are named there.
_GENERATION_PARAMS = (
    "n_predict",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "seed",
    "grammar",
    "json_schema",
    "cache_prompt",
    "n_probs",
    "n_keep",
    "ignore_eos",
)

_TIMING_KEYS = (
    "prompt_n",
    "prompt_ms",
    "prompt_per_second",
    "predicted_n",
    "predicted_ms",
    "predicted_per_second",
)
_FINISH_REASONS = {"eos": "stop", "word": "stop", "limit": "length"}


class Llamafile(LlamaServerConnection, ServerLLM):
    """A llamafile or llama.cpp ``llama-server``, through its native ``/completion`` API.

    Setup:
        Start a llamafile as a server (or llama.cpp's ``llama-server``):

        ```bash
        ./model.llamafile --server --nobrowser      # listens on http://localhost:8080
        # or: llama-server -m model.gguf --port 8080
        ```

        Nothing else is needed: the client uses ``httpx``.

    Key init args — generation params:
        n_predict: int
            Most tokens to generate (bounded by default, unlike the server's -1).
        temperature: float | None
            Sampling temperature; None keeps the server's default.
        stop: list[str] | None
            Stop sequences.
        grammar: str | None
            A GBNF grammar the output must follow.
        json_schema: dict | None
            A JSON schema the output must follow.
        seed: int | None
            Random seed for reproducible sampling.

    Key init args — client params:
        base_url: str
            Root URL of the server. Default ``http://localhost:8080``.
        api_key: SecretStr | None
            The key the server was started with (``--api-key``).
        timeout: float | None
            Read timeout in seconds.

    Instantiate:
        ```python
        from langchain_localllm import Llamafile

        llm = Llamafile(base_url="http://localhost:8080", n_predict=128, temperature=0.2)
        ```

    Invoke:
        ```python
        llm.invoke("The capital of France is")
        ```

    Stream:
        ```python
        for token in llm.stream("Once upon a time"):
            print(token, end="", flush=True)
        ```

    Async:
        ```python
        await llm.ainvoke("The capital of France is")
        async for token in llm.astream("Once upon a time"):
            print(token, end="")
        ```

    Errors are typed: nothing listening raises ``ServerUnreachableError`` (with how to start
    the server), an over-long prompt ``ContextLengthExceededError`` (with the token counts),
    a bad grammar ``InvalidParameterError``, an error reported mid-stream ``GenerationError``
    (carrying the text already streamed in ``partial_text``).
    """

    _server_kind: ClassVar[ServerKind] = LLAMA_SERVER
    _call_params: ClassVar[frozenset[str]] = frozenset((*_GENERATION_PARAMS, "model_kwargs"))

    _peer_renamed: ClassVar[Mapping[str, str]] = {"request_timeout": "timeout"}
    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {
        "tfs_z": Ignored(1.0, "llama.cpp removed tail-free sampling"),
        "penalize_nl": Ignored(True, "llama.cpp removed penalize_nl"),
    }

    model: str | None = None
    """Model name to request (llama-server's multi-model router mode) and to report. None
    uses the server's single model and reports the name the server gives."""

    n_predict: int = Field(default=256, ge=-1)
    """Most tokens to generate per call. Bounded by default; -1 means no limit (until the
    model stops or the context is full)."""

    temperature: float | None = None
    """Sampling temperature; 0 is greedy. None keeps the server's default (0.8)."""

    top_k: int | None = None
    """Sample from the k most likely tokens (0 disables). None: server default (40)."""

    top_p: float | None = None
    """Nucleus sampling probability mass. None: server default (0.95)."""

    min_p: float | None = None
    """Minimum probability relative to the most likely token. None: server default (0.05)."""

    typical_p: float | None = None
    """Locally typical sampling (1.0 disables)."""

    repeat_penalty: float | None = None
    """Penalty for repeated tokens (1.0 disables)."""

    repeat_last_n: int | None = None
    """How many recent tokens the repeat penalty looks at (0 disables, -1 the context)."""

    presence_penalty: float | None = None
    """Presence penalty (0 disables)."""

    frequency_penalty: float | None = None
    """Frequency penalty (0 disables)."""

    mirostat: int | None = None
    """Mirostat sampling: 0 off, 1 Mirostat, 2 Mirostat 2.0."""

    mirostat_tau: float | None = None
    """Mirostat target entropy."""

    mirostat_eta: float | None = None
    """Mirostat learning rate."""

    seed: int | None = None
    """Random seed; the same seed and settings give the same text."""

    grammar: str | None = None
    """A GBNF grammar that constrains the output. A grammar the server cannot parse raises
    ``InvalidParameterError``."""

    json_schema: dict[str, Any] | None = None
    """A JSON schema that constrains the output (``{}`` for any JSON). Not with ``grammar``."""

    cache_prompt: bool | None = None
    """Reuse the KV cache of the previous request's common prefix. None: server default (on)."""

    n_probs: int | None = None
    """Return the top-N token probabilities of each generated token (in ``generation_info``
    as ``completion_probabilities``)."""

    n_keep: int | None = None
    """Prompt tokens to keep when the context fills up (-1: all)."""

    ignore_eos: bool | None = None
    """Keep generating past the end-of-sequence token."""

    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other ``/completion`` parameters, sent as given (e.g. ``{"dry_multiplier": 0.8}``)."""

    _seen_model: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_constraints(self) -> Llamafile:
        _check_grammar_and_schema(self.grammar, self.json_schema, type(self).__name__)
        return self

    # --- LangChain identity -------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "llamafile"

    @property
    def model_name(self) -> str:
        """The requested model, else the name the server reported, else ``"llamafile"``."""
        return self.model or self._seen_model or "llamafile"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "model": self.model,
            **drop_none({name: getattr(self, name) for name in _GENERATION_PARAMS}),
            **self.model_kwargs,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="llamafile", ls_model_name=self.model_name, ls_model_type="llm")
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        params["ls_max_tokens"] = kwargs.get("n_predict", self.n_predict)
        stops = self._stop_sequences(stop)
        if stops:
            params["ls_stop"] = stops
        return params

    # --- requests -------------------------------------------------------------------------

    def _build_request(self, prompt: str, stop: list[str], kwargs: dict[str, Any]) -> ServerRequest:
        params = {name: getattr(self, name) for name in _GENERATION_PARAMS}
        params.update({k: v for k, v in kwargs.items() if k != "model_kwargs"})
        _check_grammar_and_schema(params.get("grammar"), params.get("json_schema"), type(self).__name__)
        payload: dict[str, Any] = {**self.model_kwargs, **kwargs.get("model_kwargs", {})}
        payload.update(drop_none(params))
        payload["prompt"] = prompt
        payload["stream"] = self.streaming
        if stop:
            payload["stop"] = stop
        if self.model is not None:
            payload["model"] = self.model
        return ServerRequest("/completion", payload, "sse" if self.streaming else None)

    def _new_reader(self) -> AnswerReader[GenerationChunk]:
        return CompletionReader(self.client.url("/completion"), self)

    # --- server information -------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health``: ``{"status": "ok"}`` when the model is loaded.

        Raises ``ServerUnreachableError`` if nothing listens and ``ServerResponseError``
        (503) while the model is still loading.
        """
        return self.server.health()

    async def ahealth(self) -> dict[str, Any]:
        """Async :meth:`health`."""
        return await self.server.ahealth()

    def props(self) -> dict[str, Any]:
        """``GET /props`` (context size, chat template, model path...), cached per instance."""
        return self._props

    @derived("base_url", "headers", "api_key")
    def _props(self) -> dict[str, Any]:
        # Asked once per server: a copy pointing at another server asks again.
        return self.server.props()

    def get_context_window(self) -> int | None:
        """The server's context size per slot (``/props`` ``default_generation_settings.n_ctx``)."""
        props = self.props()
        settings = props.get("default_generation_settings") or {}
        n_ctx = settings.get("n_ctx", props.get("n_ctx"))
        return n_ctx if isinstance(n_ctx, int) else None

    def chat_template(self) -> str | None:
        """The model's own Jinja chat template, as ``/props`` reports it; None for a model without one.

        llama-server reports its built-in ChatML template for a model that has none (a base
        model); that one counts as the model's only when ``<|im_start|>`` is a token of the
        model's vocabulary.
        """
        template = self.props().get("chat_template")
        if not isinstance(template, str) or not template:
            return None
        if template == LLAMA_SERVER_FALLBACK_TEMPLATE and len(self.get_token_ids("<|im_start|>")) != 1:
            return None
        return sourced(template, f"llama-server /props at {self.base_url}")

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` from the server's tokenizer (``POST /tokenize``)."""
        return self.server.tokenize(text)

    def get_num_tokens(self, text: str) -> int:
        """How many tokens ``text`` is for the served model (``POST /tokenize``)."""
        return len(self.get_token_ids(text))


def _check_grammar_and_schema(grammar: Any, json_schema: Any, owner: str) -> None:
    if grammar is not None and json_schema is not None:
        msg = f"{owner}: pass either grammar or json_schema, not both (the schema is turned into a grammar)."
        raise InvalidParameterError(msg, parameter="json_schema")


class CompletionReader(AnswerReader[GenerationChunk]):
    """llama-server's native ``/completion`` answers: SSE events ``{"content", "stop": false}``
    then a final event (``Llamafile``'s reader; ``ChatLlamafile(chat_api="completion")`` reads
    through it too). ``llm``, when given, learns the model name the server reports."""

    def __init__(self, url: str, llm: Llamafile | None = None) -> None:
        self.url = url
        self.llm = llm
        self.model: str | None = None
        self.probabilities: list[Any] = []

    def feed(self, event: Any) -> GenerationChunk | None:
        if not isinstance(event, dict):
            raise MalformedResponseError(
                f"llama-server sent an event that is not a JSON object: {event!r:.200}", event=event
            )
        text = text_field(event.get("content"), self.url, "content")
        probs = event.get("completion_probabilities")
        if isinstance(probs, list):
            self.probabilities.extend(probs)
        if not event.get("stop"):
            return GenerationChunk(text=text) if text else None
        self.done = True
        model = event.get("model")
        if isinstance(model, str) and model:
            self.model = model
            if self.llm is not None:
                self.llm._seen_model = model
        return GenerationChunk(text=text, generation_info=self._final_info(event))

    def _final_info(self, event: dict[str, Any]) -> dict[str, Any]:
        stop_type = event.get("stop_type")
        if stop_type is None:  # llamafile <= 0.9 reported booleans
            for name in ("eos", "word", "limit"):
                if event.get(f"stopped_{name}"):
                    stop_type = name
        predicted = event.get("tokens_predicted")
        evaluated = event.get("tokens_evaluated")
        info: dict[str, Any] = {
            "finish_reason": _FINISH_REASONS.get(stop_type or ""),
            "stop_type": stop_type,
            "stopping_word": event.get("stopping_word") or None,
            "model": self.llm.model_name if self.llm is not None else self.model,
            "tokens_predicted": predicted,
            "tokens_evaluated": evaluated,
            "tokens_cached": event.get("tokens_cached"),
            "truncated": event.get("truncated"),
        }
        if isinstance(predicted, int) and isinstance(evaluated, int):
            info["usage"] = {
                "prompt_tokens": evaluated,
                "completion_tokens": predicted,
                "total_tokens": evaluated + predicted,
            }
        timings = event.get("timings")
        if isinstance(timings, dict):
            info["timings"] = {key: timings[key] for key in _TIMING_KEYS if key in timings}
        if self.probabilities:
            info["completion_probabilities"] = self.probabilities
        return drop_none(info)
