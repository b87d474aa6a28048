"""What every embeddings class here shares: input checks, batching, sync and async.

A subclass implements ``_embed_batch(texts)`` (and, for HTTP runtimes, the real
async ``_aembed_batch``) and ``_default_batch_size()``; this base splits the input
into batches, checks the result, optionally L2-normalises it and gives
``embed_documents`` / ``embed_query`` and their async twins.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import ContextThreadPoolExecutor
from pydantic import ConfigDict, ValidationError, field_validator

from langchain_localllm._core.base.derived import DerivedState
from langchain_localllm._core.base.params import raise_from_validation_error
from langchain_localllm._core.base.peers import PeerArguments
from langchain_localllm.errors import InvalidParameterError, MalformedResponseError

__all__ = ["LocalEmbeddings", "l2_normalize"]


def l2_normalize(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to unit length (unchanged if it is all zeros)."""
    norm = math.hypot(*vector)
    if norm == 0.0:
        return [float(x) for x in vector]
    return [float(x) / norm for x in vector]


class LocalEmbeddings(PeerArguments, DerivedState, Embeddings):
    """Base class of the embeddings of ``langchain_localllm``: batching and checks."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), arbitrary_types_allowed=True)

    batch_size: int | None = None
    """Texts per call into the runtime (one HTTP request, or one native call). None: the
    size measured fastest for this runtime."""

    normalize: bool = True
    """Scale every vector to unit length (cosine similarity = dot product). Sentence
    embedding models such as all-MiniLM-L6-v2 are meant to be used normalised."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:  # one typed error for every bad value or name
            raise_from_validation_error(error, type(self).__name__, type(self).model_fields)

    @field_validator("batch_size")
    @classmethod
    def _check_batch_size(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise InvalidParameterError(
                f"batch_size must be a positive number of texts, got {value}; "
                "use None for the runtime's fastest size.",
                parameter="batch_size",
                value=value,
            )
        return value

    # --- what a runtime implements ---------------------------------------------------

    def _default_batch_size(self) -> int:
        """Texts per call when ``batch_size`` is None."""
        return 16

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        """Embed a non-empty batch of texts, in order."""
        raise NotImplementedError

    async def _aembed_batch(self, texts: list[str]) -> list[list[float]]:
        """Async twin of ``_embed_batch``; in-process runtimes run it in a worker thread."""
        return await asyncio.to_thread(self._embed_batch, texts)

    # --- shared ----------------------------------------------------------------------

    def _concurrency(self) -> int:
        """Batches embedded at once (a fleet of servers takes several)."""
        return 1

    def _batches(self, texts: list[str]) -> list[list[str]]:
        size = self.batch_size or self._default_batch_size()
        lanes = self._concurrency()
        if lanes > 1:  # at least one batch per lane, so that every server gets work
            size = max(1, min(size, -(-len(texts) // lanes)))
        return [texts[start : start + size] for start in range(0, len(texts), size)]

    def _finish(self, batch: list[str], vectors: Any) -> list[list[float]]:
        """Check a runtime's answer for ``batch`` and convert it to plain float lists."""
        if not isinstance(vectors, list) or len(vectors) != len(batch):
            got = len(vectors) if isinstance(vectors, list) else type(vectors).__name__
            raise MalformedResponseError(
                f"{type(self).__name__}: expected {len(batch)} embeddings, got {got}.",
                expected=len(batch),
            )
        out: list[list[float]] = []
        for vector in vectors:
            if not vector or not all(isinstance(x, (int, float)) for x in vector[:1]):
                raise MalformedResponseError(
                    f"{type(self).__name__}: the runtime returned an empty or non-numeric embedding. "
                    "Is the model an embedding model (with a pooling type)?",
                )
            out.append(l2_normalize(vector) if self.normalize else [float(x) for x in vector])
        if len({len(v) for v in out}) > 1:
            raise MalformedResponseError(
                f"{type(self).__name__}: embeddings of different lengths in one batch "
                f"({sorted({len(v) for v in out})}); the model returned per-token vectors? "
                "Use a model with a pooling type (mean/cls).",
            )
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed a list of texts, one vector each, in order."""
        checked = _check_texts(texts, type(self).__name__)
        batches = self._batches(checked)
        lanes = min(self._concurrency(), len(batches))

        def embed(batch: list[str]) -> list[list[float]]:
            return self._finish(batch, self._embed_batch(batch))

        if lanes > 1:
            with ContextThreadPoolExecutor(max_workers=lanes) as pool:
                answers = list(pool.map(embed, batches))
        else:
            answers = [embed(batch) for batch in batches]
        return [vector for answer in answers for vector in answer]

    def embed_query(self, text: str) -> list[float]:
        """Embed one text."""
        return self.embed_documents([_check_text(text, type(self).__name__)])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed a list of texts without blocking the event loop."""
        checked = _check_texts(texts, type(self).__name__)
        batches = self._batches(checked)
        lanes = asyncio.Semaphore(self._concurrency())

        async def embed(batch: list[str]) -> list[list[float]]:
            async with lanes:
                return self._finish(batch, await self._aembed_batch(batch))

        if self._concurrency() > 1:
            answers = await asyncio.gather(*(embed(batch) for batch in batches))
        else:
            answers = [await embed(batch) for batch in batches]
        return [vector for answer in answers for vector in answer]

    async def aembed_query(self, text: str) -> list[float]:
        """Embed one text without blocking the event loop."""
        return (await self.aembed_documents([_check_text(text, type(self).__name__)]))[0]


def _check_text(text: Any, owner: str) -> str:
    if not isinstance(text, str):
        raise InvalidParameterError(
            f"{owner}: expected a string to embed, got {type(text).__name__}.",
            parameter="text",
        )
    return text


def _check_texts(texts: Any, owner: str) -> list[str]:
    if isinstance(texts, str):
        raise InvalidParameterError(
            f"{owner}.embed_documents expects a list of strings, got one string; "
            "use embed_query(text) or embed_documents([text]).",
            parameter="texts",
        )
    try:
        items = list(texts)
    except TypeError:
        raise InvalidParameterError(
            f"{owner}.embed_documents expects a list of strings, got {type(texts).__name__}.",
            parameter="texts",
        ) from None
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidParameterError(
                f"{owner}.embed_documents: item {index} is {type(item).__name__}, not a string.",
                parameter="texts",
                index=index,
            )
    return items
