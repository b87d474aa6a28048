"""``ChatOpenAICompatible``: chat on any OpenAI-compatible server, its own extensions included.

It runs on the server chat pipeline (``_core.http_chat``): the request is built here, the
answer read by :class:`ChatReader` (no I/O: the same reader serves the sync and async paths).
What ``ChatOpenAI`` drops when pointed at a local server is kept: reasoning
(``reasoning_content`` or ``reasoning``, whichever the server sends), token usage of streamed
answers (``stream_options``), timings. Tool calls use the server's own tool-call parsing for
``tool_choice="auto"``; a constrained answer (structured output, a forced tool choice) is
carried out by the server dialect's own constrained decoding (vLLM ``structured_outputs``,
llama-server ``json_schema``, else OpenAI ``response_format``: ``dialects.Dialect.fields``).
For a forced choice the tools stay in the request with ``tool_choice="none"``, so the chat
template still shows them to the model, while the call's schema decides what it writes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from langchain_core.messages import BaseMessage
from pydantic import Field

from langchain_localllm._core.base.chat import ChatDelta, messages_to_dicts
from langchain_localllm._core.base.peers import warn_no_effect
from langchain_localllm._core.base.profile import ProfileReader
from langchain_localllm._core.server.chat import ServerChatModel, server_call_chunk
from langchain_localllm._core.server.exchange import AnswerReader, ServerRequest, text_field
from langchain_localllm._core.tools.calling import (
    TOOL_CALL_ARGS,
    ToolRequest,
    answer_constraint,
    tool_request,
)
from langchain_localllm.errors import InvalidParameterError, MalformedResponseError
from langchain_localllm.openai_compatible.llms import server_timings
from langchain_localllm.openai_compatible.params import GenerationFields
from langchain_localllm.openai_compatible.profile import OPENAI_COMPATIBLE_PROFILE
from langchain_localllm.openai_compatible.server import OpenAICompatibleServer, ServerInfo
from langchain_localllm.openai_compatible.token_count import server_message_tokens

__all__ = ["ChatOpenAICompatible", "ChatReader"]

#: Per-call arguments of the chat endpoint beyond the generation fields (and the tool layer's).
_CHAT_ARGS = ("logprobs", "top_logprobs", "chat_template_kwargs", "reasoning")


class ChatOpenAICompatible(OpenAICompatibleServer, GenerationFields, ServerChatModel):
    """A chat model served by vLLM, SGLang, LM Studio, llama-server, Ollama ``/v1``, ...

    Setup:
        Start an OpenAI-compatible server, for example:

        ```bash
        vllm serve Qwen/Qwen3-8B --reasoning-parser qwen3 --enable-auto-tool-choice \\
            --tool-call-parser hermes --port 8000
        # or: llama-server -m model.gguf --jinja --port 8000
        ```

    Key init args — generation params:
        max_tokens: int | None
            Most tokens per answer (256 by default).
        temperature: float | None
            Sampling temperature; None keeps the server's default.
        json_schema: dict | None
            Constrain every answer to a JSON schema (the server's own mechanism).
        chat_template_kwargs: dict | None
            Variables for the server's chat template, e.g. ``{"enable_thinking": False}``.
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
            Server family (``vllm``, ``llama-server``, ...); identified once when None.

    Instantiate:
        ```python
        from langchain_localllm import ChatOpenAICompatible

        chat = ChatOpenAICompatible(base_url="http://localhost:8000/v1", temperature=0)
        ```

    Invoke:
        ```python
        message = chat.invoke([("system", "Answer briefly."), ("human", "Capital of France?")])
        message.content, message.usage_metadata
        ```

        ```
        ('Paris.', {'input_tokens': 21, 'output_tokens': 3, 'total_tokens': 24})
        ```

    Stream:
        ```python
        for chunk in chat.stream("Why is the sky blue?"):
            print(chunk.content, end="", flush=True)
        ```

        Reasoning arrives first, in ``chunk.additional_kwargs["reasoning_content"]``; the
        last chunk carries ``usage_metadata`` and ``response_metadata["finish_reason"]``.

    Async:
        ```python
        await chat.ainvoke("Hello")
        async for chunk in chat.astream("Hello"):
            ...
        ```

    Tool calling:
        ```python
        chat.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?").tool_calls
        ```

    Structured output:
        ```python
        chat.with_structured_output(Person).invoke("Ada Lovelace, born 1815")
        ```
    """

    _provider: ClassVar[str] = "openai-compatible"
    _profile_reader: ClassVar[ProfileReader | None] = OPENAI_COMPATIBLE_PROFILE
    _extra_call_params: ClassVar[frozenset[str]] = frozenset((*_CHAT_ARGS, *TOOL_CALL_ARGS, "model"))

    max_retries: int | None = None
    """Accepted so that code written for ``ChatOpenAI`` runs unchanged. Nothing is retried
    blindly: a request a server did not answer moves to another server of a fleet."""

    streaming: bool = True
    """Ask the server to stream the answer (with usage: ``stream_options.include_usage``).
    False: one JSON answer per call, which ``stream()`` yields at once."""

    chat_template_kwargs: dict[str, Any] | None = None
    """Variables for the server's chat template (vLLM, SGLang and llama-server ``--jinja``),
    e.g. ``{"enable_thinking": False}`` for Qwen3."""

    reasoning: bool | None = None
    """Whether a model that can think first does: sent as the chat template's
    ``enable_thinking`` (``chat_template_kwargs``: vLLM, SGLang, llama-server), unless
    ``chat_template_kwargs`` sets it. None: the server's default (llama-server's: on)."""

    logprobs: bool | None = None
    """Return the log-probability of each generated token (``response_metadata["logprobs"]``)."""

    top_logprobs: int | None = Field(default=None, ge=0)
    """With ``logprobs``: also the N most likely alternatives of each token."""

    @property
    def model_name(self) -> str:
        """The model's name (``model``, else the server's first)."""
        return self.model or (self._info.models[0] if self._info and self._info.models else "unknown")

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "max_tokens": self.max_tokens}

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        """Tokens of the conversation as the server runs it: exact on llama-server (its
        ``/apply-template`` and ``/tokenize``), an estimate elsewhere (see ``.token_count``)."""
        return server_message_tokens(self, messages, tools, lambda turn, call: self._counted_body(turn, call))

    def _counted_body(self, messages: list[BaseMessage], call: dict[str, Any]) -> dict[str, Any]:
        call = dict(call)
        return self._chat_body(self.server_info(), messages, [], call, tool_request(call))

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_type"] = "chat"
        params["ls_model_name"] = kwargs.get("model") or self.model_name
        for name, key in (("temperature", "ls_temperature"), ("max_tokens", "ls_max_tokens")):
            value = kwargs.get(name, getattr(self, name))
            if value is not None:
                params[key] = value
        return params

    # --- the request ----------------------------------------------------------------------

    def _build_request(
        self, messages: list[BaseMessage], stop: list[str], kwargs: dict[str, Any], tools: ToolRequest
    ) -> ServerRequest:
        body = self._chat_body(self.server_info(), messages, stop, kwargs, tools)
        return ServerRequest("/v1/chat/completions", body, "sse" if self.streaming else None)

    def _new_reader(self, request: ServerRequest) -> AnswerReader[ChatDelta]:
        return ChatReader(self.client.url(request.path))

    def _chat_body(
        self,
        info: ServerInfo,
        messages: list[BaseMessage],
        stop: list[str],
        kwargs: dict[str, Any],
        tools: ToolRequest,
    ) -> dict[str, Any]:
        """The ``/v1/chat/completions`` body (also what ``ChatLlamafile`` extends)."""
        kwargs = dict(kwargs)
        model = kwargs.pop("model", None) or self._model_for(info)
        chat_args = {name: kwargs.pop(name, getattr(self, name)) for name in _CHAT_ARGS}
        body = self._body(info, kwargs)
        body["model"] = model
        body["messages"] = messages_to_dicts(messages)
        if stop:
            body["stop"] = stop
        reasoning = chat_args.pop("reasoning")
        if reasoning is not None and "chat_template_kwargs" in info.dialect.extras:
            template_kwargs = chat_args.get("chat_template_kwargs") or {}
            chat_args["chat_template_kwargs"] = {"enable_thinking": reasoning, **template_kwargs}
        elif reasoning is not None:
            reason = f"the {info.dialect.name!r} server takes no chat_template_kwargs to switch thinking"
            warn_no_effect(type(self).__name__, "reasoning", reasoning, reason, stacklevel=None)
        body.update({name: value for name, value in chat_args.items() if value is not None})
        self._add_tools(info, body, tools)
        body["stream"] = self.streaming
        if self.streaming:
            body["stream_options"] = {"include_usage": True}
        return body

    def _add_tools(self, info: ServerInfo, body: dict[str, Any], tools: ToolRequest) -> None:
        """The tools offered to the server's parser, or the constrained answer in the dialect's field."""
        constraint = answer_constraint(tools, body.get("max_tokens"))
        if constraint is not None and constraint.forced_tools:
            fields = {*info.dialect.schema_fields({}), "json_schema", "grammar"}
            taken = sorted(name for name in fields if name in body)
            if tools.answer_schema is not None:
                taken.append("response_format")
            if taken:
                msg = (
                    f"{type(self).__name__}: a forced tool_choice constrains the answer to a tool call; "
                    f"it cannot be combined with {taken[0]}."
                )
                raise InvalidParameterError(msg, parameter=taken[0])
            body["tools"] = list(tools.tools)
            body["tool_choice"] = "none"  # the template still shows the tools; the schema decides
        elif tools.offered_tools:
            body["tools"] = tools.offered_tools  # "auto": the server's own tool-call parsing
            if tools.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = tools.parallel_tool_calls
        if constraint is not None:
            body.update(info.dialect.fields(constraint))


class ChatReader(AnswerReader[ChatDelta]):
    """Reads ``/v1/chat/completions`` answers into :class:`ChatDelta` s, whatever the server.

    Text and reasoning (``reasoning_content`` from llama.cpp and older vLLM, ``reasoning``
    from vLLM >= 0.24 and Ollama) are emitted as they arrive; tool calls as chunks per
    ``index`` (vLLM streams ``arguments`` in fragments, Ollama sends each call whole). The
    last delta -- finish reason, usage, timings -- is emitted once the usage arrived, whether in
    the finish chunk (llama-box) or in a chunk of its own after it (vLLM, Ollama), or when the
    stream ends; ``[DONE]`` is never waited for. A non-streamed answer (``message``) is read too.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.finish: str | None = None
        self.usage: tuple[int, int] | None = None
        self.timings: dict[str, Any] | None = None
        self.metadata: dict[str, Any] = {}
        self.message_id: str | None = None
        self.logprobs: list[Any] = []

    def feed(self, event: Any) -> ChatDelta | None:
        if not isinstance(event, dict):
            raise MalformedResponseError(
                f"{self.url} sent an event that is not a JSON object: {event!r:.200}"
            )
        if isinstance(event.get("id"), str):
            self.message_id = event["id"]
        for key in ("model", "system_fingerprint"):
            if isinstance(event.get(key), str):
                self.metadata["model_name" if key == "model" else key] = event[key]
        choice = self._choice(event)
        part = choice.get("delta", choice.get("message")) or {}
        if not isinstance(part, dict):
            raise MalformedResponseError(f"{self.url} sent a delta that is not an object: {part!r:.200}")
        text = text_field(part.get("content"), self.url, "content")
        reasoning = text_field(part.get("reasoning_content") or part.get("reasoning"), self.url, "reasoning")
        calls = part.get("tool_calls")
        extra: dict[str, Any] = {}
        if calls:
            if not isinstance(calls, list):
                raise MalformedResponseError(
                    f"{self.url} sent tool_calls that are not a list: {calls!r:.200}"
                )
            extra["tool_call_chunks"] = [self._call_chunk(call, i) for i, call in enumerate(calls)]
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            self.logprobs.extend(logprobs["content"])
        if choice.get("finish_reason"):
            self.finish = str(choice["finish_reason"])
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            completion = usage.get("completion_tokens")
            self.usage = (usage["prompt_tokens"], completion if isinstance(completion, int) else 0)
        timings = server_timings(event)
        if timings is not None:
            self.timings = timings
        delta = ChatDelta(text, reasoning, message_id=self.message_id, extra=extra)
        if self.finish is not None and self.usage is not None:
            return self._last(delta)
        return delta if text or reasoning or extra else None

    def _choice(self, event: dict[str, Any]) -> dict[str, Any]:
        choices = event.get("choices") or []
        if not isinstance(choices, list):
            raise MalformedResponseError(f"{self.url} sent choices that are not a list: {choices!r:.200}")
        choice = choices[0] if choices else {}
        if not isinstance(choice, dict):
            raise MalformedResponseError(f"{self.url} sent a choice that is not an object: {choice!r:.200}")
        return choice

    def _call_chunk(self, call: Any, position: int) -> dict[str, Any]:
        if not isinstance(call, dict):
            raise MalformedResponseError(f"{self.url} sent a tool call that is not an object: {call!r:.200}")
        function = call.get("function") or {}
        if not isinstance(function, dict):
            raise MalformedResponseError(f"{self.url} sent a tool call function that is not an object.")
        index = call.get("index", position)
        return server_call_chunk(
            function.get("name"), function.get("arguments"), call.get("id"), index, self.url
        )

    def _last(self, delta: ChatDelta) -> ChatDelta | None:
        """``delta`` completed as the answer's last one (once: later events add nothing)."""
        if self.done:
            return None
        self.done = True
        if self.logprobs:
            self.metadata["logprobs"] = {"content": self.logprobs}
        delta.finish_reason = self.finish
        delta.usage = self.usage
        delta.timings = self.timings
        delta.metadata = self.metadata
        delta.message_id = self.message_id
        return delta

    def close(self) -> ChatDelta | None:
        """The last delta if still held (a server that sent no usage)."""
        return self._last(ChatDelta()) if self.finish is not None else None
