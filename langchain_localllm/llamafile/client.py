"""llama-server's API (llamafile runs the same server): connection settings and the endpoints
that are not generation: ``/health``, ``/props``, ``/tokenize``, ``/detokenize``,
``/apply-template`` and ``/slots``.

>>> client = LlamaServerClient.from_url("http://localhost:8080")  # doctest: +SKIP
>>> client.tokenize("Hello world")  # doctest: +SKIP
[15043, 3186]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import SecretStr

from langchain_localllm._core.http.client import HttpClient
from langchain_localllm._core.http.errors import LLAMA_SERVER
from langchain_localllm._core.http.fleet import FleetClient
from langchain_localllm._core.server.connection import BaseUrl, ServerConnection
from langchain_localllm.errors import MalformedResponseError

__all__ = ["DEFAULT_LLAMAFILE_URL", "LlamaServerClient", "LlamaServerConnection"]

DEFAULT_LLAMAFILE_URL = "http://localhost:8080"


class LlamaServerConnection(ServerConnection):
    """The connection settings of the llamafile classes: ``base_url`` and the server's API key."""

    base_url: BaseUrl = DEFAULT_LLAMAFILE_URL
    """Root URL of the llamafile / llama-server, or a list of them (a fleet serving one model)."""

    api_key: SecretStr | None = None
    """Key the server was started with (``--api-key``); sent as ``Authorization: Bearer``."""

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self.headers or {})
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return headers

    @property
    def server(self) -> LlamaServerClient:
        """The server's other endpoints (health, props, tokenize, apply-template, slots)."""
        return LlamaServerClient(self.client)


class LlamaServerClient:
    """The endpoints of one llama-server (or llamafile) besides generation and embeddings.

    Args:
        http: The pooled HTTP client to the server (a class's ``client`` or a new one).
    """

    def __init__(self, http: HttpClient | FleetClient) -> None:
        self.http = http

    @classmethod
    def from_url(
        cls, base_url: str = DEFAULT_LLAMAFILE_URL, *, headers: Mapping[str, str] | None = None
    ) -> LlamaServerClient:
        """A client of the server at ``base_url``."""
        return cls(HttpClient(base_url, LLAMA_SERVER, headers=headers))

    @property
    def base_url(self) -> str:
        """The server's root URL."""
        return self.http.base_url

    def _object(self, answer: Any, path: str) -> dict[str, Any]:
        if not isinstance(answer, dict):
            url = self.http.url(path)
            raise MalformedResponseError(f"{url} did not answer a JSON object: {str(answer)[:160]}", url=url)
        return answer

    def health(self) -> dict[str, Any]:
        """``GET /health``: ``{"status": "ok"}`` when the model is loaded.

        Raises ``ServerUnreachableError`` if nothing listens and ``ServerResponseError``
        (503) while the model is still loading.
        """
        answer = self.http.get_json("/health")
        return answer if isinstance(answer, dict) else {"status": answer}

    async def ahealth(self) -> dict[str, Any]:
        """Async :meth:`health`."""
        answer = await self.http.aget_json("/health")
        return answer if isinstance(answer, dict) else {"status": answer}

    def props(self) -> dict[str, Any]:
        """``GET /props``: ``default_generation_settings`` (``n_ctx``...), ``chat_template``..."""
        return self._object(self.http.get_json("/props"), "/props")

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        """Token ids of ``text`` by the served model's tokenizer (``POST /tokenize``)."""
        answer = self.http.post_json("/tokenize", {"content": text, "add_special": add_special})
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            url = self.http.url("/tokenize")
            raise MalformedResponseError(f"{url} answered without a 'tokens' list: {answer!r}", url=url)
        return [t["id"] if isinstance(t, dict) else t for t in tokens]

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens`` (``POST /detokenize``)."""
        answer = self._object(self.http.post_json("/detokenize", {"tokens": list(tokens)}), "/detokenize")
        return str(answer.get("content", ""))

    def apply_template(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """The prompt the server's chat template makes of ``messages`` (``POST /apply-template``)."""
        body = {"messages": [dict(m) for m in messages]}
        answer = self._object(self.http.post_json("/apply-template", body), "/apply-template")
        prompt = answer.get("prompt")
        if not isinstance(prompt, str):
            url = self.http.url("/apply-template")
            raise MalformedResponseError(f"{url} answered without a 'prompt': {str(answer)[:160]}", url=url)
        return prompt

    def slots(self) -> list[dict[str, Any]]:
        """The server's slots (``GET /slots``; the server needs ``--slots`` in recent versions)."""
        answer = self.http.get_json("/slots")
        return [slot for slot in answer if isinstance(slot, dict)] if isinstance(answer, list) else []
