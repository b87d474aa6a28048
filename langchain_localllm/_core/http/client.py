"""The HTTP client of every server class (``Ollama``, ``Llamafile``, OpenAI-compatible servers,
their embeddings), on ``httpx``: one endpoint or a fleet of them.

:class:`HttpClient` owns one pooled ``httpx.Client`` for the sync path and one pooled
``httpx.AsyncClient`` per event loop for the async path (no thread fallback). Each call is
an :class:`~langchain_localllm._core.http.call.Exchange` (request building, the resend
rule, status and error interpretation, bounded stream decoding: no I/O) driven by a thin
sync loop or a thin async loop here, and dispatched over the endpoints by a
:class:`~langchain_localllm._core.http.fleet.Fleet` (one server is a fleet of one).

Privacy: the client talks to its ``base_url`` (or the URLs of its fleet) and nothing else.
It ignores proxy environment variables and ``.netrc`` (``trust_env=False``) and never
follows redirects.

>>> client = HttpClient("http://127.0.0.1:8080", LLAMA_SERVER)  # doctest: +SKIP
>>> client.get_json("/health")  # doctest: +SKIP
{'status': 'ok'}
>>> for event in client.stream_events("/completion", {"prompt": "Hi", "stream": True}, "sse"):
...     print(event["content"], end="")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from langchain_localllm._core.http.call import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RESPONSE_BYTES,
    CallSettings,
    Exchange,
)
from langchain_localllm._core.http.decoders import DEFAULT_MAX_EVENT_BYTES
from langchain_localllm._core.http.errors import LLAMA_SERVER, OLLAMA, ServerKind
from langchain_localllm._core.http.fleet import EndpointStatus, Fleet, Walk, is_unanswered, last_url
from langchain_localllm.errors import InvalidParameterError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "LLAMA_SERVER",
    "OLLAMA",
    "HttpClient",
    "ServerKind",
    "check_base_url",
]


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


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per process (building one loads the CA bundle: tens of milliseconds).
    Plain ``http://`` endpoints get one that loads nothing: it is never used."""
    if verify:
        return httpx.create_ssl_context(trust_env=False)
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class HttpClient:
    """Pooled sync and async HTTP to one local server or a fleet of them, with typed errors.

    Args:
        base_url: The server's root URL, e.g. ``http://localhost:11434``, or a list of root
            URLs: a fleet serving the same model (see :mod:`~langchain_localllm._core.http.fleet`).
        server: What kind of server it is (names and hints used in error messages).
        weights: With several URLs: each endpoint's relative speed.
        max_concurrency: With several URLs: each endpoint's most requests in flight (None: no limit).
        headers: Extra headers sent with every request (e.g. ``Authorization``).
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for each read (the first byte of an answer, then
            each streamed chunk); None waits forever.
        pool_size: Idle connections kept open per endpoint.
        max_event_bytes: Largest line or event of a streamed answer.
        max_response_bytes: Largest non-streamed answer.
        stream_deadline: Seconds a whole call may take (None: no limit beside the read timeout).
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        server: ServerKind,
        *,
        weights: Sequence[float] | None = None,
        max_concurrency: Sequence[int | None] | None = None,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float | None = None,
        pool_size: int = 10,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        stream_deadline: float | None = None,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            msg = f"{server.name}: base_url is an empty list; give at least one server URL."
            raise InvalidParameterError(msg, parameter="base_url", value=base_url)
        self.base_urls = [check_base_url(url, server.name) for url in urls]
        self.base_url = self.base_urls[0]
        self.server = server
        self.headers = dict(headers or {})
        self.pool_size = pool_size
        self.settings = CallSettings(
            server,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_event_bytes=max_event_bytes,
            max_response_bytes=max_response_bytes,
            stream_deadline=stream_deadline,
        )
        self.fleet = Fleet(self.base_urls, server, weights=weights, max_concurrency=max_concurrency)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def connect_timeout(self) -> float | None:
        """Seconds to wait for a connection."""
        return self.settings.connect_timeout

    @property
    def read_timeout(self) -> float | None:
        """Seconds to wait for each read."""
        return self.settings.read_timeout

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on the endpoint this context used last (for messages)."""
        last = last_url()
        return (last if last is not None and last in self.base_urls else self.base_url) + path

    # --- clients ---------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        return {
            "headers": self.headers,
            "timeout": self.settings.timeout(),
            "limits": httpx.Limits(
                max_connections=None, max_keepalive_connections=self.pool_size * len(self.base_urls)
            ),
            "verify": _tls_context(any(url.startswith("https:") for url in self.base_urls)),
            "trust_env": False,  # no proxies, no .netrc: talk to base_url only
            "follow_redirects": False,
        }

    @property
    def sync_client(self) -> httpx.Client:
        """The pooled ``httpx.Client`` (created on first use, shared by threads)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(**self._client_options())
                client = self._client
        return client

    def aclient(self) -> httpx.AsyncClient:
        """The pooled ``httpx.AsyncClient`` of the running event loop."""
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(**self._client_options())
            self._aclients[loop] = client
        return client

    def close(self) -> None:
        """Close the sync connections (a later call opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's async client."""
        client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    # --- calls -----------------------------------------------------------------------------

    def request_json(self, method: str, path: str, payload: Any = None, *, model: str | None = None) -> Any:
        """Send one request and return the decoded JSON answer (typed error on failure)."""
        answers = self._answers(Exchange(self.settings, method, path, payload, model=model))
        try:
            return next(answers)
        finally:
            answers.close()

    async def arequest_json(
        self, method: str, path: str, payload: Any = None, *, model: str | None = None
    ) -> Any:
        """Async :meth:`request_json`."""
        answers = self._aanswers(Exchange(self.settings, method, path, payload, model=model))
        try:
            return await anext(answers)
        finally:
            await answers.aclose()

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

    def stream_events(
        self, path: str, payload: Any, fmt: str, *, model: str | None = None, method: str = "POST"
    ) -> Generator[Any, None, None]:
        """POST ``payload`` and yield each decoded stream event (``fmt``: ``ndjson``/``sse``).

        Raises the typed error for an error status, an error event, a malformed or
        oversized event, a dropped connection, a read timeout or the stream deadline.
        Closing the iterator early closes the response (the server stops generating).
        """
        return self._answers(Exchange(self.settings, method, path, payload, model=model, fmt=fmt))

    def astream_events(
        self, path: str, payload: Any, fmt: str, *, model: str | None = None, method: str = "POST"
    ) -> AsyncGenerator[Any, None]:
        """Async :meth:`stream_events`."""
        return self._aanswers(Exchange(self.settings, method, path, payload, model=model, fmt=fmt))

    # --- the two loops: dispatch, send, read; every decision is the Exchange's or the Walk's ---

    def _answers(self, call: Exchange) -> Generator[Any, None, None]:
        """What ``call`` answers (stream events, or the one JSON answer), from the endpoint the
        fleet picks; moved to another endpoint only before any of it was yielded."""
        walk = Walk(self.fleet)
        while True:
            walk.start(self.fleet.acquire(walk.tried))
            call.attempt(walk.url)
            try:
                response = self._open(call)
                try:
                    chunks = response.iter_raw() if call.raw(response.headers) else response.iter_bytes()
                    for chunk in chunks:
                        events = call.feed(chunk)
                        if events:
                            if not walk.answering:
                                walk.began()
                            yield from events
                    events = call.close()
                except httpx.HTTPError as error:
                    raise call.failure(error) from error
                finally:
                    response.close()
                walk.began()
                yield from events
            except Exception as error:
                if walk.moves_on(error):
                    continue
                raise
            finally:
                walk.release()
            return

    async def _aanswers(self, call: Exchange) -> AsyncGenerator[Any, None]:
        """Async :meth:`_answers`."""
        walk = Walk(self.fleet)
        while True:
            walk.start(await self.fleet.aacquire(walk.tried))
            call.attempt(walk.url)
            try:
                response = await self._aopen(call)
                try:
                    raw = call.raw(response.headers)
                    async for chunk in response.aiter_raw() if raw else response.aiter_bytes():
                        events = call.feed(chunk)
                        if events:
                            if not walk.answering:
                                walk.began()
                            for event in events:
                                yield event
                    events = call.close()
                except httpx.HTTPError as error:
                    raise call.failure(error) from error
                finally:
                    await response.aclose()
                walk.began()
                for event in events:
                    yield event
            except Exception as error:
                if walk.moves_on(error):
                    continue
                raise
            finally:
                walk.release()
            return

    def _open(self, call: Exchange) -> httpx.Response:
        """Send ``call`` (again once if the resend rule says so) -> the answer, past its head."""
        client = self.sync_client
        while True:
            try:
                response = client.send(call.request(client, asynchronous=False), stream=True)
                break
            except httpx.HTTPError as error:
                if not call.resend_after(error):
                    raise call.failure(error) from error
        if call.head(response.status_code):
            try:
                for chunk in response.iter_bytes():
                    if not call.error_body(chunk):
                        break
            except httpx.HTTPError as error:
                raise call.failure(error) from error
            finally:
                response.close()
            raise call.status_error()
        return response

    async def _aopen(self, call: Exchange) -> httpx.Response:
        """Async :meth:`_open`."""
        client = self.aclient()
        while True:
            try:
                response = await client.send(call.request(client, asynchronous=True), stream=True)
                break
            except httpx.HTTPError as error:
                if not call.resend_after(error):
                    raise call.failure(error) from error
        if call.head(response.status_code):
            try:
                async for chunk in response.aiter_bytes():
                    if not call.error_body(chunk):
                        break
            except httpx.HTTPError as error:
                raise call.failure(error) from error
            finally:
                await response.aclose()
            raise call.status_error()
        return response

    # --- fleet reports ---------------------------------------------------------------------

    def probe(self, path: str) -> list[EndpointStatus]:
        """``GET path`` on every endpoint once (not only the least loaded), then the fleet's status."""
        for endpoint in self.fleet.endpoints:
            alone = HttpClient(endpoint.url, self.server, headers=self.headers, **self._settings_options())
            started = time.monotonic()
            try:
                alone.get_json(path)
            except Exception as error:
                if is_unanswered(error):
                    self.fleet.failed(endpoint, error)
                    continue
            finally:
                alone.close()
            self.fleet.answered(endpoint, time.monotonic() - started)
        return self.fleet.status()

    def _settings_options(self) -> dict[str, Any]:
        """The constructor's arguments that :attr:`settings` holds (all but ``server``)."""
        fields = dataclasses.fields(self.settings)
        return {field.name: getattr(self.settings, field.name) for field in fields if field.name != "server"}
