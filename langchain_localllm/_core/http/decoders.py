"""Incremental decoders for streamed HTTP bodies, shared by the sync and async paths.

The I/O loops (:mod:`~langchain_localllm._core.http.client`, ``httpx`` sync and async) only hand
over raw byte chunks as they arrive; everything else happens here, once:

* :class:`LineDecoder` splits bytes into lines (``\\n``, ``\\r\\n`` or ``\\r``), keeping a
  partial line (even a partial UTF-8 character) until the rest arrives.
* :class:`NDJSONDecoder` turns lines into JSON objects (Ollama's ``application/x-ndjson``).
* :class:`SSEDecoder` turns lines into server-sent events and their ``data`` into JSON
  objects (llama.cpp's ``text/event-stream``), following the WHATWG event-stream rules:
  ``data:`` lines are joined with ``\\n``, a blank line dispatches the event, lines
  starting with ``:`` are comments (llama-server's keep-alive pings).

A server's answer is untrusted input, so decoding is bounded: each chunk is scanned once
(time linear in the bytes received, whatever the chunk boundaries), and a line or an event
larger than ``max_event_bytes`` (default :data:`DEFAULT_MAX_EVENT_BYTES`) is a
:class:`~langchain_localllm.errors.MalformedResponseError` as soon as it passes the limit,
before it is held whole in memory.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_localllm.errors import MalformedResponseError

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "LineDecoder",
    "NDJSONDecoder",
    "SSEDecoder",
    "make_decoder",
    "too_large",
]

DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
"""Largest stream line or event accepted (16 MiB): far above any token, tool call or final
statistics event a local server sends, far below what would exhaust memory."""

_DONE_SENTINEL = "[DONE]"
_PARAMETER = "max_event_bytes"  # the setting of the server classes that raises the limit


def too_large(url: str, what: str, limit: int, parameter: str) -> MalformedResponseError:
    """The error for an answer part above ``limit`` bytes; names the setting that raises it."""
    msg = (
        f"The server at {url} sent {what} larger than {limit} bytes, the limit this client "
        f"accepts. If the server is right to send that much, raise the limit: pass "
        f"{parameter}=<bytes> (e.g. {parameter}={limit * 4}) to the class."
    )
    return MalformedResponseError(msg, url=url, limit=limit, parameter=parameter)


class LineDecoder:
    """Split a byte stream into text lines, whatever the chunk boundaries are.

    Each chunk is scanned once and a line's bytes are joined once, when it ends:
    ``work`` counts the bytes handled so (about twice the bytes fed, never more).
    A line longer than ``max_line_bytes`` raises ``MalformedResponseError``.
    """

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_EVENT_BYTES, url: str = "") -> None:
        self.max_line_bytes = max_line_bytes
        self.url = url
        self.work = 0
        self._partial: list[bytes] = []  # the pieces of the line not ended yet
        self._partial_size = 0
        self._after_cr = False  # the last chunk ended with "\r": a "\n" opening the next one is its pair

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the complete lines (without line terminators)."""
        if not data:
            return []
        self.work += len(data)
        if self._after_cr:
            self._after_cr = False
            if data[:1] == b"\n":
                data = data[1:]
        if b"\r" in data:
            self._after_cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *ended, rest = data.split(b"\n")
        if not ended:  # no line ends in this chunk
            self._hold(rest)
            return []
        if self._partial:
            self._partial.append(ended[0])
            ended[0] = b"".join(self._partial)
            self.work += len(ended[0])
            self._partial, self._partial_size = [], 0
        if len(data) > self.max_line_bytes or len(ended[0]) > self.max_line_bytes:
            for line in ended:
                self._check(len(line))
        self._hold(rest)
        return [line.decode("utf-8", errors="replace") for line in ended]

    @property
    def idle(self) -> bool:
        """No partial line is held (the next byte starts a new line)."""
        return not self._partial and not self._after_cr

    def flush(self) -> list[str]:
        """The last line if the body did not end with a newline."""
        rest = b"".join(self._partial)
        self._partial, self._partial_size, self._after_cr = [], 0, False
        return [rest.decode("utf-8", errors="replace")] if rest else []

    def _hold(self, piece: bytes) -> None:
        if piece:
            self._partial_size += len(piece)
            self._check(self._partial_size)
            self._partial.append(piece)

    def _check(self, size: int) -> None:
        if size > self.max_line_bytes:
            self._partial, self._partial_size = [], 0
            raise too_large(self.url, "a stream line", self.max_line_bytes, _PARAMETER)


def _one_line(data: bytes, lines: LineDecoder, end: bytes) -> bool:
    """Whether ``data`` is exactly one line and its ``end`` (``b"\\n"``, or ``b"\\n\\n"`` for
    an event), no partial line is pending and the line is within the limit: then the caller
    decodes it directly, with the result the line splitter would give."""
    if (
        data.endswith(end)
        and data.count(b"\n") == len(end)
        and b"\r" not in data
        and len(data) <= lines.max_line_bytes
        and lines.idle
    ):
        lines.work += len(data)
        return True
    return False


def parse_json(text: str | bytes, url: str, what: str) -> Any:
    """``text`` decoded as JSON, else ``MalformedResponseError`` showing its beginning."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        if isinstance(text, bytes):
            text = text[:1000].decode("utf-8", errors="replace")
        shown = text if len(text) <= 200 else text[:200] + "..."
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        msg = (
            f"The server at {url} sent a {what} that is not valid JSON: {shown!r} ({reason}). "
            "Is the URL pointing at the right kind of server?"
        )
        raise MalformedResponseError(msg, url=url, line=text[:1000]) from error


class NDJSONDecoder:
    """Bytes of a newline-delimited JSON stream -> JSON objects."""

    def __init__(self, url: str, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.url = url
        self.lines = LineDecoder(max_event_bytes, url)

    def _decode(self, lines: list[str]) -> list[Any]:
        return [parse_json(line, self.url, "stream line") for line in lines if line.strip()]

    def feed(self, data: bytes) -> list[Any]:
        """Objects completed by ``data``."""
        if _one_line(data, self.lines, b"\n"):  # the usual chunk: one whole line (same result, faster)
            text = data.decode("utf-8", errors="replace")
            return [parse_json(text, self.url, "stream line")] if text.strip() else []
        return self._decode(self.lines.feed(data))

    def close(self) -> list[Any]:
        """Objects left at the end of the body (a last line without newline)."""
        return self._decode(self.lines.flush())


class SSEDecoder:
    """Bytes of a ``text/event-stream`` -> the JSON ``data`` of each event.

    Events whose data is ``[DONE]`` (OpenAI-style end marker) are skipped; the
    caller decides from the payloads whether the stream finished properly. An event
    whose data lines add up to more than ``max_event_bytes`` raises
    ``MalformedResponseError``.
    """

    def __init__(self, url: str, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.url = url
        self.max_event_bytes = max_event_bytes
        self.lines = LineDecoder(max_event_bytes, url)
        self._data: list[str] = []
        self._size = 0

    def _decode(self, lines: list[str]) -> list[Any]:
        events: list[Any] = []
        for line in lines:
            if not line:
                self._dispatch(events)
            elif line.startswith(":"):
                continue  # comment / keep-alive ping
            elif line.startswith("{") and not self._data:
                # Some old llamafile builds wrote bare JSON lines; accept them as events.
                self._data.append(line)
                self._dispatch(events)
            else:
                field, sep, value = line.partition(":")
                if field == "data":
                    if sep and value.startswith(" "):
                        value = value[1:]
                    self._size += len(value) + 1
                    if self._size > self.max_event_bytes:
                        self._data, self._size = [], 0
                        raise too_large(self.url, "a server-sent event", self.max_event_bytes, _PARAMETER)
                    self._data.append(value)
                # "event", "id", "retry" and unknown fields carry nothing we use.
        return events

    def _dispatch(self, events: list[Any]) -> None:
        if not self._data:
            return
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        self._data, self._size = [], 0
        if data.strip() == _DONE_SENTINEL:
            return
        events.append(parse_json(data, self.url, "server-sent event"))

    def feed(self, data: bytes) -> list[Any]:
        """Event payloads completed by ``data``."""
        if not self._data and data.startswith(b"data: ") and _one_line(data, self.lines, b"\n\n"):
            # The usual chunk: one whole event of one data line (same result, faster).
            text = data[6:-2].decode("utf-8", errors="replace")
            return [] if text.strip() == _DONE_SENTINEL else [parse_json(text, self.url, "server-sent event")]
        return self._decode(self.lines.feed(data))

    def close(self) -> list[Any]:
        """Dispatch an event left without its terminating blank line."""
        events = self._decode(self.lines.flush())
        self._dispatch(events)
        return events


def make_decoder(
    fmt: str, url: str, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> NDJSONDecoder | SSEDecoder:
    """A fresh decoder for ``fmt`` (``"ndjson"`` or ``"sse"``)."""
    if fmt == "ndjson":
        return NDJSONDecoder(url, max_event_bytes)
    if fmt == "sse":
        return SSEDecoder(url, max_event_bytes)
    raise ValueError(f"unknown stream format {fmt!r}")
