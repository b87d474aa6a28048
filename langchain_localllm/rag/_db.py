"""The SQLite file of an index: its schema, connection and write transactions.

Shared by :class:`~langchain_localllm.rag.store.LocalVectorStore` (chunks, manifest and
metadata in one file) and :class:`~langchain_localllm.rag.manifest.Manifest` (the
bookkeeping alone, next to an external vector store).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_localllm.errors import DocumentLoadError

__all__ = ["FORMAT_VERSION", "STORE_FILE_NAME", "connect", "read_meta", "transaction"]

STORE_FILE_NAME = "localllm-index.sqlite3"
"""Name of the SQLite file inside an index folder."""
FORMAT_VERSION = 2
"""Version of the on-disk format (1 was the JSON file of ``InMemoryVectorStore``)."""
_FORMAT = json.dumps(["langchain-localllm-vectorstore", FORMAT_VERSION])

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    key INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the HNSW graph refers to it
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    ids TEXT NOT NULL,
    complete INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def connect(folder: Path | None) -> sqlite3.Connection:
    """Open (creating if needed) the index database in ``folder``; None: in memory.

    WAL mode: readers never block the writer and see whole transactions only; a process
    killed mid-transaction leaves the last committed state.
    """
    if folder is None:
        target = ":memory:"
    else:
        folder.mkdir(parents=True, exist_ok=True)
        target = str(folder / STORE_FILE_NAME)
    try:
        conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:  # a new index (an existing one opens without writing)
            conn.executescript(
                f"BEGIN IMMEDIATE;{_SCHEMA}INSERT OR IGNORE INTO meta VALUES ('format', '{_FORMAT}');COMMIT;"
            )
        found = read_meta(conn, "format")
    except sqlite3.DatabaseError as error:
        raise DocumentLoadError(
            f"{target} is not a readable index ({error}); delete it to re-index from scratch.", path=target
        ) from error
    if json.dumps(found) != _FORMAT:
        conn.close()
        raise DocumentLoadError(
            f"{target} is an index of another version of langchain-localllm ({found}); "
            "delete the folder to re-index.",
            path=target,
        )
    return conn


def read_meta(conn: sqlite3.Connection, name: str, default: Any = None) -> Any:
    """The JSON value stored under ``name`` in the meta table."""
    row = conn.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
    return default if row is None else json.loads(row[0])


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``) so writers queue."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
