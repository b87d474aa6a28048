"""The connection settings that every server-backed class shares (LLMs, chat models, embeddings).

``base_url`` is one URL or a list of them: a list makes a fleet
(:mod:`~langchain_localllm._core.http.fleet`), where each request goes to the healthy server with
the fewest requests in flight and moves to another one if the first refuses it before
answering.

A server's answer is bounded: each read waits at most ``timeout``, a whole call at most
``stream_deadline`` (when set), a streamed line or event is at most ``max_event_bytes`` and a
non-streamed answer at most ``max_response_bytes``; past a bound the call ends with a typed
error naming the setting to change.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeAlias

from pydantic import BaseModel, Field, PrivateAttr, field_validator

from langchain_localllm._core.http.client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    HttpClient,
    check_base_url,
)
from langchain_localllm._core.http.errors import ServerKind
from langchain_localllm._core.http.fleet import EndpointStatus
from langchain_localllm.errors import InvalidParameterError

BaseUrl: TypeAlias = str | list[str]
"""One server's root URL, or the root URLs of a fleet of servers serving the same model."""


class ServerConnection(BaseModel):
    """``base_url``, headers and timeouts, and the pooled client built from them."""

    _server_kind: ClassVar[ServerKind]
    _health_path: ClassVar[str] = "/health"
    """A cheap GET that a ready server answers 200 (``fleet_status(probe=True)`` sends it)."""

    base_url: BaseUrl = ""
    """Root URL of the server, or a list of root URLs (a fleet serving the same model)."""

    endpoint_weights: list[float] | None = None
    """With a list of URLs: the relative speed of each server (2.0 takes twice the load of
    1.0). Default: all equal."""

    endpoint_max_concurrency: int | list[int | None] | None = None
    """With a list of URLs: the most requests in flight per server (one value for all, or one
    per URL; e.g. llama-server's ``--parallel``). Requests wait when all are full. None: no limit."""

    headers: dict[str, str] | None = None
    """Extra HTTP headers sent with every request."""

    timeout: float | None = Field(default=300.0, gt=0)
    """Read timeout in seconds: how long to wait for an answer to start and, when it
    streams, between two chunks. None waits forever."""

    connect_timeout: float | None = Field(default=DEFAULT_CONNECT_TIMEOUT, gt=0)
    """Seconds to wait for the connection to the server."""

    stream_deadline: float | None = Field(default=None, gt=0)
    """Seconds one call may take in all, from sending the request to the end of the answer
    (streamed or not), beside the per-read ``timeout``: a server that keeps sending keep-alive
    pings or trickles its answer cannot keep a call going longer (``ServerTimeoutError``).
    Checked as each chunk arrives; a silent server is stopped by the read timeout, which is
    never longer than what is left of the deadline. None: no overall limit."""

    max_event_bytes: int = Field(default=DEFAULT_MAX_EVENT_BYTES, gt=0)
    """Largest line or event of a streamed answer, in bytes (default 16 MiB); a larger one
    ends the call with ``MalformedResponseError`` before it is held whole in memory."""

    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, gt=0)
    """Largest non-streamed answer, in bytes (default 256 MiB); a larger one ends the call with
    ``MalformedResponseError``."""

    _client: HttpClient | None = PrivateAttr(default=None)
    _client_config: tuple[Any, ...] = PrivateAttr(default=())

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            return check_base_url(value, cls.__name__)
        if not value:
            msg = f"{cls.__name__}: base_url is an empty list; give at least one server URL."
            raise InvalidParameterError(msg, parameter="base_url", value=value)
        urls = [check_base_url(url, cls.__name__) for url in value]
        if len(set(urls)) != len(urls):
            msg = f"{cls.__name__}: base_url lists the same server twice ({urls}); use endpoint_weights."
            raise InvalidParameterError(msg, parameter="base_url", value=value)
        return urls

    def _request_headers(self) -> dict[str, str]:
        return dict(self.headers or {})

    def _client_options(self) -> dict[str, Any]:
        return {
            "headers": self._request_headers(),
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.timeout,
            "stream_deadline": self.stream_deadline,
            "max_event_bytes": self.max_event_bytes,
            "max_response_bytes": self.max_response_bytes,
        }

    @property
    def client(self) -> HttpClient:
        """The pooled HTTP client of this instance (rebuilt if a copy changed its settings)."""
        urls = self.base_url
        limits = self.endpoint_max_concurrency
        options = self._client_options()
        config = (
            urls if isinstance(urls, str) else tuple(urls),
            tuple(self.endpoint_weights or ()),
            tuple(limits) if isinstance(limits, list) else limits,
            *(tuple(sorted(v.items())) if name == "headers" else v for name, v in options.items()),
        )
        if self._client is None or self._client_config != config:
            self._client_config = config
            if not isinstance(urls, str):
                per_url = limits if isinstance(limits, list) else [limits] * len(urls)
                options.update(weights=self.endpoint_weights, max_concurrency=per_url)
            self._client = HttpClient(urls, self._server_kind, **options)
        return self._client

    def fleet_status(self, *, probe: bool = False) -> list[EndpointStatus]:
        """Each server's state (``up``/``down``/``loading``/``probing``), requests in flight,
        requests answered, errors and latency (time to the first byte), one entry per URL of
        ``base_url`` (one entry for one server), as seen by this instance's requests so far.
        ``probe=True`` first sends every server a health check."""
        client = self.client
        return client.probe(self._health_path) if probe else client.fleet.status()

    def fleet_capacity(self, per_server: int) -> int:
        """How many requests to run at once: ``per_server`` for one server, and for a fleet the
        sum over its servers of their ``endpoint_max_concurrency`` (else ``per_server``)."""
        return self.client.fleet.capacity(per_server)
