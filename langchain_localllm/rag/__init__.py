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
    # The public names, listed once: lazy_exports reads them (an `X as X` re-exports X).
    from langchain_localllm.rag.indexer import (
        INDEX_FILE_NAME as INDEX_FILE_NAME,
        IndexStats as IndexStats,
        IndexSummary as IndexSummary,
        embedding_identity as embedding_identity,
        index_folder as index_folder,
        open_index as open_index,
        open_store as open_store,
        summarize_index as summarize_index,
        token_counter as token_counter,
    )
    from langchain_localllm.rag.loaders import (
        SUPPORTED_SUFFIXES as SUPPORTED_SUFFIXES,
        load_file as load_file,
    )
    from langchain_localllm.rag.manifest import (
        FileEntry as FileEntry,
        Manifest as Manifest,
    )
    from langchain_localllm.rag.store import (
        LocalVectorStore as LocalVectorStore,
    )

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals())
