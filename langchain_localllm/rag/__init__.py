"""Local retrieval-augmented generation: index a folder of documents, retrieve from it.

``index_folder(path, embeddings, persist_directory=None)`` returns a retriever;
``langchain_localllm.chains.rag_chain(llm, retriever)`` answers questions with it.
Nothing leaves the machine: loading, splitting, embedding and search all run locally.
Chunks go to the embedded :class:`LocalVectorStore` (SQLite + a usearch HNSW graph) or,
with ``index_folder(..., vector_store=...)``, to any LangChain vector store (a Chroma,
Qdrant or pgvector server). Names load lazily (numpy and usearch only when used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_localllm._core.lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_localllm.rag.indexer import (
        INDEX_FILE_NAME,
        IndexStats,
        IndexSummary,
        embedding_identity,
        index_folder,
        open_index,
        open_store,
        summarize_index,
        token_counter,
    )
    from langchain_localllm.rag.loaders import SUPPORTED_SUFFIXES, load_file
    from langchain_localllm.rag.manifest import FileEntry, Manifest
    from langchain_localllm.rag.store import LocalVectorStore

#: Public name -> module that defines it, imported on first access.
_LAZY = {
    "INDEX_FILE_NAME": "langchain_localllm.rag.indexer",
    "IndexStats": "langchain_localllm.rag.indexer",
    "IndexSummary": "langchain_localllm.rag.indexer",
    "summarize_index": "langchain_localllm.rag.indexer",
    "embedding_identity": "langchain_localllm.rag.indexer",
    "index_folder": "langchain_localllm.rag.indexer",
    "open_index": "langchain_localllm.rag.indexer",
    "open_store": "langchain_localllm.rag.indexer",
    "FileEntry": "langchain_localllm.rag.manifest",
    "Manifest": "langchain_localllm.rag.manifest",
    "token_counter": "langchain_localllm.rag.indexer",
    "SUPPORTED_SUFFIXES": "langchain_localllm.rag.loaders",
    "load_file": "langchain_localllm.rag.loaders",
    "LocalVectorStore": "langchain_localllm.rag.store",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "INDEX_FILE_NAME",
    "SUPPORTED_SUFFIXES",
    "FileEntry",
    "IndexStats",
    "IndexSummary",
    "LocalVectorStore",
    "Manifest",
    "embedding_identity",
    "index_folder",
    "load_file",
    "open_index",
    "open_store",
    "summarize_index",
    "token_counter",
]
