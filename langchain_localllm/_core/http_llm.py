"""What the server backends (``Ollama``, ``Llamafile``) share on top of :class:`LocalLLM`.

A subclass says how to build a request (:meth:`ServerLLM._build_request`) and how to read
the server's answers (a :class:`ResponseParser`). This class runs the exchange, once
for the sync path and once for the async path, with the same request and parser:
only the I/O differs.
"""

from __future__ import annotations

import difflib
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base_llm import LocalLLM
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


class ResponseParser:
    """Reads one answer, event by event; the chunk of the final event carries the info."""

    done: bool = False
    """Set when the server said the answer is complete."""

    def feed(self, event: Any) -> GenerationChunk | None:
        """The chunk for one decoded event (None if it carries no text and is not final)."""
        raise NotImplementedError

    def close(self) -> GenerationChunk | None:
        """A last chunk held back until the answer ended (e.g. usage sent after the finish)."""
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
        owner = type(self).__name__
        for name in kwargs:
            if name not in self._call_params:
                close = difflib.get_close_matches(name, sorted(self._call_params), n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"known: {', '.join(sorted(self._call_params))}"
                )
                msg = f"{owner}: unknown per-call argument {name!r}; {hint}"
                raise InvalidParameterError(msg, parameter=name)
        check_params(kwargs, owner)

    # --- the exchange, sync and async -------------------------------------------------

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        request = self._build_request(prompt, stop, kwargs)
        parser = self._new_parser()
        client = self.client
        if request.stream_format is None:
            chunk = parser.feed(client.post_json(request.path, request.payload, model=self._model_for_errors))
            if chunk is not None:
                yield chunk
        else:
            events: Generator[Any, None, None] = client.stream_events(
                request.path, request.payload, request.stream_format, model=self._model_for_errors
            )
            try:
                for event in events:
                    chunk = parser.feed(event)
                    if chunk is not None:
                        yield chunk
            finally:
                events.close()  # stopping early closes the response: the server stops generating
        tail = parser.close()
        if tail is not None:
            yield tail
        parser.finish(client.url(request.path), self._server_kind)

    async def _aiter_chunks(
        self, prompt: str, stop: list[str], **kwargs: Any
    ) -> AsyncIterator[GenerationChunk]:
        request = self._build_request(prompt, stop, kwargs)
        parser = self._new_parser()
        client = self.client
        if request.stream_format is None:
            answer = await client.apost_json(request.path, request.payload, model=self._model_for_errors)
            chunk = parser.feed(answer)
            if chunk is not None:
                yield chunk
        else:
            events: AsyncGenerator[Any, None] = client.astream_events(
                request.path, request.payload, request.stream_format, model=self._model_for_errors
            )
            try:
                async for event in events:
                    chunk = parser.feed(event)
                    if chunk is not None:
                        yield chunk
            finally:
                await events.aclose()
        tail = parser.close()
        if tail is not None:
            yield tail
        parser.finish(client.url(request.path), self._server_kind)

    @property
    def _model_for_errors(self) -> str | None:
        return None


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the entries that are None (unset options are not sent)."""
    return {key: value for key, value in values.items() if value is not None}


def nanos_to_ms(value: Any) -> float | None:
    """Ollama's integer nanoseconds as milliseconds."""
    return value / 1e6 if isinstance(value, int | float) and not isinstance(value, bool) else None
