"""The connection settings that every server-backed class shares (LLMs and embeddings)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr, field_validator

from langchain_localllm._core.http import DEFAULT_CONNECT_TIMEOUT, HttpClient, check_base_url
from langchain_localllm._core.http_errors import ServerKind


class ServerConnection(BaseModel):
    """``base_url``, headers and timeouts, and the pooled :class:`HttpClient` built from them."""

    _server_kind: ClassVar[ServerKind]

    base_url: str = ""
    """Root URL of the server."""

    headers: dict[str, str] | None = None
    """Extra HTTP headers sent with every request."""

    timeout: float | None = Field(default=300.0, gt=0)
    """Read timeout in seconds: how long to wait for an answer to start and, when it
    streams, between two chunks. None waits forever."""

    connect_timeout: float | None = Field(default=DEFAULT_CONNECT_TIMEOUT, gt=0)
    """Seconds to wait for the connection to the server."""

    _client: HttpClient | None = PrivateAttr(default=None)
    _client_config: tuple[Any, ...] = PrivateAttr(default=())

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_base_url(value, cls.__name__)

    def _request_headers(self) -> dict[str, str]:
        return dict(self.headers or {})

    @property
    def client(self) -> HttpClient:
        """The pooled HTTP client of this instance (rebuilt if a copy changed its settings)."""
        config = (
            self.base_url,
            self.timeout,
            self.connect_timeout,
            tuple(sorted(self._request_headers().items())),
        )
        if self._client is None or self._client_config != config:
            self._client_config = config
            self._client = HttpClient(
                self.base_url,
                self._server_kind,
                headers=self._request_headers(),
                connect_timeout=self.connect_timeout,
                read_timeout=self.timeout,
            )
        return self._client
