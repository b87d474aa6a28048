"""The HTTP layer shared by the server backends (``Ollama``, ``Llamafile`` and their embeddings).

:class:`HttpClient` owns a pooled ``requests`` session for the sync path and one pooled
``httpx.AsyncClient`` per event loop for the async path (no thread fallback). Only the I/O
differs between the two: request building, status and error interpretation
(:mod:`~langchain_localllm._core.http_errors`) and stream decoding
(:mod:`~langchain_localllm._core.stream_decoders`) are shared functions.

Privacy: the client talks to ``base_url`` and nothing else. It ignores proxy
environment variables and ``.netrc`` (``trust_env=False``) and never follows redirects.

>>> client = HttpClient("http://127.0.0.1:8080", LLAMA_SERVER)  # doctest: +SKIP
>>> client.get_json("/health")  # doctest: +SKIP
{'status': 'ok'}
>>> for event in client.stream_events("/completion", {"prompt": "Hi", "stream": True}, "sse"):
...     print(event["content"], end="")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import threading
import weakref
from collections.abc import AsyncGenerator, Generator, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import requests
import requests.adapters
import urllib3.exceptions

from langchain_localllm._core.http_errors import (
    LLAMA_SERVER,
    OLLAMA,
    ServerKind,
    error_from_response,
    error_from_stream_payload,
    parse_error_payload,
)
from langchain_localllm._core.stream_decoders import make_decoder
from langchain_localllm.errors import (
    InvalidParameterError,
    MalformedResponseError,
    ServerTimeoutError,
    ServerUnreachableError,
    StreamInterruptedError,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "LLAMA_SERVER",
    "OLLAMA",
    "HttpClient",
    "JsonShortcuts",
    "ServerKind",
    "check_base_url",
]

DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the TCP connection; a local server accepts at once or not at all."""


def check_base_url(base_url: str, owner: str) -> str:
    """``base_url`` without a trailing slash; InvalidParameterError if it is not http(s)://host."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = (
            f"{owner}: base_url={base_url!r} is not an http(s) URL; use something like "
            "'http://localhost:11434' (Ollama) or 'http://localhost:8080' (llamafile)."
        )
        raise InvalidParameterError(msg, parameter="base_url", value=base_url)
    return base_url.rstrip("/")


class JsonShortcuts:
    """``get_json``/``post_json`` and async twins, on top of ``request_json``/``arequest_json``."""

    def request_json(self, method: str, path: str, payload: Any = None, *, model: str | None = None) -> Any:
        raise NotImplementedError

    async def arequest_json(
        self, method: str, path: str, payload: Any = None, *, model: str | None = None
    ) -> Any:
        raise NotImplementedError

    def get_json(self, path: str) -> Any:
        """``GET path`` -> decoded JSON."""
        return self.request_json("GET", path)

    def post_json(self, path: str, payload: Any, *, model: str | None = None) -> Any:
        """``POST path`` with a JSON body -> decoded JSON."""
        return self.request_json("POST", path, payload, model=model)

    async def aget_json(self, path: str) -> Any:
        """Async :meth:`get_json`."""
        return await self.arequest_json("GET", path)

    async def apost_json(self, path: str, payload: Any, *, model: str | None = None) -> Any:
        """Async :meth:`post_json`."""
        return await self.arequest_json("POST", path, payload, model=model)


class HttpClient(JsonShortcuts):
    """Pooled sync and async HTTP to one local server, with typed errors.

    Args:
        base_url: The server's root URL, e.g. ``http://localhost:11434``.
        server: What kind of server it is (names and hints used in error messages).
        headers: Extra headers sent with every request (e.g. ``Authorization``).
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for each read (the first byte of an answer, then
            each streamed chunk); None waits forever.
        pool_size: Connections kept open per client.
    """

    def __init__(
        self,
        base_url: str,
        server: ServerKind,
        *,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float | None = None,
        pool_size: int = 10,
    ) -> None:
        self.base_url = check_base_url(base_url, server.name)
        self.server = server
        self.headers = dict(headers or {})
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_size = pool_size
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    # --- clients -------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """The pooled ``requests`` session (created on first use, shared by threads)."""
        session = self._session
        if session is None:
            with self._lock:
                if self._session is None:
                    new = requests.Session()
                    new.trust_env = False  # no proxies, no .netrc: talk to base_url only
                    adapter = requests.adapters.HTTPAdapter(
                        pool_connections=1, pool_maxsize=self.pool_size, max_retries=0
                    )
                    new.mount("http://", adapter)
                    new.mount("https://", adapter)
                    new.headers.update(self.headers)
                    self._session = new
                session = self._session
        return session

    def aclient(self) -> httpx.AsyncClient:
        """The pooled ``httpx.AsyncClient`` of the running event loop."""
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                headers=self.headers,
                timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
                limits=httpx.Limits(max_connections=self.pool_size, max_keepalive_connections=self.pool_size),
                trust_env=False,
                follow_redirects=False,
            )
            self._aclients[loop] = client
        return client

    def close(self) -> None:
        """Close the sync session's connections (a later call opens new ones)."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    async def aclose(self) -> None:
        """Close the running loop's async client."""
        client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    @property
    def _timeout(self) -> tuple[float | None, float | None]:
        return (self.connect_timeout, self.read_timeout)

    # --- plain JSON requests ---------------------------------------------------------

    def request_json(self, method: str, path: str, payload: Any = None, *, model: str | None = None) -> Any:
        """Send one request and return the decoded JSON answer (typed error on failure)."""
        url = self.url(path)
        with self._sending(url):
            response = self._send(method, url, payload, stream=False)
            body = response.content
        return self._decode_json(response.status_code, body, url, model)

    async def arequest_json(
        self, method: str, path: str, payload: Any = None, *, model: str | None = None
    ) -> Any:
        """Async :meth:`request_json`."""
        url = self.url(path)
        client = self.aclient()
        with self._sending(url):
            response = await self._asend(client, method, url, payload, stream=False)
            body = response.content
        return self._decode_json(response.status_code, body, url, model)

    # --- sending, with one resend on a stale pooled connection -----------------------------
    #
    # llama-server closes a kept-alive connection after a streamed answer; the next request
    # on that pooled connection then fails before any byte of answer ("Remote end closed
    # connection without response"). Such a request was not processed, so it is sent once
    # more (the failed connection has left the pool). The rule, the same sync and async:
    # resend only when the request went out on a *reused* connection and the server closed
    # it before any byte of answer; at most once per request. A fresh connection closed
    # unanswered, a malformed answer or anything else is reported, never resent.

    def _send(self, method: str, url: str, payload: Any, *, stream: bool) -> requests.Response:
        reused = _has_idle_connection(self.session, url)
        try:
            return self.session.request(
                method, url, json=payload, stream=stream, timeout=self._timeout, allow_redirects=False
            )
        except requests.exceptions.ConnectionError as error:
            if not (reused and _closed_without_response(error)):
                raise
        _close_idle_connections(self.session, url)  # likely as stale: the resend takes a fresh one
        return self.session.request(
            method, url, json=payload, stream=stream, timeout=self._timeout, allow_redirects=False
        )

    async def _asend(
        self, client: httpx.AsyncClient, method: str, url: str, payload: Any, *, stream: bool
    ) -> httpx.Response:
        reused = _has_idle_aconnection(client)
        try:
            return await client.send(client.build_request(method, url, json=payload), stream=stream)
        except (httpx.RemoteProtocolError, httpx.WriteError) as error:
            if not (reused and _aclosed_without_response(error)):
                raise
        await _aclose_idle_connections(client)
        return await client.send(client.build_request(method, url, json=payload), stream=stream)

    def _decode_json(self, status_code: int, body: bytes, url: str, model: str | None) -> Any:
        if status_code >= 400:
            raise error_from_response(status_code, body, url, self.server, model=model)
        try:
            payload = json.loads(body)
        except ValueError as error:
            shown = body[:200].decode("utf-8", errors="replace")
            msg = (
                f"{self.server.name} at {url} answered {status_code} with a body that is not JSON: "
                f"{shown!r}. Is base_url the address of a {self.server.name} server?"
            )
            raise MalformedResponseError(msg, url=url, body=shown) from error
        info = parse_error_payload(payload)
        if info is not None:  # an error reported with status 200
            raise error_from_stream_payload(info, url, self.server)
        return payload

    # --- streams ---------------------------------------------------------------------

    def stream_events(
        self, path: str, payload: Any, fmt: str, *, model: str | None = None, method: str = "POST"
    ) -> Generator[Any, None, None]:
        """POST ``payload`` and yield each decoded stream event (``fmt``: ``ndjson``/``sse``).

        Raises the typed error for an error status, an error event, a malformed
        event, a dropped connection or a read timeout. Closing the iterator early
        closes the response (the server stops generating).
        """
        url = self.url(path)
        decoder = make_decoder(fmt, url)
        with self._sending(url):
            response = self._send(method, url, payload, stream=True)
        try:
            if response.status_code >= 400:
                with self._translate(url, streaming=False):
                    body = response.content
                raise error_from_response(response.status_code, body, url, self.server, model=model)
            with self._translate(url, streaming=True):
                for data in response.iter_content(chunk_size=None):
                    yield from self._checked(decoder.feed(data), url)
            yield from self._checked(decoder.close(), url)
        finally:
            response.close()

    async def astream_events(
        self, path: str, payload: Any, fmt: str, *, model: str | None = None, method: str = "POST"
    ) -> AsyncGenerator[Any, None]:
        """Async :meth:`stream_events` (real async I/O with ``httpx``)."""
        url = self.url(path)
        decoder = make_decoder(fmt, url)
        client = self.aclient()
        with self._sending(url):
            response = await self._asend(client, method, url, payload, stream=True)
        try:
            if response.status_code >= 400:
                with self._translate(url, streaming=False):
                    body = await response.aread()
                raise error_from_response(response.status_code, body, url, self.server, model=model)
            with self._translate(url, streaming=True):
                async for data in response.aiter_bytes():
                    for event in self._checked(decoder.feed(data), url):
                        yield event
            for event in self._checked(decoder.close(), url):
                yield event
        finally:
            await response.aclose()

    def _checked(self, events: Iterable[Any], url: str) -> Iterator[Any]:
        for event in events:
            info = parse_error_payload(event)
            if info is not None:
                raise error_from_stream_payload(info, url, self.server)
            yield event

    # --- transport errors --------------------------------------------------------------

    @contextlib.contextmanager
    def _sending(self, url: str) -> Iterator[None]:
        """Like :meth:`_translate`, and the error is tagged ``unanswered``: no byte of an answer
        came, so a fleet (:mod:`~langchain_localllm._core.fleet`) may send the request elsewhere."""
        try:
            with self._translate(url, streaming=False):
                yield
        except (ServerUnreachableError, StreamInterruptedError) as error:  # a read timeout: still busy
            error.unanswered = True
            raise

    @contextlib.contextmanager
    def _translate(self, url: str, *, streaming: bool) -> Iterator[None]:
        """Map ``requests``/``httpx`` transport errors to typed errors naming ``url``."""
        try:
            yield
        except (requests.exceptions.ConnectTimeout, httpx.ConnectTimeout) as error:
            raise self._unreachable(url, f"no connection within {self.connect_timeout} s") from error
        except (requests.exceptions.ReadTimeout, httpx.ReadTimeout, httpx.WriteTimeout) as error:
            raise self._timed_out(url, streaming) from error
        except httpx.PoolTimeout as error:
            msg = f"All {self.pool_size} connections to {url} stayed busy; raise the pool size or retry."
            raise ServerTimeoutError(msg, url=url) from error
        except httpx.ConnectError as error:
            raise self._unreachable(url, str(error) or type(error).__name__) from error
        except requests.exceptions.ChunkedEncodingError as error:
            raise self._interrupted(url, error) from error
        except requests.exceptions.ConnectionError as error:
            reason = error.args[0] if error.args else None
            reason = getattr(reason, "reason", reason)
            if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
                raise self._timed_out(url, streaming) from error
            if isinstance(reason, urllib3.exceptions.NewConnectionError | ConnectionRefusedError) or (
                not streaming and "Connection refused" in str(error)
            ):
                raise self._unreachable(url, _short_reason(reason)) from error
            raise self._interrupted(url, error) from error
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as error:
            raise self._interrupted(url, error) from error

    def _unreachable(self, url: str, reason: str) -> ServerUnreachableError:
        msg = (
            f"Could not connect to {self.server.name} at {url} ({reason}). "
            f"Is the server running? If not, {self.server.start_hint}."
        )
        return ServerUnreachableError(msg, url=url)

    def _timed_out(self, url: str, streaming: bool) -> ServerTimeoutError:
        when = "between two streamed chunks" if streaming else "before answering"
        msg = (
            f"{self.server.name} at {url} sent nothing for {self.read_timeout} s {when} (read timeout). "
            "The model may still be loading or the prompt be long: pass a larger timeout=..., "
            "or check that the server is not stuck."
        )
        return ServerTimeoutError(msg, url=url, timeout=self.read_timeout)

    def _interrupted(self, url: str, error: BaseException) -> StreamInterruptedError:
        msg = (
            f"The connection to {self.server.name} at {url} closed before the answer was complete "
            f"({_short_reason(error)}). The server may have crashed or been stopped; check its log."
        )
        return StreamInterruptedError(msg, url=url)


def _closed_without_response(error: requests.exceptions.ConnectionError) -> bool:
    """Whether the server closed the (reused) connection before answering at all."""
    reason = error.args[0] if error.args else None
    if not isinstance(reason, urllib3.exceptions.ProtocolError):
        return False
    cause = reason.args[1] if len(reason.args) > 1 else None
    return isinstance(cause, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)


def _aclosed_without_response(error: httpx.HTTPError) -> bool:
    """Whether the server closed the connection before answering at all (httpx's wording)."""
    return isinstance(error, httpx.WriteError) or "without sending a response" in str(error)


def _idle_connections(session: requests.Session, url: str) -> list[Any]:
    """The open connections waiting in the sync pool (the session talks to one server)."""
    adapter = session.get_adapter(url)
    if not isinstance(adapter, requests.adapters.HTTPAdapter):
        return []
    pools = adapter.poolmanager.pools
    idle: list[Any] = []
    for key in pools.keys():  # noqa: SIM118 (urllib3's container refuses iteration)
        pool = pools.get(key)
        queue = getattr(getattr(pool, "pool", None), "queue", ())
        idle += [conn for conn in list(queue) if conn is not None and getattr(conn, "sock", None) is not None]
    return idle


def _has_idle_connection(session: requests.Session, url: str) -> bool:
    """Whether the next request to ``url`` goes out on a reused connection."""
    return bool(_idle_connections(session, url))


def _close_idle_connections(session: requests.Session, url: str) -> None:
    for conn in _idle_connections(session, url):
        conn.close()  # urllib3 reconnects a closed pooled connection when it is next taken


def _aidle_connections(client: httpx.AsyncClient) -> list[Any]:
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    return [connection for connection in list(getattr(pool, "connections", ())) if connection.is_idle()]


def _has_idle_aconnection(client: httpx.AsyncClient) -> bool:
    """Whether the next async request goes out on a reused connection."""
    return bool(_aidle_connections(client))


async def _aclose_idle_connections(client: httpx.AsyncClient) -> None:
    for connection in _aidle_connections(client):
        await connection.aclose()  # httpcore drops closed connections from its pool


def _short_reason(error: object) -> str:
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "Remote end closed", "IncompleteRead"):
        if marker in text:
            return marker
    return text if len(text) <= 160 else text[:160] + "..."
