"""``ChatOllama``: chat with a model served by a local Ollama server (``/api/chat``)."""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar, Literal

from langchain_core.messages import BaseMessage
from pydantic import PrivateAttr, model_validator

from langchain_localllm._core.chat_model import ChatDelta, ReasoningSplitter, image_base64, messages_to_dicts
from langchain_localllm._core.chat_profile import ProfileReader
from langchain_localllm._core.http_chat import ServerChatModel
from langchain_localllm._core.http_errors import OLLAMA, ServerKind
from langchain_localllm._core.http_llm import ResponseParser, ServerRequest, drop_none
from langchain_localllm._core.message_tokens import estimated_tokens
from langchain_localllm._core.tool_calling import TOOL_CALL_ARGS, ToolCallingMixin, tool_request
from langchain_localllm.errors import (
    InvalidParameterError,
    MalformedResponseError,
)
from langchain_localllm.ollama.client import OllamaConnection
from langchain_localllm.ollama.llms import Ollama, ollama_timings
from langchain_localllm.ollama.options import _OPTION_FIELDS, OllamaOptions
from langchain_localllm.ollama.profile import OLLAMA_PROFILE
from langchain_localllm.ollama.tools import aforced_deltas, apply_tool_request, call_chunks, forced_deltas

__all__ = ["ChatOllama"]

_REASONING_LEVELS = ("low", "medium", "high")


class ChatOllama(ToolCallingMixin, OllamaConnection, OllamaOptions, ServerChatModel):
    """Chat with a model served by a local Ollama server (``/api/chat``).

    A drop-in for ``langchain_ollama.ChatOllama``: every argument it takes is accepted.
    Reasoning is kept by default: Ollama's ``thinking`` (and ``<think>...</think>`` a
    model writes inline) goes to ``additional_kwargs["reasoning_content"]`` and the
    message's ``reasoning`` content blocks, streamed as it arrives.

    Setup:
        ```bash
        ollama serve
        ollama pull qwen3:0.6b
        ```

        ``base_url`` defaults to ``OLLAMA_HOST`` when set, else ``http://localhost:11434``.

    Key init args — completion params:
        model: str
            Name of the Ollama model.
        reasoning: bool | "low" | "medium" | "high" | None
            Sent as ``think``. None: the model's default; its thinking is still kept.
        temperature: float | None
            Sampling temperature.
        num_predict: int | None
            Most tokens to generate.
        num_ctx: int | None
            Context window to run the model with.
        format: "json" | dict | None
            JSON mode, or a JSON schema the answer must follow.

    Key init args — client params:
        base_url: str
            Root URL of the server.
        keep_alive: int | str | None
            How long the server keeps the model loaded (keeps its prompt cache warm).
        validate_model_on_init: bool
            Check at construction that the server has the model.

    Instantiate:
        ```python
        from langchain_localllm import ChatOllama

        chat = ChatOllama(model="qwen3:0.6b", temperature=0)
        ```

    Invoke:
        ```python
        message = chat.invoke([("system", "Be brief."), ("human", "What is 2 + 2?")])
        message.content                               # '4'
        message.additional_kwargs["reasoning_content"]  # 'The user asks ...'
        message.usage_metadata  # {'input_tokens': 21, 'output_tokens': 40, 'total_tokens': 61}
        message.response_metadata["finish_reason"]     # 'stop'
        ```

    Stream:
        ```python
        for chunk in chat.stream("Count to 5"):
            print(chunk.content, end="", flush=True)
        ```

    Async:
        ```python
        await chat.ainvoke("Hello")
        async for chunk in chat.astream("Hello"):
            print(chunk.content, end="")
        ```

    Images go as base64 (``{"type": "image", "base64": ..., "mime_type": "image/png"}``
    or a ``data:`` URL); the package never fetches a URL itself.
    """

    _provider: ClassVar[str] = "ollama"
    _profile_reader: ClassVar[ProfileReader | None] = OLLAMA_PROFILE
    _server_kind: ClassVar[ServerKind] = OLLAMA
    _call_params: ClassVar[frozenset[str]] = frozenset(
        (
            *_OPTION_FIELDS,
            "options",
            "format",
            "keep_alive",
            "reasoning",
            "think",
            "model",
            "max_tokens",
            *TOOL_CALL_ARGS,
        )
    )

    model: str
    """Name of the Ollama model (``name[:tag]``)."""

    _ollama_llm: tuple[tuple[Any, ...], Ollama] | None = PrivateAttr(default=None)

    reasoning: bool | str | None = None
    """Sent as ``think``: True/False, or ``"low"``/``"medium"``/``"high"`` for models with
    levels. None sends nothing (the model's default). Thinking the server returns is always
    kept, except with ``reasoning=False``."""

    format: Literal["", "json"] | dict[str, Any] | None = None
    """``"json"`` for JSON mode, or a JSON schema the answer must follow."""

    keep_alive: int | str | None = None
    """How long the model stays loaded after the call (``"5m"``, seconds, ``0`` to unload)."""

    max_tokens: int | None = None
    """OpenAI-style name of ``num_predict`` (most tokens to generate), for code written for
    other chat models; ``num_predict`` wins when both are given."""

    logprobs: bool | None = None
    """Ask for the log-probability of each token (``response_metadata["logprobs"]``)."""

    top_logprobs: int | None = None
    """How many alternatives per token to return with ``logprobs``."""

    @model_validator(mode="after")
    def _check(self) -> ChatOllama:
        _check_reasoning(self.reasoning)
        return self

    # --- identity -------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The Ollama model name."""
        return self.model

    @property
    def _model_for_errors(self) -> str | None:
        return self.model

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_name"] = kwargs.get("model") or self.model
        options = self._merged_options(kwargs)
        if options.get("temperature") is not None:
            params["ls_temperature"] = options["temperature"]
        if options.get("num_predict") is not None:
            params["ls_max_tokens"] = options["num_predict"]
        if stops := self._stop_sequences(stop):
            params["ls_stop"] = stops
        return params

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "options": self._instance_options()}

    @property
    def _ollama(self) -> Ollama:
        """The same model as an ``Ollama`` LLM (model information, token counts), kept while the
        connection settings stay the same so that its ``/api/show`` answer and counts are reused
        (a copy or an assignment that changes them gets a new one)."""
        headers = self._request_headers()  # client_kwargs' headers included
        settings = (
            self.model,
            self.base_url,
            headers,
            self.timeout,
            self.num_ctx,
            self.options,
        )
        cached = self._ollama_llm
        if cached is None or cached[0] != settings:
            llm = Ollama(
                model=self.model,
                base_url=self.base_url,
                headers=headers,
                timeout=self.timeout,
                num_ctx=self.num_ctx,
                options=self.options,
            )
            cached = self._ollama_llm = (settings, llm)
        return cached[1]

    def chat_template(self) -> str | None:
        """The model's template from ``/api/show`` (for prompt-format detection)."""
        return self._ollama.chat_template()

    def get_context_window(self) -> int | None:
        """``num_ctx`` if set, else the model's (from ``/api/show``)."""
        return self._ollama.get_context_window()

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text``, counted by the server (see ``Ollama.get_num_tokens``)."""
        return self._ollama.get_num_tokens(text)

    def get_token_ids(self, text: str) -> list[int]:
        """Ollama has no tokenize endpoint, so token ids cannot be had; counts can
        (``get_num_tokens``). Never falls back to downloading GPT-2's tokenizer."""
        return self._ollama.get_token_ids(text)  # raises UnsupportedParameterError saying why

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        """An estimate, without a request: Ollama has no tokenizer endpoint, and counting by
        running the model would evict the conversation's prompt cache. See
        ``_core.message_tokens.estimated_tokens`` for how and its error bound."""
        return estimated_tokens(messages, tools)

    # --- requests -------------------------------------------------------------------------

    def _build_request(
        self, messages: list[BaseMessage], stop: list[str], kwargs: dict[str, Any]
    ) -> ServerRequest:
        options = self._merged_options(kwargs)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None and "num_predict" not in options:  # num_predict wins
            options["num_predict"] = max_tokens
        if stop:
            options["stop"] = list(dict.fromkeys([*options.get("stop", []), *stop]))
        payload: dict[str, Any] = {
            "model": kwargs.get("model") or self.model,
            "messages": [_ollama_message(m) for m in messages_to_dicts(messages)],
            "stream": self.streaming,
            "truncate": False,  # a prompt longer than the context is an error, never cut at the front
        }
        reasoning = kwargs.get("reasoning", kwargs.get("think", self.reasoning))
        _check_reasoning(reasoning)
        if reasoning is not None:
            payload["think"] = reasoning
        fmt = kwargs.get("format", self.format)
        if fmt:
            payload["format"] = fmt
        keep_alive = kwargs.get("keep_alive", self.keep_alive)
        if keep_alive is not None:
            payload["keep_alive"] = keep_alive
        if kwargs.get("tools"):
            payload["tools"] = kwargs["tools"]
        if self.logprobs:
            payload["logprobs"] = True
            if self.top_logprobs is not None:
                payload["top_logprobs"] = self.top_logprobs
        if options:
            payload["options"] = options
        return ServerRequest("/api/chat", payload, "ndjson" if self.streaming else None)

    def _new_parser(self) -> ResponseParser[ChatDelta]:
        return _ChatParser(self.model, split_inline=self.reasoning is not False)

    def _iter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> Iterator[ChatDelta]:
        request = tool_request(kwargs)
        messages = apply_tool_request(messages, kwargs, request)
        deltas = super()._iter_deltas(messages, stop, **kwargs)
        return forced_deltas(deltas) if request.forced_tools else deltas

    def _aiter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> AsyncIterator[ChatDelta]:
        request = tool_request(kwargs)
        messages = apply_tool_request(messages, kwargs, request)
        deltas = super()._aiter_deltas(messages, stop, **kwargs)
        return aforced_deltas(deltas) if request.forced_tools else deltas


def _check_reasoning(value: Any) -> None:
    if value is None or isinstance(value, bool) or value in _REASONING_LEVELS:
        return
    raise InvalidParameterError(
        f"ChatOllama: reasoning={value!r} is not valid; use True, False, None or one of "
        f"{', '.join(map(repr, _REASONING_LEVELS))}.",
        parameter="reasoning",
        value=value,
    )


def _ollama_message(message: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-style message dict in ``/api/chat`` form: text ``content``, base64
    ``images``, ``tool_calls`` with object ``arguments``, ``thinking`` for past reasoning."""
    out: dict[str, Any] = {"role": message["role"]}
    content = message.get("content")
    if isinstance(content, list):
        texts = [str(p.get("text", "")) for p in content if p.get("type") == "text"]
        images = [image_base64(p) for p in content if p.get("type") == "image_url"]
        out["content"] = "\n".join(texts)
        if images:
            out["images"] = images
    else:
        out["content"] = content or ""
    if message.get("reasoning_content"):
        out["thinking"] = message["reasoning_content"]
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {"function": {"name": c["function"]["name"], "arguments": _arguments(c["function"]["arguments"])}}
            for c in message["tool_calls"]
        ]
    if message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    return out


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw or "{}")
        except ValueError:
            return raw
    return raw


class _ChatParser(ResponseParser[ChatDelta]):
    """``/api/chat`` answers: NDJSON ``{"message": {"content", "thinking"}, "done"}`` lines."""

    def __init__(self, model: str, *, split_inline: bool) -> None:
        self.model = model
        self.splitter = ReasoningSplitter() if split_inline else None
        self.saw_content = False
        self.saw_reasoning = False
        self.calls = 0

    def feed(self, event: Any) -> ChatDelta | None:
        if not isinstance(event, dict) or not ("message" in event or "done" in event):
            raise MalformedResponseError(
                f"Ollama sent a line that is not a chat response: {event!r}", event=event
            )
        message = event.get("message") or {}
        reasoning = str(message.get("thinking") or "")
        text = str(message.get("content") or "")
        if self.splitter is not None:
            inline_reasoning, text = self.splitter.feed(text)
            reasoning += inline_reasoning
            if event.get("done"):
                r, t = self.splitter.flush()
                reasoning, text = reasoning + r, text + t
        self.saw_content = self.saw_content or bool(text.strip())
        self.saw_reasoning = self.saw_reasoning or bool(reasoning)
        chunks = call_chunks(message.get("tool_calls"), self.calls)
        self.calls += len(chunks)
        extra = {"tool_call_chunks": chunks} if chunks else {}
        if not event.get("done"):
            return (
                ChatDelta(text=text, reasoning=reasoning, extra=extra)
                if text or reasoning or chunks
                else None
            )
        self.done = True
        final = self._final(event, text, reasoning)
        final.extra = extra
        if self.calls and final.finish_reason == "stop":
            final.finish_reason = "tool_calls"
        return final

    def _final(self, event: dict[str, Any], text: str, reasoning: str) -> ChatDelta:
        prompt_tokens = event.get("prompt_eval_count")
        completion_tokens = event.get("eval_count")
        timings = ollama_timings(event)
        finish = str(event.get("done_reason") or "stop")
        if finish == "length" and self.saw_reasoning and not self.saw_content:
            warnings.warn(
                f"{self.model} spent the whole token budget thinking and gave no answer "
                "(finish_reason='length'); raise num_predict or lower the reasoning effort.",
                stacklevel=2,
            )
        usage = None
        if isinstance(prompt_tokens, int) or isinstance(completion_tokens, int):
            usage = (
                prompt_tokens if isinstance(prompt_tokens, int) else 0,
                completion_tokens if isinstance(completion_tokens, int) else 0,
            )
        metadata = drop_none(
            {
                "model": event.get("model") or self.model,
                "created_at": event.get("created_at"),
                "done_reason": event.get("done_reason"),
                "logprobs": event.get("logprobs"),
            }
        )
        metadata["model_name"] = event.get("model") or self.model
        return ChatDelta(
            text=text,
            reasoning=reasoning,
            finish_reason=finish,
            usage=usage,
            timings=timings or None,
            metadata=metadata,
        )
