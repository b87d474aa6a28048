"""Embeddings from a llamafile or llama-server started with ``--embeddings``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from langchain_localllm._core.http.errors import LLAMA_SERVER, ServerKind
from langchain_localllm._core.server.embeddings import Call, Exchange, ServerEmbeddings, vector_of
from langchain_localllm.errors import (
    InvalidModelFileError,
    MalformedResponseError,
    ServerResponseError,
    UnsupportedParameterError,
)
from langchain_localllm.llamafile.client import LlamaServerConnection

__all__ = ["LlamafileEmbeddings"]


class LlamafileEmbeddings(LlamaServerConnection, ServerEmbeddings):
    """Embeddings from a llamafile / llama-server started with ``--embeddings``.

    Sends a batch of texts per ``POST /embedding`` (``{"content": [...]}``) and reads
    every answer shape llama.cpp's server has had: today's list of
    ``{"index", "embedding": [[...]]}``, 2024's ``{"results": [...]}`` and the original
    single ``{"embedding": [...]}`` (then one text per request, remembered). Only
    ``base_url`` is contacted.

    Setup:
        ```bash
        ./all-MiniLM-L6-v2.llamafile --server --nobrowser --embeddings
        # or: llama-server -m all-MiniLM-L6-v2-f16.gguf --embeddings --port 8080
        ```

    Key init args:
        base_url: str
            Root URL of the server (default http://localhost:8080).
        api_key: SecretStr | None
            The key the server was started with (``--api-key``).
        batch_size: int | None
            Texts per request (default 64).

    Instantiate:
        ```python
        from langchain_localllm import LlamafileEmbeddings

        embeddings = LlamafileEmbeddings(base_url="http://localhost:8080")
        ```

    Embed:
        ```python
        vector = embeddings.embed_query("What is the capital of France?")
        vectors = embeddings.embed_documents(["Paris is the capital of France.", "Bonjour"])
        ```

    Async:
        ```python
        vector = await embeddings.aembed_query("What is the capital of France?")
        ```
    """

    _server_kind: ClassVar[ServerKind] = LLAMA_SERVER

    _peer_renamed: ClassVar[Mapping[str, str]] = {"request_timeout": "timeout"}

    single_text: bool = False
    """Send one text per request (set automatically for servers that take only one)."""

    def _exchange(self, texts: list[str]) -> Exchange:
        url = self.client.url("/embedding")
        if not self.single_text:
            try:
                answer = yield Call("/embedding", {"content": texts})
            except ServerResponseError as error:
                raise _explained(error, url) from error
            if not (isinstance(answer, dict) and "embedding" in answer) or len(texts) == 1:
                return _parse_batch(answer, len(texts), url)
            self.single_text = True  # an old server that embedded only the first text
        out: list[list[float]] = []
        for text in texts:
            try:
                answer = yield Call("/embedding", {"content": text})
            except ServerResponseError as error:
                raise _explained(error, url) from error
            out.extend(_parse_batch(answer, 1, url))
        return out


def _explained(error: ServerResponseError, url: str) -> Exception:
    message = str(getattr(error, "server_message", "") or error)
    if "--embedding" in message or getattr(error, "status_code", None) == 501:
        return UnsupportedParameterError(
            f"The server at {url} does not compute embeddings: {message}. Restart it with "
            "`--embeddings` (llamafile: `./model.llamafile --server --nobrowser --embeddings`).",
            url=url,
            status_code=getattr(error, "status_code", None),
        )
    return error


def _pooled(value: Any, url: str) -> list[float]:
    """One vector from an ``embedding`` field: flat, or nested with one row per token."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        if len(value) != 1:
            raise InvalidModelFileError(
                f"The server at {url} returned {len(value)} vectors (one per token) for one text: its "
                "model has no pooling. Restart it with `--pooling mean` (or cls), or use an embedding model.",
                url=url,
            )
        value = value[0]
    return vector_of(value, url)


def _parse_batch(answer: Any, expected: int, url: str) -> list[list[float]]:
    if isinstance(answer, dict):
        if "embedding" in answer:  # the original single-text answer
            return [_pooled(answer["embedding"], url)]
        items = answer.get("results", answer.get("data"))
    else:
        items = answer
    if not isinstance(items, list) or not all(isinstance(i, dict) and "embedding" in i for i in items):
        raise MalformedResponseError(
            f"The server at {url} sent an embeddings answer of an unknown shape: {str(answer)[:160]}", url=url
        )
    if len(items) != expected:
        msg = f"The server at {url} sent {len(items)} embeddings for {expected} texts."
        raise MalformedResponseError(msg, url=url)
    ordered = sorted(enumerate(items), key=lambda p: (p[1].get("index", p[0]), p[0]))
    return [_pooled(item["embedding"], url) for _, item in ordered]
