"""The one exchange every server-backed LLM and chat model runs, sync and async.

A model builds a :class:`ServerRequest` (where to send what, and how the answer streams)
and picks an :class:`AnswerReader` for the answer. :func:`exchange` and :func:`aexchange`
are the only loops: they send the request (one JSON answer, or an NDJSON/SSE stream),
feed each event to the reader and yield what it makes of it, then check that the answer
was complete. Readers do no I/O, so one reader serves both loops; a fix made here reaches
``Ollama``, ``Llamafile``, ``OpenAICompatible``, ``ChatOllama``, ``ChatLlamafile`` and
``ChatOpenAICompatible`` alike.

Answers are untrusted: an event of an unexpected shape (a string where an object belongs,
an object where text belongs, JSON nested deeper than Python can follow) is a
:class:`~langchain_localllm.errors.MalformedResponseError` naming the endpoint, never a raw
``AttributeError``, ``RecursionError`` or pydantic ``ValidationError``.

>>> class Texts(AnswerReader[str]):
...     def feed(self, event):
...         self.done = event.get("done", False)
...         return event.get("text") or None
>>> reader = Texts()
>>> [reader.feed(e) for e in ({"text": "Hel"}, {"text": "lo", "done": True})], reader.done
(['Hel', 'lo'], True)
"""

from __future__ import annotations

import difflib
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Generator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from langchain_localllm._core.base.params import check_params
from langchain_localllm._core.http.client import HttpClient
from langchain_localllm._core.http.fleet import FleetClient
from langchain_localllm._core.server.connection import ServerConnection
from langchain_localllm.errors import (
    InvalidParameterError,
    LocalLLMError,
    MalformedResponseError,
    StreamInterruptedError,
)

__all__ = [
    "AnswerReader",
    "ReadThrough",
    "ServerModel",
    "ServerRequest",
    "aexchange",
    "check_call_kwargs",
    "exchange",
    "text_field",
]

S = TypeVar("S")
T = TypeVar("T")


@dataclass
class ServerRequest:
    """One generation request: where to send it, what, and how the answer streams."""

    path: str
    """The endpoint, e.g. ``/api/chat`` or ``/v1/chat/completions``."""
    payload: dict[str, Any]
    """The JSON body."""
    stream_format: str | None
    """``"ndjson"`` or ``"sse"`` for a streamed answer; None for one JSON object."""


class AnswerReader(Generic[T]):
    """Reads one answer, event by event, without I/O: at most one item per event.

    ``T`` is what the model class streams: ``GenerationChunk`` for the LLMs, ``ChatDelta``
    for the chat models. A reader sets :attr:`done` once the server said the answer is
    complete; the item that completes it carries the final information (finish reason,
    usage, timings).
    """

    done: bool = False
    """Set when the server said the answer is complete."""

    def feed(self, event: Any) -> T | None:
        """The item for one decoded event (None if it carries nothing to emit yet)."""
        raise NotImplementedError

    def close(self) -> T | None:
        """At the end of the body: an item held back (e.g. the finish, when usage never came)."""
        return None


class ReadThrough(AnswerReader[T], Generic[S, T]):
    """A reader over another one: each item the inner reader makes, converted by :meth:`convert`."""

    def __init__(self, inner: AnswerReader[S]) -> None:
        self.inner = inner

    def feed(self, event: Any) -> T | None:
        return self._through(self.inner.feed(event))

    def close(self) -> T | None:
        return self._through(self.inner.close())

    def convert(self, item: S) -> T | None:
        """What to emit for one item of the inner reader (None: nothing yet)."""
        raise NotImplementedError

    def _through(self, item: S | None) -> T | None:
        self.done = self.inner.done
        return None if item is None else self.convert(item)


def text_field(value: Any, url: str, name: str) -> str:
    """A text field of an answer: a string, or "" when absent or null.

    Raises:
        MalformedResponseError: anything else (an object or a number where text belongs).
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    msg = f"The server at {url} sent {name} that is not text: {_shown(value)}."
    raise MalformedResponseError(msg, url=url)


def exchange(
    client: HttpClient | FleetClient, request: ServerRequest, reader: AnswerReader[T], model: str | None
) -> Iterator[T]:
    """Send ``request`` and yield what ``reader`` makes of each event of the answer."""
    url = client.url(request.path)
    try:
        if request.stream_format is None:
            item = _read(reader, client.post_json(request.path, request.payload, model=model), url)
            if item is not None:
                yield item
        else:
            events: Generator[Any, None, None] = client.stream_events(
                request.path, request.payload, request.stream_format, model=model
            )
            try:
                for event in events:
                    item = _read(reader, event, url)
                    if item is not None:
                        yield item
            finally:
                events.close()  # stopping early closes the response: the server stops generating
    except RecursionError as error:  # json.loads of an answer nested deeper than the stack
        raise _too_deep(url) from error
    tail = reader.close()
    if tail is not None:
        yield tail
    _check_complete(reader, client, url)


async def aexchange(
    client: HttpClient | FleetClient, request: ServerRequest, reader: AnswerReader[T], model: str | None
) -> AsyncIterator[T]:
    """Async twin of :func:`exchange` (the same request and reader; only the I/O differs)."""
    url = client.url(request.path)
    try:
        if request.stream_format is None:
            answer = await client.apost_json(request.path, request.payload, model=model)
            item = _read(reader, answer, url)
            if item is not None:
                yield item
        else:
            events: AsyncGenerator[Any, None] = client.astream_events(
                request.path, request.payload, request.stream_format, model=model
            )
            try:
                async for event in events:
                    item = _read(reader, event, url)
                    if item is not None:
                        yield item
            finally:
                await events.aclose()
    except RecursionError as error:
        raise _too_deep(url) from error
    tail = reader.close()
    if tail is not None:
        yield tail
    _check_complete(reader, client, url)


def _read(reader: AnswerReader[T], event: Any, url: str) -> T | None:
    """``reader.feed(event)``, with an answer of an unexpected shape as a typed error."""
    try:
        return reader.feed(event)
    except LocalLLMError:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError, RecursionError) as error:
        # ValueError covers pydantic's ValidationError (a chunk built from a wrong-typed field).
        msg = (
            f"The server at {url} sent an answer this client cannot read ({type(error).__name__}: "
            f"{str(error)[:200]}): {_shown(event)}. Is base_url the address of the right kind of server?"
        )
        raise MalformedResponseError(msg, url=url) from error


def _too_deep(url: str) -> MalformedResponseError:
    msg = (
        f"The server at {url} sent JSON nested deeper than this client reads (Python's recursion "
        "limit); no model answer is like that. Is base_url the address of the right kind of server?"
    )
    return MalformedResponseError(msg, url=url)


def _check_complete(reader: AnswerReader[Any], client: HttpClient | FleetClient, url: str) -> None:
    if not reader.done:
        msg = (
            f"The answer from {client.server.name} at {url} ended before the server said it was "
            "complete (no final event). The server may have crashed or been stopped; check its log."
        )
        raise StreamInterruptedError(msg, url=url)


def _shown(value: Any) -> str:
    """A short ``repr`` of untrusted data (never the whole of a huge or deeply nested value)."""
    try:
        text = repr(value)
    except RecursionError:
        return f"<{type(value).__name__} nested too deeply to show>"
    return text if len(text) <= 200 else text[:200] + "..."


def check_call_kwargs(kwargs: dict[str, Any], allowed: Collection[str], owner: str) -> None:
    """Refuse per-call keyword arguments the class does not know (with a did-you-mean)."""
    for name in kwargs:
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(allowed))}"
            msg = f"{owner}: unknown per-call argument {name!r}; {hint}"
            raise InvalidParameterError(msg, parameter=name)
    check_params(kwargs, owner)


class ServerModel(ServerConnection):
    """What the server LLMs and chat models share: per-call arguments and the exchange."""

    _call_params: ClassVar[Collection[str]] = frozenset()
    """Names accepted as per-call keyword arguments (``model.invoke(x, temperature=0)``)."""

    streaming: bool = True
    """Ask the server to stream tokens. When False every call is one JSON request and the
    answer arrives as a single chunk (``stream()`` then yields it at once)."""

    @property
    def _model_for_errors(self) -> str | None:
        """The model name typed errors report (``ModelNotFoundError``...)."""
        return None

    def _check_call_kwargs(self, kwargs: dict[str, Any]) -> None:
        check_call_kwargs(kwargs, self._call_params, type(self).__name__)

    def _translated_error(self, error: LocalLLMError) -> LocalLLMError:
        """A server family's reading of an error (e.g. a 404 naming the model); as is by default."""
        return error

    async def _aprepare(self) -> None:
        """Async work needed before a request can be built (e.g. identifying the server once)."""

    def _exchange(self, request: ServerRequest, reader: AnswerReader[T]) -> Iterator[T]:
        try:
            yield from exchange(self.client, request, reader, self._model_for_errors)
        except LocalLLMError as error:
            raise self._raised(error)  # noqa: B904 - the cause is set when the error is translated

    async def _aexchange(self, request: ServerRequest, reader: AnswerReader[T]) -> AsyncIterator[T]:
        try:
            async for item in aexchange(self.client, request, reader, self._model_for_errors):
                yield item
        except LocalLLMError as error:
            raise self._raised(error)  # noqa: B904

    def _raised(self, error: LocalLLMError) -> LocalLLMError:
        translated = self._translated_error(error)
        if translated is not error:
            translated.__cause__ = error
        return translated
