"""The connection every OpenAI-compatible class shares: URL, key, model, and the server identified once.

:class:`OpenAICompatibleServer` adds to :class:`ServerConnection` what is specific to
``/v1`` servers: ``base_url`` may end in ``/v1`` (as langchain-openai's does), an
``api_key`` sent as a bearer token, the model (default: the first one the server serves),
and :meth:`~OpenAICompatibleServer.server_info` — the server's dialect, served models and
context size, asked once (``/v1/models``, then ``/props`` or ``/version`` if needed) and
cached. A 404 about the model becomes a :class:`ModelNotFoundError` listing the served
models.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator

from langchain_localllm._core.http.errors import ServerKind
from langchain_localllm._core.server.connection import BaseUrl, ServerConnection
from langchain_localllm.errors import (
    InvalidParameterError,
    LocalLLMError,
    MalformedResponseError,
    ModelNotFoundError,
)
from langchain_localllm.openai_compatible.dialects import DIALECTS, Dialect, dialect_for_owner

__all__ = ["OPENAI_COMPATIBLE", "OpenAICompatibleServer", "ServerInfo"]

OPENAI_COMPATIBLE = ServerKind(
    name="OpenAI-compatible server",
    start_hint=(
        "start it (e.g. `vllm serve MODEL --port 8000` or `llama-server -m model.gguf --jinja --port 8000`), "
        "or set base_url to where it runs"
    ),
)


@dataclass(frozen=True)
class ServerInfo:
    """What a server said about itself when first asked."""

    dialect: Dialect
    models: tuple[str, ...]
    """Names in ``/v1/models``, in the server's order."""
    n_ctx: int | None
    """Context window (llama-server ``/props``, vLLM ``max_model_len``), when reported."""
    version: str | None = None
    props: dict[str, Any] | None = None
    """llama-server's ``/props`` (chat template, ...), when it is one."""


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


class OpenAICompatibleServer(ServerConnection):
    """``base_url``, ``api_key``, ``model`` and the identified server, for the ``/v1`` classes."""

    _server_kind: ClassVar[ServerKind] = OPENAI_COMPATIBLE
    _health_path: ClassVar[str] = "/v1/models"

    base_url: BaseUrl = "http://localhost:8000"
    """Root URL of the server (a trailing ``/v1`` is accepted), or a list of them (a fleet).
    Default: ``$OPENAI_COMPATIBLE_BASE_URL``, else ``http://localhost:8000`` (vLLM's port)."""

    api_key: SecretStr | None = None
    """Key the server was started with (vLLM ``--api-key``, llama-server ``--api-key``);
    sent as ``Authorization: Bearer``. Default: ``$OPENAI_COMPATIBLE_API_KEY`` (``ChatLlamafile``:
    ``$LLAMA_API_KEY``, as llama-server reads it)."""

    model: str | None = None
    """The served model to use (vLLM's ``--served-model-name``). None: the first model the
    server lists in ``/v1/models``."""

    dialect: str | None = Field(default=None)
    """The server family whose extensions to use: ``"vllm"``, ``"vllm-guided"`` (vLLM before
    0.10.2), ``"llama-server"``, ``"sglang"``, ``"ollama"`` or ``"openai"``. None identifies
    the server once (``/v1/models`` ``owned_by``, then ``/props``, ``/version``)."""

    _info: ServerInfo | None = PrivateAttr(default=None)
    _info_key: tuple[Any, ...] = PrivateAttr(default=())
    _env_prefix: ClassVar[str] = "OPENAI_COMPATIBLE"
    """``<prefix>_BASE_URL`` and ``<prefix>_API_KEY`` are read when the arguments are not given."""

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for name in ("base_url", "api_key"):
            env = os.environ.get(f"{cls._env_prefix}_{name.upper()}")
            if values.get(name) is None and env:
                values[name] = env
        return values

    @field_validator("base_url", mode="before")
    @classmethod
    def _strip_v1(cls, value: Any) -> Any:
        def strip(url: Any) -> Any:
            return re.sub(r"/v1/?$", "", url) if isinstance(url, str) else url

        return [strip(u) for u in value] if isinstance(value, list) else strip(value)

    @field_validator("dialect")
    @classmethod
    def _check_dialect(cls, value: str | None) -> str | None:
        if value is not None and value not in DIALECTS:
            msg = f"{cls.__name__}: unknown dialect {value!r}; use one of {', '.join(DIALECTS)} or None."
            raise InvalidParameterError(msg, parameter="dialect", value=value)
        return value

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self.headers or {})
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return headers

    # --- the server, identified once ------------------------------------------------------

    def server_info(self) -> ServerInfo:
        """The server's dialect, served models and context size (asked once per server, then
        cached; a copy or an assignment naming another server or model asks again)."""
        if self._info is None or self._info_key != self._identity():
            self._info, self._info_key = self._identify(), self._identity()
        return self._info

    async def aserver_info(self) -> ServerInfo:
        """Async :meth:`server_info` (the one identification runs in a worker thread)."""
        if self._info is None or self._info_key != self._identity():
            self._info, self._info_key = await asyncio.to_thread(self._identify), self._identity()
        return self._info

    async def _aprepare(self) -> None:
        await self.aserver_info()  # before a request is built from it, without blocking the loop

    def _identity(self) -> tuple[Any, ...]:
        urls = self.base_url if isinstance(self.base_url, str) else tuple(self.base_url)
        return (urls, self.model, self.dialect, tuple(sorted(self._request_headers().items())))

    def _optional_json(self, path: str) -> Any:
        try:
            return self.client.get_json(path)
        except LocalLLMError:  # not this kind of server (404), or not now
            return None

    def _identify(self) -> ServerInfo:
        if self.dialect is not None and self.model is not None:  # nothing to ask
            return ServerInfo(dialect=DIALECTS[self.dialect], models=(), n_ctx=None)
        answer = self.client.get_json("/v1/models")
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            msg = f"{self.client.url('/v1/models')} did not list models ({str(answer)[:120]})."
            raise MalformedResponseError(msg, url=self.client.url("/v1/models"))
        entries = [d for d in data if isinstance(d, dict) and isinstance(d.get("id"), str)]
        models = tuple(d["id"] for d in entries)
        owners = [str(d.get("owned_by") or "") for d in entries]
        dialect = DIALECTS[self.dialect] if self.dialect else None
        if dialect is None:
            dialect = next((d for d in map(dialect_for_owner, owners) if d is not None), None)
        n_ctx = next((d["max_model_len"] for d in entries if isinstance(d.get("max_model_len"), int)), None)
        props = None
        version = None
        if dialect is None or dialect.name == "llama-server":
            props = self._optional_json("/props")
            if isinstance(props, dict) and "default_generation_settings" in props:
                dialect = DIALECTS["llama-server"]
                settings = props.get("default_generation_settings") or {}
                n_ctx = settings.get("n_ctx", props.get("n_ctx"))
            else:
                props = None
        if dialect is None or (dialect.name == "vllm" and self.dialect is None):
            answer = self._optional_json("/version")
            if isinstance(answer, dict) and isinstance(answer.get("version"), str):
                version = answer["version"]
                old = _version_tuple(version) < (0, 10, 2)
                dialect = DIALECTS["vllm-guided" if old else "vllm"]
        return ServerInfo(
            dialect=dialect or DIALECTS["openai"],
            models=models,
            n_ctx=n_ctx if isinstance(n_ctx, int) else None,
            version=version,
            props=props if isinstance(props, dict) else None,
        )

    def _model_for(self, info: ServerInfo) -> str:
        """The model name to send: ``model``, else the server's first model."""
        if self.model is not None:
            return self.model
        if not info.models:
            msg = f"The server at {self.client.base_url} lists no models in /v1/models; pass model=..."
            raise ModelNotFoundError(msg, model=None, url=self.client.url("/v1/models"))
        return info.models[0]

    def _translated_error(self, error: LocalLLMError) -> LocalLLMError:
        """A 404 about the model, as a :class:`ModelNotFoundError` naming the served models."""
        if getattr(error, "status_code", None) != 404:
            return error
        message = str(getattr(error, "server_message", "") or error).lower()
        if not isinstance(error, ModelNotFoundError) and "model" not in message:
            return error
        served = self._info.models if self._info is not None else ()
        if not served:
            listing = self._optional_json("/v1/models")
            data = listing.get("data") if isinstance(listing, dict) else None
            served = tuple(
                d["id"] for d in data or () if isinstance(d, dict) and isinstance(d.get("id"), str)
            )
        listed = ", ".join(repr(m) for m in served) or "none"
        msg = (
            f"The server at {self.client.base_url} does not serve the model {self.model!r} "
            f"({getattr(error, 'server_message', error)}). It serves: {listed}. Pass one of them as model=..."
        )
        found = ModelNotFoundError(
            msg, model=self.model, served_models=list(served), url=getattr(error, "url", None)
        )
        found.__cause__ = error
        return found

    def get_context_window(self) -> int | None:
        """The server's context window in tokens, when it reports one."""
        return self.server_info().n_ctx
