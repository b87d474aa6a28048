"""What the server backends (``Ollama``, ``Llamafile``) share on top of :class:`LocalLLM`.

A subclass says how to build a request (:meth:`ServerLLM._build_request`) and how to read
the server's answers (a :class:`ResponseParser`). This class runs the exchange, once
for the sync path and once for the async path, with the same request and parser:
only the I/O differs.
"""

from __future__ import annotations

import difflib
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Generator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base_llm import LocalLLM
from langchain_localllm._core.fleet import FleetClient
from langchain_localllm._core.http import HttpClient
from langchain_localllm._core.http_connection import ServerConnection
from langchain_localllm._core.http_errors import ServerKind
from langchain_localllm._core.params import check_params
from langchain_localllm.errors import InvalidParameterError, StreamInterruptedError


@dataclass
class ServerRequest:
    """One generation request: where to send it, what, and how the answer streams."""

    path: str
    payload: dict[str, Any]
    stream_format: str | None
    """``"ndjson"`` or ``"sse"`` for a streamed answer; None for one JSON object."""


T = TypeVar("T")


class ResponseParser(Generic[T]):
    """Reads one answer, event by event; the item of the final event carries the info.

    ``T`` is what the model class streams: ``GenerationChunk`` for the LLMs,
    ``ChatDelta`` for the chat models.
    """

    done: bool = False
    """Set when the server said the answer is complete."""

    def feed(self, event: Any) -> T | None:
        """The chunk for one decoded event (None if it carries no text and is not final)."""
        raise NotImplementedError

    def close(self) -> T | None:
        """A last item held back until the answer ended (e.g. usage sent after the finish)."""
        return None

    def finish(self, url: str, server: ServerKind) -> None:
        """Raise :class:`StreamInterruptedError` if the answer ended before it was complete."""
        if not self.done:
            msg = (
                f"The answer from {server.name} at {url} ended before the server said it was "
                "complete (no final event). The server may have crashed or been stopped; check its log."
            )
            raise StreamInterruptedError(msg, url=url)


class ServerLLM(ServerConnection, LocalLLM):
    """Base of the LLMs that call a local model server over HTTP."""

    _call_params: ClassVar[frozenset[str]] = frozenset()
    """Names accepted as per-call keyword arguments (``llm.invoke(p, temperature=0)``)."""

    streaming: bool = True
    """Ask the server to stream tokens. When False every call is one JSON request and the text
    arrives as a single chunk (``stream()`` then yields it at once)."""

    # --- what subclasses provide ---------------------------------------------------------

    def _build_request(self, prompt: str, stop: list[str], kwargs: dict[str, Any]) -> ServerRequest:
        raise NotImplementedError

    def _new_parser(self) -> ResponseParser:
        raise NotImplementedError

    def _check_call_kwargs(self, kwargs: dict[str, Any]) -> None:
        check_call_kwargs(kwargs, self._call_params, type(self).__name__)

    # --- the exchange, sync and async -------------------------------------------------

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        request = self._build_request(prompt, stop, kwargs)
        return iter_exchange(self.client, request, self._new_parser(), self._model_for_errors)

    def _aiter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> AsyncIterator[GenerationChunk]:
        request = self._build_request(prompt, stop, kwargs)
        return aiter_exchange(self.client, request, self._new_parser(), self._model_for_errors)

    @property
    def _model_for_errors(self) -> str | None:
        return None


def check_call_kwargs(kwargs: dict[str, Any], allowed: Collection[str], owner: str) -> None:
    """Refuse per-call keyword arguments the class does not know (with a did-you-mean)."""
    for name in kwargs:
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(allowed))}"
            msg = f"{owner}: unknown per-call argument {name!r}; {hint}"
            raise InvalidParameterError(msg, parameter=name)
    check_params(kwargs, owner)


def iter_exchange(
    client: HttpClient | FleetClient, request: ServerRequest, parser: ResponseParser[T], model: str | None
) -> Iterator[T]:
    """Send ``request`` and yield what ``parser`` makes of each event of the answer."""
    if request.stream_format is None:
        item = parser.feed(client.post_json(request.path, request.payload, model=model))
        if item is not None:
            yield item
    else:
        events: Generator[Any, None, None] = client.stream_events(
            request.path, request.payload, request.stream_format, model=model
        )
        try:
            for event in events:
                item = parser.feed(event)
                if item is not None:
                    yield item
        finally:
            events.close()  # stopping early closes the response: the server stops generating
    tail = parser.close()
    if tail is not None:
        yield tail
    parser.finish(client.url(request.path), client.server)


async def aiter_exchange(
    client: HttpClient | FleetClient, request: ServerRequest, parser: ResponseParser[T], model: str | None
) -> AsyncIterator[T]:
    """Async twin of :func:`iter_exchange` (the same request and parser; only the I/O differs)."""
    if request.stream_format is None:
        answer = await client.apost_json(request.path, request.payload, model=model)
        item = parser.feed(answer)
        if item is not None:
            yield item
    else:
        events: AsyncGenerator[Any, None] = client.astream_events(
            request.path, request.payload, request.stream_format, model=model
        )
        try:
            async for event in events:
                item = parser.feed(event)
                if item is not None:
                    yield item
        finally:
            await events.aclose()
    tail = parser.close()
    if tail is not None:
        yield tail
    parser.finish(client.url(request.path), client.server)


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the entries that are None (unset options are not sent)."""
    return {key: value for key, value in values.items() if value is not None}


def nanos_to_ms(value: Any) -> float | None:
    """Ollama's integer nanoseconds as milliseconds."""
    return value / 1e6 if isinstance(value, int | float) and not isinstance(value, bool) else None
