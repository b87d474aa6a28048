"""The base class of the chat models, written once for sync and async.

Subclasses implement one thing per path, ``_iter_deltas`` (and ``_aiter_deltas``
when they have a real async client): a stream of :class:`ChatDelta` — answer text
and reasoning text as they arrive, and on the last delta the finish reason, token
usage, timings and any runtime metadata. This class turns that stream into
``AIMessageChunk``s for ``_stream``/``_astream`` (firing ``on_llm_new_token`` per
delta) and joins the same chunks for ``_generate``/``_agenerate``, so an invoked
message equals the sum of the streamed chunks. Shared behaviour:

- ``content`` holds the answer; reasoning goes to ``additional_kwargs["reasoning_content"]``
  (LangChain's ``content_blocks`` turns it into standard ``reasoning`` blocks, and
  ``output_version="v1"`` puts those blocks in ``content``);
- the last chunk carries ``usage_metadata`` and ``response_metadata`` (``model_name``,
  ``model_provider``, ``finish_reason``, ``timings``, ...);
- stop sequences of the instance and of the call are merged (never a ``ValueError``);
- a typed error raised mid-stream carries the answer already streamed in ``partial_text``;
- an empty message list is refused with a typed error before the runtime is touched;
- ``bind_tools`` and ``with_structured_output`` are the same on every runtime
  (:mod:`~langchain_localllm._core.tools.calling`), and a tool call's arguments are bounded
  (``MAX_TOOL_CALL_ARGUMENTS``): more is a ``MalformedResponseError``.

:func:`messages_to_dicts` converts LangChain messages to OpenAI-style dicts (role,
content, ``tool_calls``, ``tool_call_id``, images as content parts) — the one
representation the Jinja renderer, Ollama's ``/api/chat`` and OpenAI-compatible
servers all start from. :class:`ReasoningSplitter` splits ``<think>...</think>`` (or
a template's own markers) out of a streamed text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_ai_message_chunks
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, ValidationError, model_validator

from langchain_localllm._core.base.params import check_params, raise_from_validation_error
from langchain_localllm._core.base.peers import PeerArguments
from langchain_localllm._core.base.profile import ProfileReader, attach_profile, rebind_profile
from langchain_localllm._core.base.threads import aiter_in_thread
from langchain_localllm._core.tools.calling import MAX_TOOL_CALL_ARGUMENTS, ToolCalling
from langchain_localllm.errors import InvalidMessagesError, LocalLLMError, MalformedResponseError

__all__ = [
    "ChatDelta",
    "LocalChatModel",
    "ReasoningSplitter",
    "image_base64",
    "messages_to_dicts",
]


@dataclass
class ChatDelta:
    """One step of a chat model's stream, as a runtime reports it.

    Only the last delta of a stream carries ``finish_reason``, ``usage``, ``timings``
    and ``metadata``; any delta may carry text and/or reasoning.
    """

    text: str = ""
    """Answer text that arrived in this step."""
    reasoning: str = ""
    """Reasoning ("thinking") text that arrived in this step."""
    finish_reason: str | None = None
    """``"stop"`` or ``"length"`` (or the runtime's own reason) on the last delta."""
    usage: tuple[int, int] | None = None
    """``(input_tokens, output_tokens)`` on the last delta, when the runtime counts them."""
    timings: dict[str, Any] | None = None
    """llama-server-style timings (see ``_core.generation_info.timings_info``)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Extra ``response_metadata`` entries (runtime specifics) on the last delta."""
    message_id: str | None = None
    """An id the runtime gave the answer; LangChain assigns a run id otherwise."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Extra ``AIMessageChunk`` fields for this step (e.g. ``tool_call_chunks``)."""

    @property
    def is_last(self) -> bool:
        return self.finish_reason is not None


class LocalChatModel(PeerArguments, ToolCalling, BaseChatModel):
    """Shared behaviour of the chat models of every runtime."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    _provider: ClassVar[str] = "localllm"
    """``response_metadata["model_provider"]``."""

    _profile_reader: ClassVar[ProfileReader | None] = None
    """How ``profile`` is read from the model and the runtime (``_core.chat_profile``)."""

    stop: list[str] | None = None
    """Stop sequences for every call. Sequences passed to a call (``stop=[...]``) are
    added to these; generation ends at the first one found, which is not returned."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise_from_validation_error(error, type(self).__name__, type(self).model_fields)
        check_params(self.__dict__, type(self).__name__)

    @model_validator(mode="after")
    def _attach_live_profile(self) -> LocalChatModel:
        # After langchain-core's own profile validators (which see only what the user passed).
        attach_profile(self, self._profile_reader)
        return self

    def __copy__(self) -> LocalChatModel:
        copied = super().__copy__()
        rebind_profile(copied)
        return copied

    # --- what subclasses implement ---------------------------------------------------

    def _iter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> Iterator[ChatDelta]:
        """Answer ``messages``; the last delta has ``finish_reason`` set."""
        raise NotImplementedError

    def _aiter_deltas(
        self, messages: list[BaseMessage], stop: list[str], **kwargs: Any
    ) -> AsyncIterator[ChatDelta]:
        """Async twin of ``_iter_deltas``; by default runs it in a worker thread."""
        return aiter_in_thread(lambda: self._iter_deltas(messages, stop, **kwargs))

    @property
    def model_name(self) -> str:
        """The model's name (file stem or server model name) for metadata and formats."""
        raise NotImplementedError

    @property
    def _llm_type(self) -> str:
        return f"{self._provider}-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self._provider
        params["ls_model_name"] = kwargs.get("model") or self.model_name
        return params

    # --- shared machinery --------------------------------------------------------------

    def _stop_sequences(self, stop: Sequence[str] | None) -> list[str]:
        """Instance stop sequences followed by the call's, without duplicates."""
        return list(dict.fromkeys([*(self.stop or []), *(stop or [])]))

    def _check_call_kwargs(self, kwargs: dict[str, Any]) -> None:
        """Check per-call keyword arguments (ranges; server models also refuse unknown names)."""
        check_params(kwargs, type(self).__name__)

    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> list[str]:
        self._check_call_kwargs(kwargs)
        if not messages:
            raise InvalidMessagesError(
                f"{type(self).__name__} got an empty message list; pass at least one message, "
                "e.g. [HumanMessage('Hello')].",
            )
        return self._stop_sequences(stop)

    def _checked_chunk(self, delta: ChatDelta, calls: _ToolCallSizes) -> ChatGenerationChunk:
        """The chunk of ``delta``, once its tool calls are known to be within bounds."""
        if delta.extra:
            calls.add(delta.extra.get("tool_call_chunks"), self.model_name)
        try:
            return self._chunk(delta)
        except RecursionError:  # LangChain parsing tool-call arguments nested beyond Python's stack
            msg = f"{self.model_name}: a tool call's arguments are nested too deeply to be read."
            raise MalformedResponseError(msg) from None

    def _chunk(self, delta: ChatDelta) -> ChatGenerationChunk:
        message = AIMessageChunk(content=delta.text, id=delta.message_id, **delta.extra)
        if delta.reasoning:
            message.additional_kwargs["reasoning_content"] = delta.reasoning
        if delta.is_last:
            metadata: dict[str, Any] = {
                "model_name": self.model_name,
                "model_provider": self._provider,
                "finish_reason": delta.finish_reason,
            }
            if delta.timings:
                metadata["timings"] = delta.timings
            metadata.update(delta.metadata)
            message.response_metadata = metadata
            message.chunk_position = "last"
            if delta.usage is not None:
                n_in, n_out = delta.usage
                usage = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
                message.usage_metadata = cast(UsageMetadata, usage)
        info: dict[str, Any] | None = None
        if delta.is_last:  # as the LLMs report it, so the callback handlers read chat runs too
            info = {"finish_reason": delta.finish_reason}
            if delta.timings:
                info["timings"] = delta.timings
            if delta.usage is not None:
                n_in, n_out = delta.usage
                info["usage"] = {
                    "prompt_tokens": n_in,
                    "completion_tokens": n_out,
                    "total_tokens": n_in + n_out,
                }
        return ChatGenerationChunk(message=message, generation_info=info)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        stops = self._prepare(messages, stop, kwargs)
        delivered: list[str] = []
        calls = _ToolCallSizes()
        with _keeping_partial_text(delivered):
            for delta in self._iter_deltas(messages, stops, **kwargs):
                chunk = self._checked_chunk(delta, calls)
                delivered.append(delta.text)
                if run_manager is not None and (delta.text or delta.reasoning or delta.extra):
                    run_manager.on_llm_new_token(delta.text, chunk=chunk)
                yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        stops = self._prepare(messages, stop, kwargs)
        delivered: list[str] = []
        calls = _ToolCallSizes()
        deltas = self._aiter_deltas(messages, stops, **kwargs)
        with _keeping_partial_text(delivered):
            async with _closing(deltas):
                async for delta in deltas:
                    chunk = self._checked_chunk(delta, calls)
                    delivered.append(delta.text)
                    if run_manager is not None and (delta.text or delta.reasoning or delta.extra):
                        await run_manager.on_llm_new_token(delta.text, chunk=chunk)
                    yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _joined(list(self._stream(messages, stop, run_manager, **kwargs)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _joined([chunk async for chunk in self._astream(messages, stop, run_manager, **kwargs)])


class _ToolCallSizes:
    """The size of each streamed tool call's arguments so far, bounded by ``MAX_TOOL_CALL_ARGUMENTS``."""

    def __init__(self) -> None:
        self.sizes: dict[Any, int] = {}

    def add(self, chunks: Any, model: str) -> None:
        for chunk in chunks or ():
            args = chunk.get("args") if isinstance(chunk, dict) else None
            if not isinstance(args, str):
                continue
            index = chunk.get("index")
            size = self.sizes[index] = self.sizes.get(index, 0) + len(args)
            if size > MAX_TOOL_CALL_ARGUMENTS:
                msg = (
                    f"The answer of {model} holds a tool call (index {index!r}) whose arguments exceed "
                    f"{MAX_TOOL_CALL_ARGUMENTS} characters; it is refused rather than parsed "
                    "(MAX_TOOL_CALL_ARGUMENTS in langchain_localllm._core.tools.calling)."
                )
                raise MalformedResponseError(msg, limit=MAX_TOOL_CALL_ARGUMENTS)


@contextmanager
def _keeping_partial_text(delivered: list[str]) -> Iterator[None]:
    """A typed error raised inside carries the answer text delivered so far."""
    try:
        yield
    except LocalLLMError as error:
        error.partial_text = error.partial_text or "".join(delivered)
        raise


@asynccontextmanager
async def _closing(iterator: AsyncIterator[Any]) -> AsyncIterator[None]:
    """Close an async generator when the consumer stops early (ends generation)."""
    try:
        yield
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _joined(chunks: list[ChatGenerationChunk]) -> ChatResult:
    """The chunks merged into one message (exactly what summing the stream gives)."""
    if not chunks:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])
    messages = [c.message for c in chunks if isinstance(c.message, AIMessageChunk)]
    merged = add_ai_message_chunks(messages[0], *messages[1:]) if len(messages) > 1 else messages[0]
    fields = merged.model_dump(exclude={"type", "tool_call_chunks", "chunk_position"})
    fields["tool_calls"] = merged.tool_calls
    fields["invalid_tool_calls"] = merged.invalid_tool_calls
    message = AIMessage(**fields)
    info = chunks[-1].generation_info
    return ChatResult(
        generations=[ChatGeneration(message=message, generation_info=info)],
        llm_output={"model_name": merged.response_metadata.get("model_name")},
    )


# --- messages ----------------------------------------------------------------------


def messages_to_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as OpenAI-style dicts, the shape chat templates expect.

    ``{"role", "content"}`` with ``content`` a string when the message is all text, or a
    list of parts (``{"type": "text", "text"}``, ``{"type": "image_url", "image_url":
    {"url"}}``) when it holds images; assistant messages carry ``tool_calls`` (OpenAI
    form, ``arguments`` a JSON string) and, when the model reasoned,
    ``reasoning_content``; tool messages carry ``tool_call_id``.
    """
    converted = convert_to_openai_messages(list(messages), text_format="string")
    for message, out in zip(messages, converted, strict=True):
        reasoning = message.additional_kwargs.get("reasoning_content")
        if message.type == "ai" and isinstance(reasoning, str) and reasoning:
            out["reasoning_content"] = reasoning
        if message.type == "ai" and out.get("content") is None:
            out["content"] = ""
    return converted


def image_base64(part: dict[str, Any]) -> str:
    """The base64 data of an ``image_url`` content part (``data:`` URLs only).

    Local runtimes cannot fetch remote images (and must not: no network but the
    configured endpoint), so an ``http(s)://`` URL is refused with a typed error.
    """
    url = part.get("image_url")
    url = url.get("url") if isinstance(url, dict) else url
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise InvalidMessagesError(
            "Images must be given inline as base64 (a data: URL or a base64 content block); "
            f"got {str(url)[:60]!r}. Download the image yourself and pass its bytes.",
        )
    data = url.split(";base64,", 1)[1]
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessagesError("An image's base64 data is not valid base64.") from None
    return data


# --- reasoning ---------------------------------------------------------------------


class ReasoningSplitter:
    """Split streamed text into reasoning and answer at ``<think>``/``</think>`` markers.

    Feed text as it arrives; each call returns ``(reasoning, answer)`` text safe to emit
    now. A partial marker at the end of a piece is held back until the next piece shows
    whether it is a marker. ``inside=True`` starts in reasoning (templates that open the
    thinking block in the prompt, like DeepSeek R1's ``<think>\\n``).
    """

    def __init__(self, start: str = "<think>", end: str = "</think>", *, inside: bool = False) -> None:
        self.start, self.end = start, end
        self.inside = inside
        self._held = ""
        self._after_reasoning = False

    def feed(self, text: str) -> tuple[str, str]:
        """Add ``text``; return the ``(reasoning, answer)`` text that can be emitted now."""
        buffer = self._held + text
        self._held = ""
        reasoning: list[str] = []
        answer: list[str] = []
        while buffer:
            marker = self.end if self.inside else self.start
            at = buffer.find(marker)
            if at >= 0:
                self._emit(buffer[:at], reasoning, answer)
                buffer = buffer[at + len(marker) :]
                self.inside = not self.inside
                self._after_reasoning = not self.inside
                continue
            keep = _partial_suffix(buffer, marker)
            self._emit(buffer[: len(buffer) - keep], reasoning, answer)
            self._held = buffer[len(buffer) - keep :]
            break
        return "".join(reasoning), "".join(answer)

    def flush(self) -> tuple[str, str]:
        """At the end of the stream: whatever was held back."""
        held, self._held = self._held, ""
        reasoning: list[str] = []
        answer: list[str] = []
        self._emit(held, reasoning, answer)
        return "".join(reasoning), "".join(answer)

    def _emit(self, text: str, reasoning: list[str], answer: list[str]) -> None:
        if self.inside:
            if text:
                reasoning.append(text)
            return
        if self._after_reasoning:  # the answer starts after the blank line closing the thoughts
            text = text.lstrip("\n")
            self._after_reasoning = not text
        if text:
            answer.append(text)


def _partial_suffix(buffer: str, marker: str) -> int:
    """Length of the longest end of ``buffer`` that starts ``marker``."""
    for n in range(min(len(marker) - 1, len(buffer)), 0, -1):
        if buffer.endswith(marker[:n]):
            return n
    return 0
