"""``ChatOpenAICompatible``: chat on any OpenAI-compatible server, its own extensions included.

The request is built and the answer read by plain functions and one :class:`ChatReader`
shared by the sync and async paths (only the I/O differs). What ``ChatOpenAI`` drops when
pointed at a local server is kept: reasoning (``reasoning_content`` or ``reasoning``,
whichever the server sends), token usage of streamed answers (``stream_options``), timings.
Tool calls and structured output use what the server supports: its own tool-call parsing
for ``tool_choice="auto"``, and its own constrained decoding (vLLM ``structured_outputs``,
llama-server ``json_schema``, else OpenAI ``response_format``) for structured output and
forced tool choices (:mod:`.forced_calls`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, ClassVar, Literal, Protocol

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import Field

from langchain_localllm._core.chat_model import ChatDelta, LocalChatModel, messages_to_dicts
from langchain_localllm._core.chat_profile import ProfileReader
from langchain_localllm._core.compat import warn_no_effect
from langchain_localllm.errors import (
    InvalidParameterError,
    LocalLLMError,
    MalformedResponseError,
    StreamInterruptedError,
)
from langchain_localllm.openai_compatible.forced_calls import ForcedCallReader, call_schema, forced_tools
from langchain_localllm.openai_compatible.llms import server_timings
from langchain_localllm.openai_compatible.params import GenerationFields
from langchain_localllm.openai_compatible.profile import OPENAI_COMPATIBLE_PROFILE
from langchain_localllm.openai_compatible.server import OpenAICompatibleServer, ServerInfo
from langchain_localllm.openai_compatible.token_count import server_message_tokens

__all__ = ["ChatOpenAICompatible", "ChatReader", "DeltaReader"]

_CHAT_CALL_PARAMS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "logprobs",
    "top_logprobs",
    "chat_template_kwargs",
    "reasoning",
    "ls_structured_output_format",
    "model",
)


class ChatOpenAICompatible(OpenAICompatibleServer, GenerationFields, LocalChatModel):
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
    _extra_call_params: ClassVar[frozenset[str]] = frozenset(_CHAT_CALL_PARAMS)

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
        return server_message_tokens(
            self, messages, tools, lambda turn, call: self._chat_body(self.server_info(), turn, [], call)
        )

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

    def _chat_body(
        self, info: ServerInfo, messages: list[BaseMessage], stop: list[str], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The ``/v1/chat/completions`` body (also what ``ChatLlamafile`` extends)."""
        kwargs = dict(kwargs)
        kwargs.pop("ls_structured_output_format", None)
        model = kwargs.pop("model", None) or self._model_for(info)
        chat_only = {name: kwargs.pop(name) for name in _CHAT_CALL_PARAMS if name in kwargs}
        body = self._body(info, kwargs)
        body["model"] = model
        body["messages"] = messages_to_dicts(messages)
        if stop:
            body["stop"] = stop
        for name in ("logprobs", "top_logprobs", "chat_template_kwargs"):
            value = chat_only.pop(name, getattr(self, name))
            if value is not None:
                body[name] = value
        reasoning = chat_only.pop("reasoning", self.reasoning)
        if reasoning is not None and "chat_template_kwargs" in info.dialect.extras:
            template_kwargs = body.get("chat_template_kwargs") or {}
            body["chat_template_kwargs"] = {"enable_thinking": reasoning, **template_kwargs}
        elif reasoning is not None:
            reason = f"the {info.dialect.name!r} server takes no chat_template_kwargs to switch thinking"
            warn_no_effect(type(self).__name__, "reasoning", reasoning, reason, stacklevel=6)
        tools = chat_only.pop("tools", None)
        choice = chat_only.pop("tool_choice", None)
        forced = forced_tools(tools, choice)
        if forced is not None:
            self._force_call(info, body, forced, chat_only)
            body["tools"] = tools
            body["tool_choice"] = "none"  # the template still shows the tools; the schema decides
        elif tools and choice != "none":
            body["tools"] = tools
            if choice is not None:
                body["tool_choice"] = choice
        elif not tools and choice not in (None, "none", "auto"):
            msg = f"{type(self).__name__}: tool_choice={choice!r} without tools; use bind_tools()."
            raise InvalidParameterError(msg, parameter="tool_choice")
        if not body.get("tools"):
            chat_only.pop("parallel_tool_calls", None)
        body.update(chat_only)  # parallel_tool_calls, response_format
        body["stream"] = self.streaming
        if self.streaming:
            body["stream_options"] = {"include_usage": True}
        return body

    def _force_call(
        self, info: ServerInfo, body: dict[str, Any], tools: list[dict[str, Any]], chat_only: dict[str, Any]
    ) -> None:
        """Constrain the answer to a call of one of ``tools`` (see :mod:`.forced_calls`)."""
        fields = {*info.dialect.schema_fields({}), "json_schema", "grammar", "response_format"}
        taken = sorted(name for name in fields if name in body or name in chat_only)
        if taken:
            msg = (
                f"{type(self).__name__}: a forced tool_choice constrains the answer to a tool call; "
                f"it cannot be combined with {taken[0]}."
            )
            raise InvalidParameterError(msg, parameter=taken[0])
        parallel = chat_only.pop("parallel_tool_calls", None) is True
        body.update(info.dialect.schema_fields(call_schema(tools, parallel=parallel)))

    # --- the exchange, sync and async --------------------------------------------------------

    def _request(
        self, messages: list[BaseMessage], stop: list[str], kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], DeltaReader]:
        """The request body and the reader of its answer."""
        body = self._chat_body(self.server_info(), messages, stop, kwargs)
        reader: DeltaReader = ChatReader(self.client.url("/v1/chat/completions"))
        if forced_tools(kwargs.get("tools"), kwargs.get("tool_choice")) is not None:
            reader = ForcedCallReader(reader, parallel=kwargs.get("parallel_tool_calls") is True)
        return body, reader

    def _iter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> Iterator[ChatDelta]:
        body, reader = self._request(messages, stop, kwargs)
        yield from self._exchange("/v1/chat/completions", body, reader)

    async def _aiter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> AsyncIterator[ChatDelta]:
        await self.aserver_info()
        body, reader = self._request(messages, stop, kwargs)
        async for delta in self._aexchange("/v1/chat/completions", body, reader):
            yield delta

    def _exchange(self, path: str, body: dict[str, Any], reader: DeltaReader) -> Iterator[ChatDelta]:
        """POST ``body`` to ``path`` and read the answer (streamed or whole) with ``reader``."""
        try:
            if not body.get("stream"):
                yield from reader.feed(self.client.post_json(path, body, model=self.model))
            else:
                events = self.client.stream_events(path, body, "sse", model=self.model)
                try:
                    for event in events:
                        yield from reader.feed(event)
                finally:
                    events.close()
        except LocalLLMError as error:
            raise self._translated_error(error) from error.__cause__
        yield from reader.close()

    async def _aexchange(
        self, path: str, body: dict[str, Any], reader: DeltaReader
    ) -> AsyncIterator[ChatDelta]:
        """Async :meth:`_exchange`."""
        try:
            if not body.get("stream"):
                for delta in reader.feed(await self.client.apost_json(path, body, model=self.model)):
                    yield delta
            else:
                events = self.client.astream_events(path, body, "sse", model=self.model)
                try:
                    async for event in events:
                        for delta in reader.feed(event):
                            yield delta
                finally:
                    await events.aclose()
        except LocalLLMError as error:
            raise self._translated_error(error) from error.__cause__
        for delta in reader.close():
            yield delta

    # --- tools and structured output ------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` to the model; the server parses its tool calls.

        ``tool_choice``: ``"auto"`` (default: the server's own tool-call parsing), ``"none"``
        (no tools sent), ``"any"``/``"required"``/``True`` (must call a tool) or a tool's name
        or OpenAI dict (must call that one). A forced choice is decoded under a JSON schema of
        the call, with the server's own constrained decoding (llama-server ``json_schema``,
        vLLM ``structured_outputs``, else ``response_format``), so every answer is a call of
        an allowed tool with arguments that follow its schema, whatever the model; with
        ``parallel_tool_calls=True`` one or more calls.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        names = [tool["function"]["name"] for tool in formatted]
        choice: Any = tool_choice
        if tool_choice is True or tool_choice == "any":
            choice = "required"
        elif isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required"):
            if tool_choice not in names:
                msg = f"tool_choice={tool_choice!r} is not one of the tools: {names}."
                raise InvalidParameterError(msg, parameter="tool_choice")
            choice = {"type": "function", "function": {"name": tool_choice}}
        elif tool_choice is False:
            choice = "none"
        if choice is not None:
            kwargs["tool_choice"] = choice
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Answers as ``schema`` (a pydantic class, TypedDict or JSON schema dict).

        ``method="json_schema"`` (default) constrains decoding to the schema with the server's
        own mechanism, so the answer parses by construction; ``"function_calling"`` forces
        a tool call; ``"json_mode"`` asks for any JSON object. ``strict`` is accepted for
        ``ChatOpenAI`` compatibility: constrained decoding is always strict.
        """
        if kwargs:
            msg = f"with_structured_output: unknown arguments {sorted(kwargs)}."
            raise InvalidParameterError(msg, parameter=next(iter(kwargs)))
        pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        if method == "function_calling":
            return super().with_structured_output(schema, include_raw=include_raw)
        if method not in ("json_schema", "json_mode"):
            msg = f"unknown method {method!r}; use json_schema, function_calling or json_mode."
            raise InvalidParameterError(msg, parameter="method")
        json_schema = convert_to_json_schema(schema) if method == "json_schema" else {"type": "object"}
        llm = self.bind(
            json_schema=json_schema,
            ls_structured_output_format={"kwargs": {"method": method}, "schema": json_schema},
        )
        parser: Runnable[Any, Any] = (
            PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
            if pydantic and method == "json_schema"
            else JsonOutputParser()
        )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")


class DeltaReader(Protocol):
    """Turns a server's answer, event by event, into :class:`ChatDelta` s."""

    def feed(self, event: Any) -> list[ChatDelta]: ...

    def close(self) -> list[ChatDelta]: ...


class ChatReader:
    """Reads ``/v1/chat/completions`` answers into :class:`ChatDelta` s, whatever the server.

    Text and reasoning (``reasoning_content`` from llama.cpp and older vLLM, ``reasoning``
    from vLLM >= 0.24 and Ollama) are emitted as they arrive; tool calls as chunks per
    ``index`` (vLLM streams ``arguments`` in fragments, Ollama sends each call whole). The
    last delta — finish reason, usage, timings — is emitted once the usage arrived, whether in
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
        self.emitted = False

    def feed(self, event: Any) -> list[ChatDelta]:
        if not isinstance(event, dict):
            raise MalformedResponseError(f"{self.url} sent an event that is not a JSON object: {event!r}")
        if isinstance(event.get("id"), str):
            self.message_id = event["id"]
        for key in ("model", "system_fingerprint"):
            if isinstance(event.get(key), str):
                self.metadata["model_name" if key == "model" else key] = event[key]
        deltas: list[ChatDelta] = []
        choices = event.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        part = choice.get("delta", choice.get("message")) or {}
        text = part.get("content") or ""
        reasoning = part.get("reasoning_content") or part.get("reasoning") or ""
        extra: dict[str, Any] = {}
        calls = part.get("tool_calls")
        if isinstance(calls, list) and calls:
            extra["tool_call_chunks"] = [_tool_call_chunk(call, i) for i, call in enumerate(calls)]
        if text or reasoning or extra:
            deltas.append(ChatDelta(text=text, reasoning=reasoning, message_id=self.message_id, extra=extra))
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            self.logprobs.extend(logprobs["content"])
        if choice.get("finish_reason"):
            self.finish = str(choice["finish_reason"])
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            self.usage = (usage["prompt_tokens"], int(usage.get("completion_tokens") or 0))
        timings = server_timings(event)
        if timings is not None:
            self.timings = timings
        if self.finish is not None and self.usage is not None:
            deltas.extend(self._last())
        return deltas

    def _last(self) -> list[ChatDelta]:
        if self.emitted or self.finish is None:
            return []
        self.emitted = True
        if self.logprobs:
            self.metadata["logprobs"] = {"content": self.logprobs}
        return [
            ChatDelta(
                finish_reason=self.finish,
                usage=self.usage,
                timings=self.timings,
                metadata=self.metadata,
                message_id=self.message_id,
            )
        ]

    def close(self) -> list[ChatDelta]:
        """The last delta if still held; a typed error if the answer never said it was complete."""
        if self.finish is None:
            msg = (
                f"The answer from {self.url} ended without a finish_reason. "
                "The server may have crashed or been stopped; check its log."
            )
            raise StreamInterruptedError(msg, url=self.url)
        return self._last()


def _tool_call_chunk(call: Any, position: int) -> dict[str, Any]:
    function = call.get("function") or {} if isinstance(call, dict) else {}
    arguments = function.get("arguments")
    if isinstance(arguments, dict):  # a server that sends arguments parsed
        arguments = json.dumps(arguments)
    return {
        "type": "tool_call_chunk",
        "name": function.get("name"),
        "args": arguments,
        "id": call.get("id") if isinstance(call, dict) else None,
        "index": call.get("index", position) if isinstance(call, dict) else position,
    }
