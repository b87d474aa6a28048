"""The vector store of the local RAG: LangChain's ``InMemoryVectorStore``, saved as JSON.

Why this store. The candidates that persist to disk without pickle were weighed on
quality and install weight:

* sqlite-vec (a small SQLite extension) needs ``sqlite3.Connection.enable_load_extension``,
  which many Python builds (pyenv's default, macOS's system Python) leave out;
* LanceDB and Chroma are good, but pull in pyarrow / onnxruntime and friends (hundreds of
  MB) for what is, on a laptop, a few thousand chunks;
* ``langchain_core.vectorstores.InMemoryVectorStore`` is maintained with LangChain itself,
  has similarity search with scores, MMR and metadata filters, passes LangChain's
  standard vector-store tests, and costs no dependency at all. Exact (brute-force)
  cosine search is fast at the scale of a personal document folder (100k chunks of
  384 floats is a 150 MB matrix product).

:class:`LocalVectorStore` adds persistence: one JSON file (vectors as base64 float32,
text, metadata, and the manifest of indexed files) written atomically, so a crash or
an error while indexing never leaves a half-written index.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_localllm.errors import DocumentLoadError

__all__ = ["FORMAT_VERSION", "LocalVectorStore"]

_FORMAT_NAME = "langchain-localllm-vectorstore"
FORMAT_VERSION = 1
"""Version of the on-disk format written by :meth:`LocalVectorStore.save`."""


def _pack(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _unpack(data: str) -> list[float]:
    raw = base64.b64decode(data)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


class LocalVectorStore(InMemoryVectorStore):
    """``InMemoryVectorStore`` that saves to and loads from one JSON file (no pickle).

    ``manifest`` records what the indexer needs to re-embed only changed files: for
    each source file its content hash and the ids of its chunks, and which embedding
    model produced the vectors.
    """

    def __init__(self, embedding: Embeddings) -> None:
        super().__init__(embedding)
        self.manifest: dict[str, Any] = {"embedding": None, "files": {}}

    def save(self, path: str | Path) -> Path:
        """Write the store to ``path`` atomically (a temporary file renamed over it)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": _FORMAT_NAME,
            "version": FORMAT_VERSION,
            "manifest": self.manifest,
            "records": [
                {"id": r["id"], "text": r["text"], "metadata": r["metadata"], "vector": _pack(r["vector"])}
                for r in self.store.values()
            ],
        }
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, ensure_ascii=False)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    @classmethod
    def load_file(cls, path: str | Path, embedding: Embeddings) -> LocalVectorStore:
        """Read a store written by :meth:`save`."""
        source = Path(path)
        try:
            payload = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DocumentLoadError(
                f"{source} is not a readable index ({error}); delete it to re-index from scratch.",
                path=str(source),
            ) from error
        if payload.get("format") != _FORMAT_NAME or payload.get("version") != FORMAT_VERSION:
            raise DocumentLoadError(
                f"{source} is not an index of this version of langchain-localllm "
                f"(format {payload.get('format')!r}, version {payload.get('version')!r}); "
                "delete it to re-index.",
                path=str(source),
            )
        store = cls(embedding)
        store.manifest = payload["manifest"]
        for record in payload["records"]:
            store.store[record["id"]] = {
                "id": record["id"],
                "text": record["text"],
                "metadata": record["metadata"],
                "vector": _unpack(record["vector"]),
            }
        return store
