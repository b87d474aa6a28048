"""``ChatLlamafile``: chat with a llamafile or llama.cpp ``llama-server`` (the llama-server dialect
of :class:`~langchain_localllm.openai_compatible.chat_models.ChatOpenAICompatible`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar, Literal

from langchain_core.messages import BaseMessage
from langchain_core.outputs import GenerationChunk
from pydantic import Field, PrivateAttr

from langchain_localllm._core.base.chat import ChatDelta, messages_to_dicts
from langchain_localllm._core.http.errors import LLAMA_SERVER, ServerKind
from langchain_localllm._core.server.connection import BaseUrl
from langchain_localllm._core.server.exchange import ReadThrough, ServerRequest
from langchain_localllm._core.tools.calling import ToolRequest, answer_constraint, tool_request
from langchain_localllm.errors import (
    LocalLLMError,
    MalformedResponseError,
    ServerResponseError,
    UnsupportedParameterError,
)
from langchain_localllm.llamafile.llms import CompletionReader
from langchain_localllm.openai_compatible.chat_models import ChatOpenAICompatible
from langchain_localllm.openai_compatible.server import ServerInfo

#: llama-server options of /v1/chat/completions beyond OpenAI's, as fields and per call.
_LLAMA_OPTIONS = ("cache_prompt", "n_probs", "reasoning_format", "top_k", "min_p", "repeat_penalty")


class ChatLlamafile(ChatOpenAICompatible):
    """Chat with a llamafile or llama.cpp ``llama-server`` through ``/v1/chat/completions``.

    The server renders the model's own chat template (``--jinja``, the default of current
    llama-server), parses reasoning (``reasoning_content``) and tool calls, and constrains
    output to JSON schemas with a grammar.

    Setup:
        ```bash
        ./model.llamafile --server --nobrowser --jinja      # http://localhost:8080
        # or: llama-server -m model.gguf --jinja --port 8080
        ```

    Key init args — generation params:
        max_tokens: int | None
            Most tokens per answer (256 by default).
        temperature: float | None
            Sampling temperature.
        reasoning_format: "auto" | "deepseek" | "none" | None
            How the server separates the model's thinking (``none`` leaves it in content).
        chat_template_kwargs: dict | None
            Template variables, e.g. ``{"enable_thinking": False}``.
        cache_prompt: bool | None
            Reuse the KV cache of the conversation's shared prefix (server default: on).
        n_probs: int | None
            Top-N token probabilities per generated token.

    Key init args — client params:
        base_url: str | list[str]
            Default ``http://localhost:8080``; a list makes a fleet.
        api_key: SecretStr | None
            The server's ``--api-key``.

    Instantiate:
        ```python
        from langchain_localllm import ChatLlamafile

        chat = ChatLlamafile(temperature=0.2)
        ```

    Invoke:
        ```python
        chat.invoke([("system", "Be brief."), ("human", "Name a prime number.")]).content
        ```

        ```
        '7'
        ```

    Stream:
        ```python
        for chunk in chat.stream("Tell me a joke"):
            print(chunk.content, end="", flush=True)
        ```

    Async:
        ```python
        await chat.ainvoke("Hello")
        ```

    Tools and structured output: ``tool_choice="auto"`` uses the server's ``--jinja`` tool-call
    parsing; forced choices (``chat.bind_tools([...], tool_choice="any")``, a tool's name,
    ``with_structured_output(..., method="function_calling")``) and structured output
    (``chat.with_structured_output(Person)``) are decoded under a JSON-schema grammar, so the
    call or the object is valid whatever the model.
    """

    _server_kind: ClassVar[ServerKind] = LLAMA_SERVER
    _provider: ClassVar[str] = "llamafile"
    _health_path: ClassVar[str] = "/health"
    _env_prefix: ClassVar[str] = "LLAMA"
    _extra_call_params: ClassVar[frozenset[str]] = ChatOpenAICompatible._extra_call_params | frozenset(
        _LLAMA_OPTIONS
    )

    base_url: BaseUrl = "http://localhost:8080"
    """Root URL of the llamafile / llama-server, or a list of them (a fleet)."""

    dialect: str | None = "llama-server"
    """Always llama-server's."""

    reasoning_format: Literal["auto", "deepseek", "deepseek-legacy", "none"] | None = None
    """How the server extracts thinking into ``reasoning_content`` (None: the server's
    ``--reasoning-format``, ``auto`` by default; ``none`` leaves it in the content)."""

    cache_prompt: bool | None = None
    """Reuse the KV cache for the prefix shared with the previous request (server default: on)."""

    n_probs: int | None = Field(default=None, ge=0)
    """Top-N token probabilities of each generated token."""

    top_k: int | None = None
    """Sample from the k most likely tokens (0 disables)."""

    min_p: float | None = None
    """Minimum probability relative to the most likely token."""

    repeat_penalty: float | None = None
    """Penalty for repeated tokens (1.0 disables)."""

    chat_api: Literal["auto", "chat", "completion"] = "auto"
    """Which server API answers: ``chat`` (``/v1/chat/completions``, the server renders the
    template and parses reasoning and tools), ``completion`` (the messages rendered by the
    server's ``/apply-template``, then its native ``/completion``: no tools), or ``auto``:
    ``chat``, falling back to ``completion`` for a server without the chat endpoint."""

    _no_chat_endpoint: bool = PrivateAttr(default=False)

    def _chat_body(
        self,
        info: ServerInfo,
        messages: list[BaseMessage],
        stop: list[str],
        kwargs: dict[str, Any],
        tools: ToolRequest,
    ) -> dict[str, Any]:
        kwargs = dict(kwargs)
        options = {name: kwargs.pop(name, getattr(self, name)) for name in _LLAMA_OPTIONS}
        body = super()._chat_body(info, messages, stop, kwargs, tools)
        body.update({name: value for name, value in options.items() if value is not None})
        return body

    def _translated_error(self, error: LocalLLMError) -> LocalLLMError:
        if "--jinja" in str(getattr(error, "server_message", "")):
            msg = (
                f"The llama-server at {self.client.base_url} was started without Jinja templates "
                f"({getattr(error, 'server_message', error)}); tools need them. Restart it with --jinja "
                "(and without --no-jinja)."
            )
            return UnsupportedParameterError(msg, url=getattr(error, "url", None), parameter="tools")
        return super()._translated_error(error)

    # --- /apply-template + /completion ------------------------------------------------------

    def _use_completion(self) -> bool:
        return self.chat_api == "completion" or (self.chat_api == "auto" and self._no_chat_endpoint)

    def _completion_request(self, prompt: Any, stop: list[str], kwargs: dict[str, Any]) -> ServerRequest:
        if not isinstance(prompt, dict) or not isinstance(prompt.get("prompt"), str):
            msg = f"{self.client.url('/apply-template')} did not answer a prompt: {str(prompt)[:120]}"
            raise MalformedResponseError(msg, url=self.client.url("/apply-template"))
        kwargs = dict(kwargs)
        tools = tool_request(kwargs)
        if tools.offered_tools:
            msg = (
                "ChatLlamafile(chat_api='completion') cannot pass tools: the native /completion API "
                "has no tools. Use chat_api='chat' with a server started with --jinja."
            )
            raise UnsupportedParameterError(msg, parameter="tools")
        for name in ("model", "chat_template_kwargs", "reasoning"):
            kwargs.pop(name, None)
        options = {name: kwargs.pop(name, getattr(self, name)) for name in _LLAMA_OPTIONS}
        options.pop("reasoning_format")
        info = self.server_info()
        body = self._body(info, kwargs)
        constraint = answer_constraint(tools, body.get("max_tokens"))
        if constraint is not None:  # a structured answer: llama-server's json_schema
            body.update(info.dialect.fields(constraint))
        body["n_predict"] = body.pop("max_tokens", -1)
        body.update({name: value for name, value in options.items() if value is not None})
        body.update(prompt=prompt["prompt"], stop=stop, stream=self.streaming)
        return ServerRequest("/completion", body, "sse" if self.streaming else None)

    def _iter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> Iterator[ChatDelta]:
        if not self._use_completion():
            began = False
            try:
                for delta in super()._iter_deltas(messages, stop, **kwargs):
                    began = True
                    yield delta
                return
            except ServerResponseError as error:
                if began or error.status_code != 404 or self.chat_api != "auto":
                    raise
                self._no_chat_endpoint = True
        prompt = self.client.post_json("/apply-template", {"messages": messages_to_dicts(messages)})
        request = self._completion_request(prompt, stop, kwargs)
        yield from self._exchange(request, _CompletionDeltas(self.client.url("/completion")))

    async def _aiter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> AsyncIterator[ChatDelta]:
        if not self._use_completion():
            began = False
            try:
                async for delta in super()._aiter_deltas(messages, stop, **kwargs):
                    began = True
                    yield delta
                return
            except ServerResponseError as error:
                if began or error.status_code != 404 or self.chat_api != "auto":
                    raise
                self._no_chat_endpoint = True
        await self._aprepare()
        prompt = await self.client.apost_json("/apply-template", {"messages": messages_to_dicts(messages)})
        request = self._completion_request(prompt, stop, kwargs)
        async for delta in self._aexchange(request, _CompletionDeltas(self.client.url("/completion"))):
            yield delta


class _CompletionDeltas(ReadThrough[GenerationChunk, ChatDelta]):
    """The native ``/completion`` answer as chat deltas: ``Llamafile``'s reader, its chunks converted."""

    def __init__(self, url: str) -> None:
        super().__init__(CompletionReader(url))

    def convert(self, chunk: GenerationChunk) -> ChatDelta | None:
        info = chunk.generation_info
        if not info:
            return ChatDelta(text=chunk.text)
        usage = info.get("usage")
        probabilities = info.get("completion_probabilities")
        return ChatDelta(
            text=chunk.text,
            finish_reason=info.get("finish_reason") or "stop",
            usage=(usage["prompt_tokens"], usage["completion_tokens"]) if usage else None,
            timings=info.get("timings"),
            metadata={"completion_probabilities": probabilities} if probabilities else {},
        )
