"""The Ollama server's API: where it is (``OLLAMA_HOST``) and its administration endpoints.

:func:`ollama_base_url_from_env` is the one reader of ``OLLAMA_HOST`` for every Ollama class
and the CLI. :class:`OllamaClient` wraps the pooled :class:`~langchain_localllm._core.http.client.HttpClient`
with the endpoints that are not generation: ``/api/version``, ``/api/tags``, ``/api/show``,
``/api/pull`` (with a progress bar) and ``/api/ps``.

>>> client = OllamaClient.from_url()  # doctest: +SKIP
>>> [model["name"] for model in client.list_models()]  # doctest: +SKIP
['llama3.2:latest']
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, PrivateAttr, field_validator

from langchain_localllm._core.base.peers import warn_no_effect
from langchain_localllm._core.http.client import HttpClient
from langchain_localllm._core.http.errors import OLLAMA
from langchain_localllm._core.http.fleet import FleetClient
from langchain_localllm._core.server.connection import BaseUrl, ServerConnection
from langchain_localllm.errors import (
    GenerationError,
    MalformedResponseError,
    ModelNotFoundError,
    ServerResponseError,
)

__all__ = [
    "DEFAULT_OLLAMA_PORT",
    "OllamaClient",
    "OllamaConnection",
    "ollama_base_url_from_env",
    "parse_ollama_host",
]

DEFAULT_OLLAMA_PORT = 11434
_DEFAULT_URL = f"http://localhost:{DEFAULT_OLLAMA_PORT}"


def parse_ollama_host(host: str) -> str:
    """An ``OLLAMA_HOST`` value as a base URL, read the way Ollama's own client reads it.

    ``host``, ``host:port``, ``:port``, ``[ipv6]:port`` or a full URL (a path is kept).
    Without a port: 11434, or 80/443 for an explicit ``http://``/``https://`` scheme (as
    the ollama client does). ``0.0.0.0``, ``::`` and an empty host mean "listen
    everywhere" to the server; a client connects to the loopback address instead.

    >>> parse_ollama_host("gpu-box"), parse_ollama_host(":5000"), parse_ollama_host("0.0.0.0")
    ('http://gpu-box:11434', 'http://127.0.0.1:5000', 'http://127.0.0.1:11434')
    >>> parse_ollama_host("https://ollama.example.com/api-proxy/")
    'https://ollama.example.com:443/api-proxy'
    """
    host = host.strip()
    if not host:
        return _DEFAULT_URL
    scheme, sep, rest = host.partition("://")
    port = str(DEFAULT_OLLAMA_PORT)
    if not sep:
        scheme, rest = "http", host
    elif scheme == "http":
        port = "80"
    elif scheme == "https":
        port = "443"
    hostport, slash, path = rest.partition("/")
    hostname = hostport
    if hostport.startswith("["):  # [ipv6] or [ipv6]:port
        inside, _, after = hostport[1:].partition("]")
        hostname = inside
        if after.startswith(":") and after[1:].isdigit():
            port = after[1:]
    elif hostport.count(":") == 1:
        name, _, maybe_port = hostport.partition(":")
        if maybe_port.isdigit():
            hostname, port = name, maybe_port
    if hostname in ("", "0.0.0.0", "::"):
        hostname = "127.0.0.1"
    if _is_ipv6(hostname):
        hostname = f"[{hostname}]"
    path = path.rstrip("/")
    return f"{scheme}://{hostname}:{port}" + (f"/{path}" if slash and path else "")


def _is_ipv6(name: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(name), ipaddress.IPv6Address)
    except ValueError:
        return False


def ollama_base_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``OLLAMA_HOST`` as a base URL (see :func:`parse_ollama_host`), else ``http://localhost:11434``."""
    return parse_ollama_host((os.environ if environ is None else environ).get("OLLAMA_HOST", ""))


class OllamaClient:
    """Administration of one Ollama server: version, models (tags), show, pull, running models.

    Args:
        http: The pooled HTTP client to the server (an LLM's ``client`` or a new one).
    """

    def __init__(self, http: HttpClient | FleetClient) -> None:
        self.http = http
        self._shown: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_url(
        cls, base_url: str | None = None, *, headers: Mapping[str, str] | None = None
    ) -> OllamaClient:
        """A client of the server at ``base_url`` (default: ``OLLAMA_HOST``, else localhost)."""
        return cls(HttpClient(base_url or ollama_base_url_from_env(), OLLAMA, headers=headers))

    @property
    def base_url(self) -> str:
        """The server's root URL."""
        return self.http.base_url

    def version(self) -> str:
        """The server's version (``GET /api/version``)."""
        answer = self.http.get_json("/api/version")
        return str(answer.get("version")) if isinstance(answer, dict) else str(answer)

    def list_models(self) -> list[dict[str, Any]]:
        """The models the server has (``GET /api/tags``): dicts with ``name``, ``size``, ``details``..."""
        return _models_of(self.http.get_json("/api/tags"))

    async def alist_models(self) -> list[dict[str, Any]]:
        """Async :meth:`list_models`."""
        return _models_of(await self.http.aget_json("/api/tags"))

    def running_models(self) -> list[dict[str, Any]]:
        """The models loaded in memory now (``GET /api/ps``), with ``size_vram``, ``expires_at``..."""
        return _models_of(self.http.get_json("/api/ps"))

    def show(self, model: str) -> dict[str, Any]:
        """``POST /api/show``: ``template``, ``parameters``, ``details`` (``family``...), ``model_info``.

        Raises ``ModelNotFoundError`` if the server does not have the model.
        """
        answer = self.http.post_json("/api/show", {"model": model}, model=model)
        if not isinstance(answer, dict):
            url = self.http.url("/api/show")
            raise MalformedResponseError(f"{url} did not answer a JSON object: {answer!r}", url=url)
        self._shown[model] = answer
        return answer

    def cached_show(self, model: str) -> dict[str, Any]:
        """:meth:`show`, asked once per model for the life of this client (which a class keeps
        while its connection settings stay the same); :meth:`pull` of the model asks again."""
        answer = self._shown.get(model)
        return answer if answer is not None else self.show(model)

    def pull(self, model: str, *, progress: bool = True, insecure: bool = False) -> dict[str, Any]:
        """Download ``model`` into the server (``POST /api/pull``).

        Shows a tqdm progress bar per layer fed by the streamed ``total``/``completed``
        counts (``progress=False`` for none). Returns the last status (``{"status": "success"}``).
        """
        self._shown.pop(model, None)
        payload = {"model": model, "stream": True, "insecure": insecure}
        bars: dict[str, Any] = {}
        last: dict[str, Any] = {}
        try:
            for event in self.http.stream_events("/api/pull", payload, "ndjson", model=model):
                if not isinstance(event, dict):
                    continue
                last = event
                if progress:
                    _show_pull_progress(bars, event)
        except (GenerationError, ServerResponseError) as error:
            if "not exist" in error.message or "not found" in error.message:
                hint = "Check the name (and tag) of the model in the Ollama library."
                reason = getattr(error, "server_message", error.message)
                msg = f"Ollama could not pull {model!r}: {reason}. {hint}"
                raise ModelNotFoundError(msg, model=model, url=self.http.url("/api/pull")) from error
            raise
        finally:
            for bar in bars.values():
                bar.close()
        return last


class OllamaConnection(ServerConnection):
    """The connection settings of the Ollama classes, including langchain-ollama's client arguments."""

    _health_path: ClassVar[str] = "/api/version"

    base_url: BaseUrl = Field(default_factory=ollama_base_url_from_env)
    """Root URL of the Ollama server, or a list of them (a fleet serving the same models); default
    from ``OLLAMA_HOST``, else ``http://localhost:11434``."""

    client_kwargs: dict[str, Any] | None = Field(default_factory=dict)
    """langchain-ollama's arguments for the ollama client: ``headers`` are sent with every
    request and a numeric ``timeout`` is the read timeout; other keys have no effect (a
    warning says so; use ``connect_timeout=``)."""

    sync_client_kwargs: dict[str, Any] | None = Field(default_factory=dict)
    """As ``client_kwargs``, for the sync path (its ``headers`` are sent with every request)."""

    async_client_kwargs: dict[str, Any] | None = Field(default_factory=dict)
    """As ``client_kwargs``, for the async path (its ``headers`` are sent with every request)."""

    validate_model_on_init: bool = False
    """Ask the server for the model when the instance is created (``ModelNotFoundError`` if missing)."""

    _ollama_client: OllamaClient | None = PrivateAttr(default=None)

    if TYPE_CHECKING:
        model: str

    @field_validator("base_url", mode="before")
    @classmethod
    def _default_base_url(cls, value: Any) -> Any:
        return ollama_base_url_from_env() if value is None else value  # langchain-ollama's None

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        for name in ("client_kwargs", "sync_client_kwargs", "async_client_kwargs"):
            for key, value in (getattr(self, name) or {}).items():
                if (
                    key == "timeout"
                    and isinstance(value, int | float)
                    and "timeout" not in self.model_fields_set
                ):
                    self.timeout = float(value)  # httpx's read timeout, as langchain-ollama passes it
                elif key not in ("headers", "timeout"):
                    reason = "only 'headers' and 'timeout' are used; set connect_timeout= on the class"
                    warn_no_effect(type(self).__name__, f"{name}[{key!r}]", value, reason, stacklevel=5)
        if self.validate_model_on_init:
            self.ollama_client.show(self.model)

    def _request_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name in ("client_kwargs", "sync_client_kwargs", "async_client_kwargs"):
            headers.update((getattr(self, name) or {}).get("headers") or {})
        headers.update(self.headers or {})
        return headers

    @property
    def ollama_client(self) -> OllamaClient:
        """The server's administration API (tags, show, pull, ps, version) over this instance's
        connection: one per connection, so its :meth:`~OllamaClient.cached_show` lasts as long."""
        http = self.client
        if self._ollama_client is None or self._ollama_client.http is not http:
            self._ollama_client = OllamaClient(http)
        return self._ollama_client


def _models_of(answer: Any) -> list[dict[str, Any]]:
    models = answer.get("models") if isinstance(answer, dict) else None
    return list(models or [])


def _show_pull_progress(bars: dict[str, Any], event: dict[str, Any]) -> None:
    from tqdm.auto import tqdm

    digest, total = event.get("digest"), event.get("total")
    if not digest or not isinstance(total, int):
        return
    bar = bars.get(digest)
    if bar is None:
        label = f"pulling {str(digest).removeprefix('sha256:')[:12]}"
        bar = bars[digest] = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024)
    completed = event.get("completed")
    if isinstance(completed, int):
        bar.update(max(0, completed - bar.n))
