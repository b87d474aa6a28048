"""The indexer's bookkeeping: which files are indexed, with which content and chunk ids.

It lives in the index's SQLite file: inside the embedded store's own database, or, when
the vectors go to another ``VectorStore`` (a Chroma or Qdrant server), alone in
``persist_directory``. Each change is one transaction, so an interrupted run leaves a
manifest that says exactly what is in the store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_localllm.rag._db import connect, read_meta, transaction

__all__ = ["FileEntry", "Manifest"]


@dataclass(frozen=True)
class FileEntry:
    """What the index holds of one source file."""

    sha256: str
    """Content hash of the file the chunks were made from."""
    ids: list[str]
    """Ids of the file's chunks in the vector store."""
    complete: bool
    """False while the file is being indexed (a run that stopped resumes from here)."""


class Manifest:
    """Files, content hashes and chunk ids of an index, in SQLite."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock | None = None) -> None:
        self._conn = conn
        self._lock = lock or threading.RLock()

    @classmethod
    def open(cls, folder: str | Path | None) -> Manifest:
        """The manifest in ``folder`` (created if needed); None keeps it in memory."""
        return cls(connect(Path(folder).expanduser() if folder is not None else None))

    def get(self, path: str) -> FileEntry | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT sha256, ids, complete FROM files WHERE path=?", (path,)
            ).fetchone()
        return None if row is None else FileEntry(row[0], json.loads(row[1]), bool(row[2]))

    def put(self, path: str, entry: FileEntry) -> None:
        with transaction(self._conn, self._lock) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                (path, entry.sha256, json.dumps(entry.ids), int(entry.complete)),
            )

    def remove(self, path: str) -> None:
        with transaction(self._conn, self._lock) as conn:
            conn.execute("DELETE FROM files WHERE path=?", (path,))

    def paths(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._conn.execute("SELECT path FROM files ORDER BY path")]

    def get_meta(self, name: str, default: Any = None) -> Any:
        """A JSON value stored with the index, e.g. ``"embedding"``."""
        with self._lock:
            return read_meta(self._conn, name, default)

    def set_meta(self, name: str, value: Any) -> None:
        with transaction(self._conn, self._lock) as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, json.dumps(value)))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
