"""Index a file or folder into a persisted vector store and get a retriever over it."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStoreRetriever

from langchain_localllm._core.tokens import token_counter
from langchain_localllm.errors import DocumentLoadError, InvalidParameterError
from langchain_localllm.rag.loaders import SUPPORTED_SUFFIXES, load_file
from langchain_localllm.rag.store import LocalVectorStore

__all__ = ["INDEX_FILE_NAME", "IndexStats", "index_folder", "open_index", "token_counter"]

INDEX_FILE_NAME = "localllm-index.json"
"""Name of the index file inside ``persist_directory``."""


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
    """Files that could not be indexed (``on_error="skip"``), with the reason."""
    chunks_embedded: int = 0
    """Chunks embedded in this run."""


def _embedding_identity(embeddings: Embeddings) -> str:
    cls = type(embeddings)
    model = ""
    for attr in ("model_path", "model"):
        value = getattr(embeddings, attr, None)
        if isinstance(value, str):
            model = Path(value).name if attr == "model_path" else value
            break
    return f"{cls.__module__}.{cls.__qualname__}:{model}"


def _files_in(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUPPORTED_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _splitter(embeddings: Embeddings, chunk_size: int, chunk_overlap: int) -> Any:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, length_function=token_counter(embeddings)
    )


def _progress(total: int, show: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show, unit="file", desc="Indexing", leave=False)


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
    index_file = Path(persist_directory) / INDEX_FILE_NAME
    if not index_file.is_file():
        raise DocumentLoadError(
            f"No index in {persist_directory} (no {INDEX_FILE_NAME}); build one with index_folder().",
            path=str(index_file),
        )
    store = LocalVectorStore.load_file(index_file, embeddings)
    return _retriever(store, search_type, k, fetch_k, lambda_mult)


def _retriever(
    store: LocalVectorStore, search_type: str, k: int, fetch_k: int, lambda_mult: float
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


def index_folder(
    path: str | Path,
    embeddings: Embeddings,
    persist_directory: str | Path | None = None,
    *,
    chunk_size: int = 256,
    chunk_overlap: int = 32,
    search_type: Literal["similarity", "mmr"] = "similarity",
    k: int = 4,
    fetch_k: int = 20,
    lambda_mult: float = 0.5,
    on_error: Literal["raise", "skip"] = "raise",
    show_progress: bool = True,
) -> VectorStoreRetriever:
    """Index a file or a folder (txt, md, pdf, html) and return a retriever over it.

    Files are loaded, split into chunks of at most ``chunk_size`` tokens of the
    embedding model (``chunk_overlap`` shared between neighbours), embedded and kept in
    a :class:`~langchain_localllm.rag.store.LocalVectorStore`. With ``persist_directory``
    the index is saved there and reused: indexing the folder again re-embeds only files
    whose content changed, drops files that are gone, and keeps the rest.

    Args:
        path: A file or a folder (searched recursively; hidden files are left out).
        embeddings: Any LangChain embeddings, e.g. ``LlamaCppEmbeddings``.
        persist_directory: Folder for the index file; None keeps it in memory only.
        chunk_size: Most tokens per chunk.
        chunk_overlap: Tokens shared by neighbouring chunks.
        search_type: "similarity" (top ``k``) or "mmr" (maximal marginal relevance:
            ``k`` diverse results out of the ``fetch_k`` nearest).
        k: Chunks the retriever returns.
        fetch_k: Candidates MMR chooses from.
        lambda_mult: MMR's balance between relevance (1) and diversity (0).
        on_error: "raise" (default): stop at the first bad file, keeping (and saving)
            everything indexed so far; "skip": warn, leave the file out and go on.
        show_progress: Show a progress bar on stderr.

    Returns:
        A ``VectorStoreRetriever``; ``retriever.vectorstore.last_index_stats`` is the
        :class:`IndexStats` of this run.

    Raises:
        DocumentLoadError: ``path`` does not exist or holds no supported file, or a
            file is unreadable, binary, not UTF-8, a broken PDF or empty.
    """
    if chunk_size < 1 or not 0 <= chunk_overlap < chunk_size:
        raise InvalidParameterError(
            f"Need chunk_size >= 1 and 0 <= chunk_overlap < chunk_size, got {chunk_size} and "
            f"{chunk_overlap}.",
            parameter="chunk_size",
        )
    if on_error not in ("raise", "skip"):
        msg = f"on_error must be 'raise' or 'skip', got {on_error!r}."
        raise InvalidParameterError(msg, parameter="on_error")
    root = Path(path).expanduser()
    if not root.exists():
        raise DocumentLoadError(f"{root} does not exist; give a file or a folder to index.", path=str(root))
    files = _files_in(root)
    if not files:
        raise DocumentLoadError(
            f"{root} holds no file to index (supported: {', '.join(SUPPORTED_SUFFIXES)}).", path=str(root)
        )

    index_file = Path(persist_directory).expanduser() / INDEX_FILE_NAME if persist_directory else None
    if index_file is not None and index_file.is_file():
        store = LocalVectorStore.load_file(index_file, embeddings)
    else:
        store = LocalVectorStore(embeddings)
    identity = _embedding_identity(embeddings)
    if store.manifest.get("embedding") not in (None, identity):
        # Vectors of another model are not comparable: start over.
        store.store.clear()
        store.manifest["files"] = {}
    store.manifest["embedding"] = identity
    manifest: dict[str, Any] = store.manifest["files"]

    splitter = _splitter(embeddings, chunk_size, chunk_overlap)
    stats = IndexStats()
    seen: set[str] = set()
    progress = _progress(len(files), show_progress)
    try:
        for file in files:
            key = str(file.resolve())
            seen.add(key)
            progress.set_postfix_str(file.name, refresh=False)
            try:
                _index_file(file, key, store, manifest, splitter, embeddings, stats)
            except DocumentLoadError as error:
                if on_error == "raise":
                    raise
                stats.skipped[key] = error.message
                warnings.warn(f"Skipped: {error.message}", stacklevel=2)
            progress.update(1)
        if root.is_dir():
            prefix = os.path.join(str(root.resolve()), "")  # "/docs/" must not match "/docs2/x"
            for key in [k for k in manifest if k.startswith(prefix) and k not in seen]:
                store.delete(manifest.pop(key)["ids"])
                stats.removed.append(key)
    finally:
        progress.close()
        store.last_index_stats = stats  # type: ignore[attr-defined]
        if index_file is not None:
            store.save(index_file)  # whatever was indexed before an error is kept
    return _retriever(store, search_type, k, fetch_k, lambda_mult)


def _index_file(
    file: Path,
    key: str,
    store: LocalVectorStore,
    manifest: dict[str, Any],
    splitter: Any,
    embeddings: Embeddings,
    stats: IndexStats,
) -> None:
    try:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as error:
        raise DocumentLoadError(
            f"{file} could not be read ({error.strerror or error}). Check its permissions.", path=str(file)
        ) from error
    entry = manifest.get(key)
    if entry is not None and entry["sha256"] == digest:
        stats.unchanged.append(key)
        return
    documents = load_file(file)
    chunks: list[Document] = [c for c in splitter.split_documents(documents) if c.page_content.strip()]
    vectors = embeddings.embed_documents([c.page_content for c in chunks])
    # Only now, with the new vectors in hand, replace the file's old chunks.
    if entry is not None:
        store.delete(entry["ids"])
    file_id = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    ids = [f"{file_id}-{digest[:12]}-{i}" for i in range(len(chunks))]
    for chunk_id, chunk, vector in zip(ids, chunks, vectors, strict=True):
        metadata = {**chunk.metadata, "chunk": int(chunk_id.rsplit("-", 1)[1])}
        store.store[chunk_id] = {
            "id": chunk_id,
            "vector": [float(x) for x in vector],
            "text": chunk.page_content,
            "metadata": metadata,
        }
    manifest[key] = {"sha256": digest, "ids": ids}
    (stats.updated if entry is not None else stats.added).append(key)
    stats.chunks_embedded += len(chunks)
