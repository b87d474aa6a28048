"""Local retrieval-augmented generation: index a folder of documents, retrieve from it.

``index_folder(path, embeddings, persist_directory=None)`` returns a retriever;
``langchain_localllm.chains.rag_chain(llm, retriever)`` answers questions with it.
Nothing leaves the machine: loading, splitting, embedding and search all run locally.
"""

from langchain_localllm.rag.indexer import (
    INDEX_FILE_NAME,
    IndexStats,
    index_folder,
    open_index,
    token_counter,
)
from langchain_localllm.rag.loaders import SUPPORTED_SUFFIXES, load_file
from langchain_localllm.rag.store import LocalVectorStore

__all__ = [
    "INDEX_FILE_NAME",
    "SUPPORTED_SUFFIXES",
    "IndexStats",
    "LocalVectorStore",
    "index_folder",
    "load_file",
    "open_index",
    "token_counter",
]
