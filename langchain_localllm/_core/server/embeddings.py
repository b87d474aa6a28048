"""What the server embeddings (Ollama, llamafile/llama-server) share.

A subclass writes its protocol once, as a generator ``_exchange(texts)`` that yields
:class:`Call` s (path and JSON body), receives each decoded answer (or has the typed
error thrown into it) and returns the vectors. :class:`ServerEmbeddings` drives that
generator with the sync client for ``embed_documents`` and with the async client for
``aembed_documents``: request building, fallbacks and parsing are shared, only the I/O
differs.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from langchain_localllm._core.base.embeddings import LocalEmbeddings
from langchain_localllm._core.server.connection import ServerConnection
from langchain_localllm.errors import MalformedResponseError

__all__ = ["Call", "Exchange", "ServerEmbeddings", "vector_of"]


@dataclass(frozen=True)
class Call:
    """One POST of a JSON body to ``path`` on the server."""

    path: str
    body: dict[str, Any]


Exchange = Generator[Call, Any, list[list[float]]]
"""A protocol run: yields calls, is sent their decoded answers, returns the vectors."""


def vector_of(value: Any, url: str) -> list[float]:
    """``value`` as a list of floats, or a :class:`MalformedResponseError` naming ``url``."""
    if isinstance(value, list) and value and all(isinstance(x, (int, float)) for x in value):
        return [float(x) for x in value]
    shown = repr(value)[:120]
    msg = f"The server at {url} sent {shown} where an embedding vector was expected."
    raise MalformedResponseError(msg, url=url)


class ServerEmbeddings(ServerConnection, LocalEmbeddings):
    """Base of the embeddings computed by a local model server over HTTP."""

    def _model_for_errors(self) -> str | None:
        return None

    def _concurrency(self) -> int:
        return self.fleet_capacity(1)

    # --- the protocol ----------------------------------------------------------------

    def _exchange(self, texts: list[str]) -> Exchange:
        """Yield the calls that embed ``texts`` and return their vectors."""
        raise NotImplementedError

    def _default_batch_size(self) -> int:
        # One request per batch; the server batches internally. Large enough that
        # HTTP overhead is negligible, small enough that a read timeout stays meaningful.
        return 64

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        exchange = self._exchange(texts)
        model = self._model_for_errors()
        try:
            call = next(exchange)
            while True:
                try:
                    answer = self.client.post_json(call.path, call.body, model=model)
                except Exception as error:  # handed to the protocol, which may fall back
                    call = exchange.throw(error)
                else:
                    call = exchange.send(answer)
        except StopIteration as done:
            return done.value

    async def _aembed_batch(self, texts: list[str]) -> list[list[float]]:
        exchange = self._exchange(texts)
        model = self._model_for_errors()
        try:
            call = next(exchange)
            while True:
                try:
                    answer = await self.client.apost_json(call.path, call.body, model=model)
                except Exception as error:
                    call = exchange.throw(error)
                else:
                    call = exchange.send(answer)
        except StopIteration as done:
            return done.value
