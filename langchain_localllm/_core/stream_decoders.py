"""Incremental decoders for streamed HTTP bodies, shared by the sync and async paths.

The I/O layer (``requests`` for sync, ``httpx`` for async) only hands over raw byte
chunks as they arrive; everything else happens here, once:

* :class:`LineDecoder` splits bytes into lines (``\\n``, ``\\r\\n`` or ``\\r``), keeping a
  partial line (even a partial UTF-8 character) until the rest arrives.
* :class:`NDJSONDecoder` turns lines into JSON objects (Ollama's ``application/x-ndjson``).
* :class:`SSEDecoder` turns lines into server-sent events and their ``data`` into JSON
  objects (llama.cpp's ``text/event-stream``), following the WHATWG event-stream rules:
  ``data:`` lines are joined with ``\\n``, a blank line dispatches the event, lines
  starting with ``:`` are comments (llama-server's keep-alive pings).

One SSE parser serves both clients; ``httpx-sse`` only wraps ``httpx`` responses, and the
sync path reads with ``requests``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from langchain_localllm.errors import MalformedResponseError

_DONE_SENTINEL = "[DONE]"


class LineDecoder:
    """Split a byte stream into text lines, whatever the chunk boundaries are."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the complete lines (without line terminators)."""
        if not data:
            return []
        buffer = self._buffer + data
        if b"\r" in buffer:
            # A trailing "\r" may be the first half of "\r\n": keep it for the next chunk.
            keep_cr = buffer.endswith(b"\r")
            if keep_cr:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buffer += b"\r"
        *lines, self._buffer = buffer.split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in lines]

    def flush(self) -> list[str]:
        """The last line if the body did not end with a newline."""
        rest, self._buffer = self._buffer.rstrip(b"\r"), b""
        return [rest.decode("utf-8", errors="replace")] if rest else []


def _parse_json(text: str, url: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        shown = text if len(text) <= 200 else text[:200] + "..."
        msg = (
            f"The server at {url} sent a {what} that is not valid JSON: {shown!r} ({error}). "
            "Is the URL pointing at the right kind of server?"
        )
        raise MalformedResponseError(msg, url=url, line=text) from error


class NDJSONDecoder:
    """Bytes of a newline-delimited JSON stream -> JSON objects."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lines = LineDecoder()

    def _decode(self, lines: list[str]) -> Iterator[Any]:
        for line in lines:
            if line.strip():
                yield _parse_json(line, self.url, "stream line")

    def feed(self, data: bytes) -> Iterator[Any]:
        """Objects completed by ``data``."""
        return self._decode(self._lines.feed(data))

    def close(self) -> Iterator[Any]:
        """Objects left at the end of the body (a last line without newline)."""
        return self._decode(self._lines.flush())


class SSEDecoder:
    """Bytes of a ``text/event-stream`` -> the JSON ``data`` of each event.

    Events whose data is ``[DONE]`` (OpenAI-style end marker) are skipped; the
    caller decides from the payloads whether the stream finished properly.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lines = LineDecoder()
        self._data: list[str] = []

    def _decode(self, lines: list[str]) -> Iterator[Any]:
        for line in lines:
            if not line:
                yield from self._dispatch()
                continue
            if line.startswith(":"):
                continue  # comment / keep-alive ping
            if line.startswith("{") and not self._data:
                # Some old llamafile builds wrote bare JSON lines; accept them as events.
                self._data.append(line)
                yield from self._dispatch()
                continue
            field, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if field == "data":
                self._data.append(value)
            # "event", "id", "retry" and unknown fields carry nothing we use.

    def _dispatch(self) -> Iterator[Any]:
        if not self._data:
            return
        data, self._data = "\n".join(self._data), []
        if data.strip() == _DONE_SENTINEL:
            return
        yield _parse_json(data, self.url, "server-sent event")

    def feed(self, data: bytes) -> Iterator[Any]:
        """Event payloads completed by ``data``."""
        return self._decode(self._lines.feed(data))

    def close(self) -> Iterator[Any]:
        """Dispatch an event left without its terminating blank line."""
        yield from self._decode(self._lines.flush())
        yield from self._dispatch()


def make_decoder(fmt: str, url: str) -> NDJSONDecoder | SSEDecoder:
    """A fresh decoder for ``fmt`` (``"ndjson"`` or ``"sse"``)."""
    if fmt == "ndjson":
        return NDJSONDecoder(url)
    if fmt == "sse":
        return SSEDecoder(url)
    raise ValueError(f"unknown stream format {fmt!r}")
