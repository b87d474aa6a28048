"""``OpenAICompatible``: text completion on any OpenAI-compatible server's ``/v1/completions``."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base.timings import timings_info
from langchain_localllm._core.server.exchange import AnswerReader, ServerRequest, text_field
from langchain_localllm._core.server.llm import ServerLLM
from langchain_localllm.errors import MalformedResponseError
from langchain_localllm.openai_compatible.params import GenerationFields
from langchain_localllm.openai_compatible.server import OpenAICompatibleServer


class OpenAICompatible(OpenAICompatibleServer, GenerationFields, ServerLLM):
    """An LLM served by vLLM, SGLang, LM Studio, llama-server, ... through ``/v1/completions``.

    Setup:
        Start any OpenAI-compatible server, for example:

        ```bash
        vllm serve Qwen/Qwen3-0.6B --port 8000
        # or: llama-server -m model.gguf --port 8000
        ```

    Key init args — generation params:
        max_tokens: int | None
            Most tokens to generate (256 by default).
        temperature: float | None
            Sampling temperature; None keeps the server's default.
        json_schema: dict | None
            Constrain the output to a JSON schema, with the server's own mechanism.
        grammar: str | None
            A GBNF grammar (llama-server only).
        extra_body: dict
            Other request fields, sent as given.

    Key init args — client params:
        base_url: str | list[str]
            Root URL (``/v1`` optional), or a list of servers serving the same model.
        model: str | None
            Served model name; default the server's first.
        api_key: SecretStr | None
            The server's ``--api-key``.
        dialect: str | None
            Server family; identified once when None.

    Instantiate:
        ```python
        from langchain_localllm import OpenAICompatible

        llm = OpenAICompatible(base_url="http://localhost:8000/v1", max_tokens=64)
        ```

    Invoke:
        ```python
        llm.invoke("The capital of France is")
        ```

        ```
        ' Paris. It is known for the Eiffel Tower...'
        ```

    Stream:
        ```python
        for token in llm.stream("Once upon a time"):
            print(token, end="", flush=True)
        ```

    Async:
        ```python
        await llm.ainvoke("The capital of France is")
        ```

    ``generation_info`` of the result holds ``finish_reason``, the token usage (streamed
    answers ask for it with ``stream_options.include_usage``) and llama-server's timings.
    Errors are typed: a prompt over the context window raises ``ContextLengthExceededError``
    (vLLM's 400 too), an unknown model ``ModelNotFoundError`` listing the served models.
    """

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    @property
    def model_name(self) -> str:
        """The model's name (``model``, else the server's first)."""
        return self.model or (self._info.models[0] if self._info and self._info.models else "unknown")

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "max_tokens": self.max_tokens}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="openai-compatible", ls_model_name=self.model_name, ls_model_type="llm"
        )
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        return params

    def _build_request(self, prompt: str, stop: list[str], kwargs: dict[str, Any]) -> ServerRequest:
        info = self.server_info()
        body = self._body(info, kwargs)
        body["model"] = self._model_for(info)
        body["prompt"] = prompt
        if stop:
            body["stop"] = stop
        if self.streaming:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return ServerRequest("/v1/completions", body, "sse" if self.streaming else None)

    def _new_reader(self) -> AnswerReader[GenerationChunk]:
        return _CompletionsReader(self.model_name, self.client.url("/v1/completions"))


def usage_info(event: dict[str, Any]) -> dict[str, Any]:
    """``prompt_tokens``/``completion_tokens`` and llama-server ``timings`` of an answer's last event."""
    info: dict[str, Any] = {}
    usage = event.get("usage")
    if isinstance(usage, dict):
        for key in ("prompt_tokens", "completion_tokens"):
            if isinstance(usage.get(key), int):
                info[key] = usage[key]
    timings = server_timings(event)
    if timings is not None:
        info["timings"] = timings
    return info


class _CompletionsReader(AnswerReader[GenerationChunk]):
    """Reads ``/v1/completions`` answers: whole, or streamed (usage in the finish event or after it)."""

    def __init__(self, model: str, url: str) -> None:
        self.info: dict[str, Any] = {"model": model}
        self.url = url
        self.emitted = False

    def feed(self, event: Any) -> GenerationChunk | None:
        if not isinstance(event, dict):
            raise MalformedResponseError(
                f"{self.url} sent an event that is not a JSON object: {event!r:.200}"
            )
        choices = event.get("choices") or []
        if not isinstance(choices, list):
            raise MalformedResponseError(f"{self.url} sent choices that are not a list: {choices!r:.200}")
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        text = text_field(choice.get("text"), self.url, "text")
        if isinstance(event.get("model"), str):
            self.info["model"] = event["model"]
        if choice.get("finish_reason"):
            self.done = True
            self.info["finish_reason"] = choice["finish_reason"]
            if choice.get("logprobs") is not None:
                self.info["logprobs"] = choice["logprobs"]
        self.info.update(usage_info(event))
        if self.done and not self.emitted and ("prompt_tokens" in self.info or not choices):
            self.emitted = True
            return GenerationChunk(text=text, generation_info=dict(self.info))
        return GenerationChunk(text=text) if text else None

    def close(self) -> GenerationChunk | None:
        if self.done and not self.emitted:  # a server that sent no usage
            self.emitted = True
            return GenerationChunk(text="", generation_info=dict(self.info))
        return None


def server_timings(event: dict[str, Any]) -> dict[str, Any] | None:
    """llama-server's ``timings`` of an answer's last event, in the package's timings shape."""
    timings = event.get("timings")
    if not isinstance(timings, dict):
        return None
    return timings_info(
        timings.get("prompt_n"),
        timings.get("prompt_ms"),
        timings.get("predicted_n"),
        timings.get("predicted_ms"),
    )
