"""Index a file or folder into a vector store, incrementally, and get a retriever over it.

The embedded :class:`~langchain_localllm.rag.store.LocalVectorStore` is the default; any
LangChain ``VectorStore`` (a Chroma, Qdrant or pgvector server) can take its place, with
the same bookkeeping kept in ``persist_directory``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever

from langchain_localllm._core.base.tokens import token_counter
from langchain_localllm.errors import DocumentLoadError, EmbeddingMismatchError, InvalidParameterError
from langchain_localllm.rag._db import STORE_FILE_NAME
from langchain_localllm.rag.files import (
    DEFAULT_MAX_FILE_BYTES,
    Candidate,
    display_name,
    file_digest,
    read_regular,
    scan_folder,
)
from langchain_localllm.rag.loaders import SUPPORTED_SUFFIXES, load_file
from langchain_localllm.rag.manifest import FileEntry, Manifest
from langchain_localllm.rag.store import LocalVectorStore

__all__ = [
    "INDEX_FILE_NAME",
    "IndexStats",
    "IndexSummary",
    "embedding_identity",
    "index_folder",
    "open_index",
    "open_store",
    "summarize_index",
    "token_counter",
]

INDEX_FILE_NAME = STORE_FILE_NAME
"""Name of the index database inside ``persist_directory``."""


@dataclass
class IndexStats:
    """What one :func:`index_folder` run did."""

    added: list[str] = field(default_factory=list)
    """Files indexed for the first time."""
    updated: list[str] = field(default_factory=list)
    """Files whose content changed and were re-embedded."""
    unchanged: list[str] = field(default_factory=list)
    """Files already indexed with the same content (not re-embedded)."""
    removed: list[str] = field(default_factory=list)
    """Files gone from the folder whose chunks were dropped."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Entries left out, with the reason: files that could not be indexed (``on_error="skip"``),
    and always links out of the folder, dangling links, link loops, named pipes, sockets,
    devices and files above ``max_file_bytes``."""
    chunks_embedded: int = 0
    """Chunks embedded in this run (a resumed run counts only the ones it had to embed)."""


@lru_cache(maxsize=32)
def _file_sha256(path: str, _size: int, _mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def embedding_identity(embeddings: Embeddings) -> dict[str, str]:
    """Which model makes these vectors, by content: ``{"class", "model", "name"}``.

    ``model`` is the SHA-256 of a local model file (``model_path``; hashed once per size
    and modification time), else a model digest the embeddings report (``model_digest``),
    else the model name a server serves. ``name`` is for people (the file or model name)
    and is not compared: a renamed or moved file is the same model, a different file
    with the same name is not.
    """
    cls = type(embeddings)
    identity = {"class": f"{cls.__module__}.{cls.__qualname__}", "model": "", "name": ""}
    model_path = getattr(embeddings, "model_path", None)
    digest = getattr(embeddings, "model_digest", None)
    model = getattr(embeddings, "model", None)
    if isinstance(model_path, str) and os.path.isfile(model_path):
        stat = os.stat(model_path)
        sha = _file_sha256(os.path.realpath(model_path), stat.st_size, stat.st_mtime_ns)
        identity.update(model=f"sha256:{sha}", name=Path(model_path).name)
    elif isinstance(digest, str) and digest:
        identity.update(model=digest, name=model if isinstance(model, str) else digest)
    elif isinstance(model, str):
        identity.update(model=f"name:{model}", name=model)
    return identity


def _describe(identity: dict[str, str]) -> str:
    name, model = identity["name"] or "no model name", identity["model"] or "no identity"
    return f"{identity['class']} ({name}, {model})"


def _check_embedding(manifest: Manifest, embeddings: Embeddings, where: str) -> None:
    """Record the model on first use; refuse another model afterwards."""
    identity = embedding_identity(embeddings)
    recorded = manifest.get_meta("embedding")
    if recorded is None:
        manifest.set_meta("embedding", identity)
        return
    if (recorded["class"], recorded["model"]) != (identity["class"], identity["model"]):
        raise EmbeddingMismatchError(
            f"The index in {where} was built with {_describe(recorded)}, not {_describe(identity)}: "
            "vectors of different models cannot be compared. Use the same embedding model, or index into "
            "a new persist_directory (or delete this one to re-index).",
            expected=recorded,
            got=identity,
        )


def _splitter(embeddings: Embeddings, chunk_size: int, chunk_overlap: int) -> Any:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, length_function=token_counter(embeddings)
    )


class _Progress:
    """A chunks/s progress bar whose total is estimated from the bytes seen so far."""

    def __init__(self, files: list[Candidate], show: bool) -> None:
        from tqdm.auto import tqdm

        self.total_bytes = sum(f.size for f in files) or 1
        self.bytes_done = 0
        self.chunks_seen = 0
        self.bar = tqdm(total=None, disable=not show, unit="chunk", desc="Indexing", leave=False)

    def file_split(self, file: Candidate, chunks: int) -> None:
        """``file`` became ``chunks`` chunks: re-estimate the corpus's total for the ETA."""
        self.bytes_done += file.size
        self.chunks_seen += chunks
        self.bar.set_postfix_str(display_name(os.path.basename(file.name)), refresh=False)
        self.bar.total = max(self.chunks_seen, round(self.chunks_seen * self.total_bytes / self.bytes_done))
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _check_folder(persist_directory: str | Path) -> Path:
    folder = Path(persist_directory).expanduser()
    if not (folder / INDEX_FILE_NAME).is_file():
        raise DocumentLoadError(
            f"No index in {folder} (no {INDEX_FILE_NAME}); build one with index_folder().",
            path=str(folder / INDEX_FILE_NAME),
        )
    return folder


@dataclass(frozen=True)
class IndexSummary:
    """What an index folder holds (``localllm rag stats``)."""

    chunks: int
    """Chunks in the store."""
    files: int
    """Source files indexed."""
    disk_bytes: int
    """Bytes the folder takes on disk."""
    embedding: dict[str, str] | None
    """The embedding model (:func:`embedding_identity`), None if nothing was indexed yet."""
    vector_store: str | None
    """Class of the external vector store holding the chunks, None for the embedded one."""


class _NoEmbeddings(Embeddings):
    """Stands in for the model when only counting: an index is summarised without loading one."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise InvalidParameterError("This store was opened without embeddings.", parameter="embedding")

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def summarize_index(persist_directory: str | Path) -> IndexSummary:
    """Chunks, files, size on disk and embedding model of an index, without loading the model."""
    store = LocalVectorStore(_NoEmbeddings(), _check_folder(persist_directory))
    try:
        manifest = store.manifest
        return IndexSummary(
            chunks=len(store),
            files=len(manifest.paths()),
            disk_bytes=store.disk_usage(),
            embedding=manifest.get_meta("embedding"),
            vector_store=manifest.get_meta("vector_store"),
        )
    finally:
        store.close()


def open_store(persist_directory: str | Path, embeddings: Embeddings) -> LocalVectorStore:
    """The :class:`LocalVectorStore` that :func:`index_folder` persisted in ``persist_directory``.

    Raises:
        DocumentLoadError: there is no index there, or it keeps its vectors elsewhere.
        EmbeddingMismatchError: the index was built with another embedding model.
    """
    folder = _check_folder(persist_directory)
    store = LocalVectorStore(embeddings, folder)
    external = store.manifest.get_meta("vector_store")
    if external is not None:
        store.close()
        raise DocumentLoadError(
            f"{folder} holds only the bookkeeping of an index whose vectors are in a {external}; "
            "open that vector store and use its as_retriever().",
            path=str(folder),
        )
    _check_embedding(store.manifest, embeddings, str(folder))
    return store


def open_index(
    persist_directory: str | Path,
    embeddings: Embeddings,
    *,
    search_type: Literal["similarity", "mmr"] = "similarity",
    k: int = 4,
    fetch_k: int = 20,
    lambda_mult: float = 0.5,
) -> VectorStoreRetriever:
    """A retriever over an index that :func:`index_folder` persisted, without re-indexing."""
    return _retriever(open_store(persist_directory, embeddings), search_type, k, fetch_k, lambda_mult)


def _retriever(
    store: VectorStore, search_type: str, k: int, fetch_k: int, lambda_mult: float
) -> VectorStoreRetriever:
    if search_type not in ("similarity", "mmr"):
        raise InvalidParameterError(
            f"search_type must be 'similarity' or 'mmr', got {search_type!r}.", parameter="search_type"
        )
    if k < 1:
        raise InvalidParameterError(f"k must be at least 1, got {k}.", parameter="k")
    search_kwargs: dict[str, Any] = {"k": k}
    if search_type == "mmr":
        search_kwargs.update(fetch_k=max(fetch_k, k), lambda_mult=lambda_mult)
    return store.as_retriever(search_type=search_type, search_kwargs=search_kwargs)


def _target(
    embeddings: Embeddings, persist_directory: str | Path | None, vector_store: VectorStore | None
) -> tuple[VectorStore, Manifest]:
    """The store to write to and the manifest that tracks it."""
    if vector_store is None:
        store = LocalVectorStore(embeddings, persist_directory)
        if store.manifest.get_meta("vector_store") is not None:
            raise InvalidParameterError(
                f"{persist_directory} tracks an index kept in a {store.manifest.get_meta('vector_store')}; "
                "pass that store as vector_store=, or use another persist_directory.",
                parameter="persist_directory",
            )
        return store, store.manifest
    if isinstance(vector_store, LocalVectorStore):
        return vector_store, vector_store.manifest
    if vector_store.embeddings is not None and vector_store.embeddings is not embeddings:
        raise InvalidParameterError(
            "vector_store embeds with other embeddings than the ones given to index_folder; create it "
            "with the same embeddings object (e.g. Chroma(embedding_function=embeddings)).",
            parameter="vector_store",
        )
    manifest = Manifest.open(persist_directory)
    kind = type(vector_store).__name__
    recorded = manifest.get_meta("vector_store")
    if recorded is None:
        manifest.set_meta("vector_store", kind)
    elif recorded != kind:
        raise InvalidParameterError(
            f"{persist_directory} tracks an index kept in a {recorded}, not a {kind}; use another "
            "persist_directory for this store.",
            parameter="vector_store",
        )
    return vector_store, manifest


def index_folder(
    path: str | Path,
    embeddings: Embeddings,
    persist_directory: str | Path | None = None,
    *,
    vector_store: VectorStore | None = None,
    chunk_size: int = 256,
    chunk_overlap: int = 32,
    batch_size: int = 64,
    search_type: Literal["similarity", "mmr"] = "similarity",
    k: int = 4,
    fetch_k: int = 20,
    lambda_mult: float = 0.5,
    on_error: Literal["raise", "skip"] = "raise",
    show_progress: bool = True,
    follow_symlinks: bool = False,
    max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES,
) -> VectorStoreRetriever:
    """Index a file or a folder (txt, md, pdf, html) and return a retriever over it.

    Files are loaded one at a time, split into chunks of at most ``chunk_size`` tokens
    of the embedding model (``chunk_overlap`` shared between neighbours), embedded
    ``batch_size`` chunks at a time and written to the vector store batch by batch:
    memory is bounded by one file and one batch, not by the corpus. Indexing again
    re-embeds only files whose content changed, drops files that are gone, and keeps
    the rest. An interrupted run (an error, Ctrl-C, a killed process) resumes where it
    stopped: chunks already in the store are not embedded again.

    The folder cannot be escaped: a symbolic link that leaves it is not followed (unless
    ``follow_symlinks``), nothing in ``/proc``, ``/sys`` or ``/dev`` is read, named pipes,
    sockets and devices are never opened, and a file above ``max_file_bytes`` is not read;
    each of these, and dangling links and link loops, is listed in the run's ``skipped``
    with the reason (and warned about). Paths are recorded and shown escaped (a newline in a
    name as ``\\n``, a byte that is not UTF-8 as ``\\xff``).

    Args:
        path: A file or a folder (searched recursively; hidden files are left out).
        embeddings: Any LangChain embeddings, e.g. ``LlamaCppEmbeddings``.
        persist_directory: Folder of the index (the embedded store, or only the
            bookkeeping when ``vector_store`` is given); None keeps it in memory only.
        vector_store: Any LangChain ``VectorStore`` to hold the chunks instead of the
            embedded :class:`~langchain_localllm.rag.store.LocalVectorStore`, e.g.
            ``Chroma(..., embedding_function=embeddings)`` talking to a server. It must
            embed with ``embeddings``. Its chunks get stable ids, so re-runs update it.
        chunk_size: Most tokens per chunk.
        chunk_overlap: Tokens shared by neighbouring chunks.
        batch_size: Chunks embedded and written per step.
        search_type: "similarity" (top ``k``) or "mmr" (maximal marginal relevance:
            ``k`` diverse results out of the ``fetch_k`` nearest).
        k: Chunks the retriever returns.
        fetch_k: Candidates MMR chooses from.
        lambda_mult: MMR's balance between relevance (1) and diversity (0).
        on_error: "raise" (default): stop at the first bad file, keeping everything
            indexed so far; "skip": warn, leave the file out and go on.
        show_progress: Show a progress bar (chunks/s and ETA) on stderr.
        follow_symlinks: Also index what symbolic links out of the folder point to (links
            inside it are always followed; loops are detected).
        max_file_bytes: Files larger than this are left out before being read (None: no
            limit; the default is 64 MiB). Memory is bounded by one file of this size.

    Returns:
        A ``VectorStoreRetriever``; ``retriever.vectorstore.last_index_stats`` is the
        :class:`IndexStats` of this run.

    Raises:
        DocumentLoadError: ``path`` does not exist or holds no supported file, or a
            file is unreadable, binary, not UTF-8, a broken PDF or empty.
        EmbeddingMismatchError: the index was built with another embedding model.
    """
    if chunk_size < 1 or not 0 <= chunk_overlap < chunk_size:
        raise InvalidParameterError(
            f"Need chunk_size >= 1 and 0 <= chunk_overlap < chunk_size, got {chunk_size} and "
            f"{chunk_overlap}.",
            parameter="chunk_size",
        )
    if batch_size < 1:
        raise InvalidParameterError(
            f"batch_size must be at least 1, got {batch_size}.", parameter="batch_size"
        )
    if on_error not in ("raise", "skip"):
        msg = f"on_error must be 'raise' or 'skip', got {on_error!r}."
        raise InvalidParameterError(msg, parameter="on_error")
    if max_file_bytes is not None and max_file_bytes < 1:
        msg = f"max_file_bytes must be at least 1 (or None for no limit), got {max_file_bytes}."
        raise InvalidParameterError(msg, parameter="max_file_bytes")
    root = Path(path).expanduser()
    if not root.exists():
        name = display_name(root)
        raise DocumentLoadError(f"{name} does not exist; give a file or a folder to index.", path=name)
    scan = scan_folder(
        root, SUPPORTED_SUFFIXES, follow_symlinks=follow_symlinks, max_file_bytes=max_file_bytes
    )
    files = scan.files
    if not files:
        left_out = "".join(f" {reason}." for reason in list(scan.skipped.values())[:5])
        supported = ", ".join(SUPPORTED_SUFFIXES)
        raise DocumentLoadError(
            f"{display_name(root)} holds no file to index (supported: {supported}).{left_out}",
            path=display_name(root),
        )
    store, manifest = _target(embeddings, persist_directory, vector_store)
    _check_embedding(manifest, embeddings, str(persist_directory or "memory"))

    splitter = _splitter(embeddings, chunk_size, chunk_overlap)
    stats = IndexStats(skipped=dict(scan.skipped))
    for reason in scan.skipped.values():
        warnings.warn(f"Skipped: {reason}", stacklevel=2)
    seen: set[str] = set()
    progress = _Progress(files, show_progress)
    reading = _Reading(store, manifest, splitter, batch_size, stats, progress, max_file_bytes)
    try:
        for file in files:
            seen.add(file.key)
            try:
                reading.index(file)
            except DocumentLoadError as error:
                if on_error == "raise":
                    raise
                stats.skipped[file.key] = error.message
                warnings.warn(f"Skipped: {error.message}", stacklevel=2)
        if root.is_dir():
            prefix = os.path.join(
                display_name(os.path.realpath(root)), ""
            )  # "/docs/" must not match "/docs2/x"
            for gone in [p for p in manifest.paths() if p.startswith(prefix) and p not in seen]:
                entry = manifest.get(gone)
                if entry is not None and entry.ids:
                    store.delete(entry.ids)
                manifest.remove(gone)
                stats.removed.append(gone)
    finally:
        progress.close()
        store.last_index_stats = stats  # type: ignore[attr-defined]
    return _retriever(store, search_type, k, fetch_k, lambda_mult)


@dataclass
class _Reading:
    """Indexes one file after another into ``store``, keeping ``manifest`` and ``stats``."""

    store: VectorStore
    manifest: Manifest
    splitter: Any
    batch_size: int
    stats: IndexStats
    progress: _Progress
    max_file_bytes: int | None

    def index(self, file: Candidate) -> None:
        key, store, manifest, stats, progress = file.key, self.store, self.manifest, self.stats, self.progress
        digest = file_digest(file.path, self.max_file_bytes, follow=False)  # a stream: memory stays small
        entry = manifest.get(key)
        if entry is not None and entry.complete and entry.sha256 == digest:
            stats.unchanged.append(key)
            progress.file_split(file, len(entry.ids))
            progress.bar.update(len(entry.ids))
            return
        data = read_regular(file.path, self.max_file_bytes, follow=False)
        documents = load_file(file.name, data=data)
        chunks: list[Document] = [
            c for c in self.splitter.split_documents(documents) if c.page_content.strip()
        ]
        progress.file_split(file, len(chunks))
        file_id = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        ids = [f"{file_id}-{digest[:12]}-{i}" for i in range(len(chunks))]
        # Mark the file as in progress, keeping the old chunks' ids so they are deleted
        # once the new ones are all in, also by a run that resumes after a crash.
        stale = [i for i in (entry.ids if entry else []) if i not in set(ids)]
        manifest.put(key, FileEntry(digest, stale + ids, complete=False))
        present = {
            doc.id for start in range(0, len(ids), 500) for doc in store.get_by_ids(ids[start : start + 500])
        }
        todo = [(i, n, c) for n, (i, c) in enumerate(zip(ids, chunks, strict=True)) if i not in present]
        progress.bar.update(len(chunks) - len(todo))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            store.add_documents(
                [
                    Document(page_content=c.page_content, metadata={**c.metadata, "chunk": n})
                    for _, n, c in batch
                ],
                ids=[i for i, _, _ in batch],
            )
            stats.chunks_embedded += len(batch)
            progress.bar.update(len(batch))
        if stale:
            store.delete(stale)
        manifest.put(key, FileEntry(digest, ids, complete=True))
        (stats.updated if entry is not None else stats.added).append(key)
