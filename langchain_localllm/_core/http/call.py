"""One HTTP call without its I/O: what to send, and what each answer or failure means.

:class:`~langchain_localllm._core.http.client.HttpClient` has one sync and one async loop; both
drive an :class:`Exchange`, which holds everything else, once:

* the request (JSON body, per-call timeouts) and whether a failed send is sent again
  (the resend rule, below);
* the answer: status interpretation and error bodies
  (:mod:`~langchain_localllm._core.http.errors`), a whole JSON body, or a stream decoded
  event by event (:mod:`~langchain_localllm._core.http.decoders`), each bounded in
  size and, with ``stream_deadline``, in total time;
* the translation of ``httpx`` failures into the package's typed errors, naming the URL.

The resend rule. A server may close a kept-alive connection just as a request goes out on
it (llama-server does after a streamed answer); the request then fails before any byte of
answer and was not processed, so it is sent once more. Only then: the request went out on a
*reused* connection (no new connection was opened for it, which httpx's public ``trace``
request extension reports) and the server closed it without a byte of answer. At most once
per request; a fresh connection closed unanswered, a malformed answer or anything else is
reported, never resent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from langchain_localllm._core.http.decoders import (
    DEFAULT_MAX_EVENT_BYTES,
    NDJSONDecoder,
    SSEDecoder,
    make_decoder,
    too_large,
)
from langchain_localllm._core.http.errors import (
    ServerKind,
    error_from_response,
    error_from_stream_payload,
    parse_error_payload,
)
from langchain_localllm.errors import (
    InvalidParameterError,
    LocalLLMError,
    MalformedResponseError,
    ServerError,
    ServerTimeoutError,
    ServerUnreachableError,
    StreamInterruptedError,
)

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_MAX_RESPONSE_BYTES", "CallSettings", "Exchange"]

DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the TCP connection; a local server accepts at once or not at all."""

DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
"""Largest non-streamed answer accepted (256 MiB: thousands of embedding vectors)."""

ERROR_BODY_BYTES = 64 * 1024
"""How much of an error answer's body is read (the rest is not needed to explain it)."""

_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class CallSettings:
    """What every call of one client shares: the server kind, timeouts and bounds."""

    server: ServerKind
    """What kind of server it is (names and hints used in error messages)."""
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    """Seconds to wait for a connection."""
    read_timeout: float | None = None
    """Seconds to wait for each read: the first byte of an answer, then each chunk."""
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    """Largest line or event of a streamed answer."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """Largest non-streamed answer."""
    stream_deadline: float | None = None
    """Seconds a whole call may take, from sending the request to the end of the answer."""

    def timeout(self) -> httpx.Timeout:
        """The client-wide ``httpx`` timeouts."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


class _ConnectionUse:
    """Whether a request opened a new connection, from httpx's ``trace`` extension events."""

    __slots__ = ("fresh",)

    def __init__(self) -> None:
        self.fresh = False

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name.startswith("connection.connect_"):  # connect_tcp, connect_unix_socket
            self.fresh = True

    async def atrace(self, name: str, info: dict[str, Any]) -> None:
        self.trace(name, info)


class Exchange:
    """One call (``method path`` with a JSON ``payload``) and its answer, for any endpoint.

    ``fmt`` is ``None`` for a JSON answer, ``"ndjson"`` or ``"sse"`` for a stream. A loop calls
    :meth:`attempt` for each endpoint it tries, :meth:`request` for each send (and
    :meth:`resend_after` when one fails), :meth:`head` with the status, then :meth:`feed`
    with each chunk of the body and :meth:`close` at its end, and yields what those two
    return: the stream's events, or the one JSON answer. A failure of ``httpx`` becomes
    :meth:`failure`'s typed error.
    """

    def __init__(
        self,
        settings: CallSettings,
        method: str,
        path: str,
        payload: Any,
        *,
        model: str | None = None,
        fmt: str | None = None,
    ) -> None:
        self.settings = settings
        self.method = method
        self.path = path
        self.model = model
        self.fmt = fmt
        self.content = _encode(payload, settings.server, path)
        self.deadline_at = (
            None if settings.stream_deadline is None else time.monotonic() + settings.stream_deadline
        )
        self.url = path
        self.decoder: NDJSONDecoder | SSEDecoder | None = None
        self._resent = False
        self._use = _ConnectionUse()
        self.status = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._head = False

    # --- sending ---------------------------------------------------------------------------

    def attempt(self, base_url: str) -> None:
        """Start over on the endpoint at ``base_url``."""
        self.url = base_url + self.path
        self.decoder = (
            None if self.fmt is None else make_decoder(self.fmt, self.url, self.settings.max_event_bytes)
        )
        self._resent = False
        self._body, self._body_size, self._head = [], 0, False

    def request(self, client: httpx.Client | httpx.AsyncClient, *, asynchronous: bool) -> httpx.Request:
        """The request to send now (a new one for each send: it carries its own trace)."""
        self._use = _ConnectionUse()
        trace = self._use.atrace if asynchronous else self._use.trace
        return client.build_request(
            self.method,
            self.url,
            content=self.content,
            headers=_JSON_HEADERS if self.content is not None else None,
            extensions={"trace": trace},
            timeout=self._timeout(),
        )

    def _timeout(self) -> httpx.Timeout | Any:
        if self.deadline_at is None:
            return httpx.USE_CLIENT_DEFAULT
        remaining = self.deadline_at - time.monotonic()
        if remaining <= 0:
            raise self._past_deadline()
        read, connect = self.settings.read_timeout, self.settings.connect_timeout
        return httpx.Timeout(
            min(read, remaining) if read is not None else remaining,
            connect=min(connect, remaining) if connect is not None else remaining,
        )

    def resend_after(self, error: httpx.HTTPError) -> bool:
        """Whether the send that failed with ``error`` goes out once more (the resend rule)."""
        if self._resent or self._use.fresh:
            return False
        if isinstance(error, httpx.RemoteProtocolError):
            closed = "without sending a response" in str(error)  # no byte of a status line came
        else:
            closed = isinstance(error, httpx.ReadError | httpx.WriteError)  # reset before the head
        self._resent = closed
        return closed

    # --- the answer -------------------------------------------------------------------------

    def head(self, status: int) -> bool:
        """The answer's status arrived; True if it is an error (then feed :meth:`error_body`
        and raise :meth:`status_error`)."""
        self._head = True
        self.status = status
        return status >= 400

    @staticmethod
    def raw(headers: httpx.Headers) -> bool:
        """Whether the body is sent as is (no ``Content-Encoding``): read raw, skip the decoders."""
        return headers.get("content-encoding", "identity").strip().lower() in ("", "identity")

    def error_body(self, chunk: bytes) -> bool:
        """Keep a chunk of an error answer's body; False once enough of it is kept."""
        self._body.append(chunk)
        self._body_size += len(chunk)
        return self._body_size < ERROR_BODY_BYTES

    def status_error(self) -> LocalLLMError:
        """The typed error for the error status, from the body kept by :meth:`error_body`."""
        body = b"".join(self._body)[:ERROR_BODY_BYTES]
        return error_from_response(self.status, body, self.url, self.settings.server, model=self.model)

    def feed(self, chunk: bytes) -> list[Any]:
        """What ``chunk`` of the body completes: stream events (an error event is raised), or
        nothing for a JSON answer, kept until :meth:`close`. Bounded in size and time."""
        if self.decoder is None:
            self._body_size += len(chunk)
            if self._body_size > self.settings.max_response_bytes:
                self._body = []
                limit = self.settings.max_response_bytes
                raise too_large(self.url, "an answer", limit, "max_response_bytes")
            self._body.append(chunk)
            events: list[Any] = []
        else:
            events = self.decoder.feed(chunk)
        if self.deadline_at is not None and time.monotonic() > self.deadline_at:
            raise self._past_deadline()
        return self._checked(events) if events else events

    def close(self) -> list[Any]:
        """What the end of the body completes: the last stream events, or the JSON answer."""
        if self.decoder is None:
            return [self._json_answer()]
        return self._checked(self.decoder.close())

    def _json_answer(self) -> Any:
        body = b"".join(self._body)
        self._body = []
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as error:
            shown = body[:200].decode("utf-8", errors="replace")
            name = self.settings.server.name
            msg = (
                f"{name} at {self.url} answered {self.status} with a body that is not JSON: "
                f"{shown!r}. Is base_url the address of a {name} server?"
            )
            raise MalformedResponseError(msg, url=self.url, body=shown) from error
        info = parse_error_payload(payload)
        if info is not None:  # an error reported with status 200
            raise error_from_stream_payload(info, self.url, self.settings.server)
        return payload

    def _checked(self, events: list[Any]) -> list[Any]:
        for event in events:
            if isinstance(event, dict) and "error" in event:
                info = parse_error_payload(event)
                assert info is not None
                raise error_from_stream_payload(info, self.url, self.settings.server)
        return events

    # --- failures ---------------------------------------------------------------------------

    def failure(self, error: httpx.HTTPError) -> LocalLLMError:
        """The typed error for an ``httpx`` failure now. A connection failure before any byte of
        the answer (refused, or closed before the status line) is tagged ``unanswered``: the
        request had no effect, a fleet may send it elsewhere (:mod:`~langchain_localllm._core.http.fleet`)."""
        typed = self._translate(error)
        if isinstance(typed, ServerUnreachableError | StreamInterruptedError) and not self._head:
            typed.unanswered = True
        return typed

    def _translate(self, error: httpx.HTTPError) -> ServerError:
        server = self.settings.server
        if isinstance(error, httpx.ConnectTimeout):
            return self._unreachable(f"no connection within {self.settings.connect_timeout} s")
        if isinstance(error, httpx.ConnectError):
            return self._unreachable(_short_reason(error))
        if isinstance(error, httpx.TimeoutException):  # read, write or pool
            if self.deadline_at is not None and time.monotonic() >= self.deadline_at:
                return self._past_deadline()
            timeout = self.settings.read_timeout
            when = "between two streamed chunks" if self._head and self.fmt else "before answering"
            msg = (
                f"{server.name} at {self.url} sent nothing for {timeout} s {when} (read timeout). "
                "The model may still be loading or the prompt be long: pass a larger timeout=..., "
                "or check that the server is not stuck."
            )
            return ServerTimeoutError(msg, url=self.url, timeout=timeout)
        if isinstance(error, httpx.DecodingError):
            msg = f"{server.name} at {self.url} sent a body that cannot be decoded ({_short_reason(error)})."
            return MalformedResponseError(msg, url=self.url)
        msg = (
            f"The connection to {server.name} at {self.url} closed before the answer was complete "
            f"({_short_reason(error)}). The server may have crashed or been stopped; check its log."
        )
        return StreamInterruptedError(msg, url=self.url)

    def _unreachable(self, reason: str) -> ServerUnreachableError:
        server = self.settings.server
        msg = (
            f"Could not connect to {server.name} at {self.url} ({reason}). "
            f"Is the server running? If not, {server.start_hint}."
        )
        return ServerUnreachableError(msg, url=self.url)

    def _past_deadline(self) -> ServerTimeoutError:
        deadline = self.settings.stream_deadline
        msg = (
            f"{self.settings.server.name} at {self.url} did not finish its answer within "
            f"stream_deadline={deadline} s (the overall limit of one call, beside the read timeout). "
            "The answer may just be long: pass a larger stream_deadline=..., or None for no overall "
            "limit; if the server sends only keep-alive pings, check that it is not stuck."
        )
        return ServerTimeoutError(msg, url=self.url, timeout=deadline, deadline=deadline)


def _encode(payload: Any, server: ServerKind, path: str) -> bytes | None:
    if payload is None:
        return None
    try:
        return json.dumps(payload, allow_nan=False).encode()
    except ValueError as error:  # NaN or infinity: not JSON
        msg = f"The request to {server.name} {path} cannot be sent as JSON: {error}."
        raise InvalidParameterError(msg, parameter="payload") from error


def _short_reason(error: object) -> str:
    text = str(error) or type(error).__name__
    for marker in ("Connection refused", "Name or service not known", "without sending a response"):
        if marker in text:
            return marker
    return text if len(text) <= 160 else text[:160] + "..."
