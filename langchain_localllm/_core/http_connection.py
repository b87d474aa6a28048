"""The connection settings that every server-backed class shares (LLMs, chat models, embeddings).

``base_url`` is one URL or a list of them: a list makes a fleet
(:mod:`~langchain_localllm._core.fleet`), where each request goes to the healthy server with
the fewest requests in flight and moves to another one if the first refuses it before
answering.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeAlias

from pydantic import BaseModel, Field, PrivateAttr, field_validator

from langchain_localllm._core.fleet import EndpointStatus, FleetClient
from langchain_localllm._core.http import DEFAULT_CONNECT_TIMEOUT, HttpClient, check_base_url
from langchain_localllm._core.http_errors import ServerKind
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

    _client: HttpClient | FleetClient | None = PrivateAttr(default=None)
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
        }

    @property
    def client(self) -> HttpClient | FleetClient:
        """The pooled HTTP client of this instance (rebuilt if a copy changed its settings)."""
        urls = self.base_url
        limits = self.endpoint_max_concurrency
        config = (
            urls if isinstance(urls, str) else tuple(urls),
            tuple(self.endpoint_weights or ()),
            tuple(limits) if isinstance(limits, list) else limits,
            self.timeout,
            self.connect_timeout,
            tuple(sorted(self._request_headers().items())),
        )
        if self._client is None or self._client_config != config:
            self._client_config = config
            options = self._client_options()
            if isinstance(urls, str):
                self._client = HttpClient(urls, self._server_kind, **options)
            else:
                per_url = limits if isinstance(limits, list) else [limits] * len(urls)
                self._client = FleetClient(
                    urls,
                    self._server_kind,
                    weights=self.endpoint_weights,
                    max_concurrency=per_url,
                    **options,
                )
        return self._client

    def fleet_status(self, *, probe: bool = False) -> list[EndpointStatus]:
        """Each server's state (``up``/``down``/``loading``/``probing``), requests in flight,
        requests answered, errors and latency (time to the first byte), one entry per URL of
        ``base_url``, as seen by this instance's requests so far. ``probe=True`` first sends
        every server a health check."""
        client = self.client
        if isinstance(client, HttpClient):  # one server: a fleet of one, for the report
            client = FleetClient([client.base_url], self._server_kind, **self._client_options())
        return client.probe(self._health_path) if probe else client.fleet.status()

    def fleet_capacity(self, per_server: int) -> int:
        """How many requests to run at once: ``per_server`` for one server, and for a fleet the
        sum over its servers of their ``endpoint_max_concurrency`` (else ``per_server``)."""
        client = self.client
        if isinstance(client, FleetClient):
            return client.fleet.capacity(per_server)
        return per_server
