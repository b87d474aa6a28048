"""A loopback HTTP server that misbehaves on purpose, to test how clients fail.

Each :class:`FaultServer` answers every request with one *behaviour*: a function that
gets the connection and the raw request and writes whatever bytes it likes. Ready-made
behaviours: :func:`respond` (any status and body), :func:`stream` (a chunked body that
may end abruptly), :func:`hang` (never answer), :func:`stall` (start a stream, then go
silent) and :class:`Repeat` (send the same piece forever: an endless line, an endless event,
keep-alive pings). :func:`refused_url` gives a URL where nothing listens.

>>> with FaultServer(respond(500, b'{"error": "boom"}')) as server:  # doctest: +SKIP
...     httpx.get(server.base_url + "/health").status_code
500
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

__all__ = [
    "Behaviour",
    "FaultServer",
    "KeepAliveThenClose",
    "Repeat",
    "close_first",
    "hang",
    "raw",
    "refused_url",
    "respond",
    "serial",
    "stall",
    "stream",
    "switch",
]

Behaviour = Callable[[socket.socket, bytes, threading.Event], None]
"""``(connection, raw request, released)``: ``released`` is set when the server stops."""

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error", 503: "Unavailable"}


def refused_url() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _head(status: int, content_type: str, extra: str) -> bytes:
    reason = _REASONS.get(status, "Status")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nConnection: close\r\n{extra}\r\n"
    ).encode()


def respond(status: int, body: bytes, content_type: str = "application/json; charset=utf-8") -> Behaviour:
    """Answer ``status`` with ``body`` (with a Content-Length)."""

    def behave(conn: socket.socket, request: bytes, released: threading.Event) -> None:
        conn.sendall(_head(status, content_type, f"Content-Length: {len(body)}\r\n") + body)

    return behave


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def stream(
    pieces: Sequence[bytes],
    content_type: str = "application/x-ndjson",
    *,
    complete: bool = True,
    status: int = 200,
) -> Behaviour:
    """Send ``pieces`` as HTTP chunks; with ``complete=False`` close the socket without the
    terminating chunk (a server that died mid-answer)."""

    def behave(conn: socket.socket, request: bytes, released: threading.Event) -> None:
        conn.sendall(_head(status, content_type, "Transfer-Encoding: chunked\r\n"))
        for piece in pieces:
            conn.sendall(_chunk(piece))
        if complete:
            conn.sendall(b"0\r\n\r\n")

    return behave


def close_first(times: int, then: Behaviour) -> Behaviour:
    """Close the first ``times`` connections without a byte of answer (as llama-server does
    to a kept-alive connection after a streamed answer), then behave like ``then``."""
    return switch(times, lambda conn, request, released: None, then)


def switch(times: int, first: Behaviour, then: Behaviour) -> Behaviour:
    """Behave like ``first`` for the first ``times`` requests, then like ``then``."""
    remaining = [times]
    lock = threading.Lock()

    def behave(conn: socket.socket, request: bytes, released: threading.Event) -> None:
        with lock:
            early = remaining[0] > 0
            remaining[0] -= 1
        (first if early else then)(conn, request, released)

    return behave


def serial(seconds: float, then: Behaviour) -> Behaviour:
    """One request at a time, each taking ``seconds`` before ``then`` answers it (a server with
    one slot and a fixed generation time). ``active_peak`` records the most requests that were
    in the server at once (queued included)."""
    lock = threading.Lock()
    count = threading.Lock()
    active = [0]

    def behave(conn: socket.socket, request: bytes, released: threading.Event) -> None:
        with count:
            active[0] += 1
            behave.active_peak = max(behave.active_peak, active[0])  # type: ignore[attr-defined]
        try:
            with lock:
                released.wait(seconds)
                then(conn, request, released)
        finally:
            with count:
                active[0] -= 1

    behave.active_peak = 0  # type: ignore[attr-defined]
    return behave


def raw(data: bytes) -> Behaviour:
    """Send ``data`` as the whole answer (e.g. a malformed status line), then close."""

    def behave(conn: socket.socket, request: bytes, released: threading.Event) -> None:
        conn.sendall(data)

    return behave


class KeepAliveThenClose:
    """Answer the first request of each connection with ``body`` and keep the connection
    open, then read the next request on it and close without a byte of answer: what
    llama-server does to a kept-alive connection after a streamed answer. With ``then``,
    send those bytes (a malformed answer, say) to the next request before closing.

    ``answered`` and ``dropped`` count the requests of each kind.
    """

    def __init__(self, body: bytes = b'{"status": "ok"}', then: bytes = b"") -> None:
        self.body = body
        self.then = then
        self.answered = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket, request: bytes, released: threading.Event) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        ).encode()
        conn.sendall(head + self.body)
        with self._lock:
            self.answered += 1
        if _read_request(conn):
            with self._lock:
                self.dropped += 1
            conn.sendall(self.then)


def hang() -> Behaviour:
    """Read the request and never answer (until the server stops)."""

    def behave(conn: socket.socket, request: bytes, released: threading.Event) -> None:
        released.wait()

    return behave


def stall(pieces: Sequence[bytes], content_type: str = "application/x-ndjson") -> Behaviour:
    """Start a chunked answer with ``pieces``, then send nothing more (until the server stops)."""

    def behave(conn: socket.socket, request: bytes, released: threading.Event) -> None:
        conn.sendall(_head(200, content_type, "Transfer-Encoding: chunked\r\n"))
        for piece in pieces:
            conn.sendall(_chunk(piece))
        released.wait()

    return behave


class Repeat:
    """Start a chunked answer, then send ``piece`` again and again, ``every`` seconds apart
    (0: as fast as the client reads), until the client goes away or the server stops: a line
    that never ends, an event that never ends, or a server trickling keep-alive pings.

    ``sent`` counts the bytes of ``piece`` sent, ``pieces`` how many were sent.
    """

    def __init__(self, piece: bytes, content_type: str = "application/x-ndjson", every: float = 0.0) -> None:
        self.piece = piece
        self.content_type = content_type
        self.every = every
        self.sent = 0
        self.pieces = 0

    def __call__(self, conn: socket.socket, request: bytes, released: threading.Event) -> None:
        conn.sendall(_head(200, self.content_type, "Transfer-Encoding: chunked\r\n"))
        chunk = _chunk(self.piece)
        while not released.is_set():
            conn.sendall(chunk)  # OSError once the client has closed: the server thread ends
            self.sent += len(self.piece)
            self.pieces += 1
            if self.every:
                released.wait(self.every)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        more = conn.recv(65536)
        if not more:
            break
        body += more
    return head + b"\r\n\r\n" + body


class FaultServer:
    """Serve ``behaviour`` on ``127.0.0.1`` (a free port) from a background thread.

    ``requests`` records the raw requests received, for assertions.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[bytes] = []
        self.released = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name="fault-server")

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultServer:
        """Start accepting connections."""
        self._acceptor.start()
        return self

    def _accept(self) -> None:
        while not self.released.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._connections.append(conn)
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = _read_request(conn)
                if not request:
                    return
                self.requests.append(request)
                self.behaviour(conn, request, self.released)
            except OSError:
                pass  # the client went away: nothing to do

    def stop(self) -> None:
        """Release hanging behaviours, stop accepting and join the threads."""
        self.released.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        for conn in self._connections:  # wakes behaviours blocked reading a kept-alive connection
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        for worker in self._threads:
            worker.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
