"""Embeddings from a local Ollama server: ``/api/embed`` with a list, ``/api/embeddings`` for old servers."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import Field

from langchain_localllm._core.http_connection import BaseUrl
from langchain_localllm._core.http_errors import OLLAMA, ServerKind
from langchain_localllm._core.server_embeddings import Call, Exchange, ServerEmbeddings, vector_of
from langchain_localllm.errors import MalformedResponseError, ServerResponseError, UnsupportedParameterError

__all__ = ["OllamaEmbeddings"]


def _default_base_url() -> str:
    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return "http://localhost:11434"
    if "://" not in host:
        host = "http://" + host
    return host


class OllamaEmbeddings(ServerEmbeddings):
    """Embeddings from a local Ollama server, one request per batch of texts.

    Uses ``POST /api/embed`` with a list ``input`` (Ollama 0.3.4 and later); against an
    older server, which answers that endpoint with a bare 404, it falls back to the
    legacy ``POST /api/embeddings`` (one text per request) and remembers that. Only
    ``base_url`` is contacted.

    Setup:
        ```bash
        ollama pull all-minilm  # or nomic-embed-text, mxbai-embed-large, ...
        pip install langchain-localllm
        ```

    Key init args:
        model: str
            Name of the Ollama model.
        base_url: str | list[str]
            Root URL of the server (default ``$OLLAMA_HOST`` or http://localhost:11434).
        truncate: bool
            Let the server cut texts longer than the model's context (default True).
        keep_alive: str | int | None
            How long Ollama keeps the model loaded after the request.

    Instantiate:
        ```python
        from langchain_localllm import OllamaEmbeddings

        embeddings = OllamaEmbeddings(model="all-minilm")
        ```

    Embed:
        ```python
        vector = embeddings.embed_query("What is the capital of France?")
        vectors = embeddings.embed_documents(["Paris is the capital of France.", "Bonjour"])
        ```

    Async:
        ```python
        vector = await embeddings.aembed_query("What is the capital of France?")
        vectors = await embeddings.aembed_documents(["Paris is the capital of France."])
        ```
    """

    _server_kind: ClassVar[ServerKind] = OLLAMA
    _health_path: ClassVar[str] = "/api/version"

    model: str
    """Name of the Ollama model, e.g. ``"all-minilm"`` or ``"nomic-embed-text"``."""

    base_url: BaseUrl = Field(default_factory=_default_base_url)
    """Root URL of the Ollama server (``$OLLAMA_HOST`` if set)."""

    truncate: bool = True
    """Let the server cut texts longer than the context; False makes it answer an error."""

    keep_alive: str | int | None = None
    """How long the model stays loaded after a request (e.g. ``"5m"``, ``0``); None: server default."""

    options: dict[str, Any] = Field(default_factory=dict)
    """Model options (``num_ctx``, ``num_thread``...) sent with each request."""

    legacy: bool | None = None
    """Use the legacy ``/api/embeddings`` endpoint. None: ``/api/embed``, falling back
    automatically when the server does not have it."""

    def _model_for_errors(self) -> str | None:
        return self.model

    def _exchange(self, texts: list[str]) -> Exchange:
        common: dict[str, Any] = {"model": self.model}
        if self.options:
            common["options"] = self.options
        if self.keep_alive is not None:
            common["keep_alive"] = self.keep_alive
        if not self.legacy:
            try:
                answer = yield Call("/api/embed", {**common, "input": texts, "truncate": self.truncate})
            except ServerResponseError as error:
                # Servers before 0.3.4 have no /api/embed: a 404 that is not "model not found".
                if self.legacy is False or getattr(error, "status_code", None) != 404:
                    raise
                self.legacy = True
            else:
                url = self.client.url("/api/embed")
                vectors = answer.get("embeddings") if isinstance(answer, dict) else None
                if not isinstance(vectors, list):
                    raise MalformedResponseError(
                        f"Ollama at {url} answered without an 'embeddings' list: {str(answer)[:120]}", url=url
                    )
                return [vector_of(v, url) for v in vectors]
        url = self.client.url("/api/embeddings")
        out: list[list[float]] = []
        for text in texts:
            answer = yield Call("/api/embeddings", {**common, "prompt": text})
            value = answer.get("embedding") if isinstance(answer, dict) else None
            if value == []:  # what old servers answer for a model that cannot embed
                raise UnsupportedParameterError(
                    f"Ollama at {url} returned an empty embedding for {self.model!r}: the model does "
                    "not support embeddings. Use an embedding model (all-minilm, nomic-embed-text).",
                    model=self.model,
                    url=url,
                )
            out.append(vector_of(value, url))
        return out
