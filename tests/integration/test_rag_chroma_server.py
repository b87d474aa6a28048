"""index_folder into a real Chroma server (``chroma run``) with the real all-MiniLM-L6-v2.

The same ``index_folder`` call as for the embedded store, with ``vector_store=`` a
langchain-chroma store talking to the server over HTTP on loopback; the incremental
bookkeeping stays in ``persist_directory``; ``rag_chain`` runs unchanged on it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_localllm import LlamaCpp, LlamaCppEmbeddings
from langchain_localllm.chains import rag_chain
from langchain_localllm.errors import DocumentLoadError, InvalidParameterError
from langchain_localllm.rag import index_folder, open_index
from tests.fixtures.models import tiny_model
from tests.integration.test_rag_minilm import CORPUS, QUESTIONS, write_corpus


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


def chroma_store(client: Any, embeddings: LlamaCppEmbeddings) -> Any:
    from langchain_chroma import Chroma

    return Chroma(
        collection_name=f"docs-{uuid.uuid4().hex[:8]}",
        client=client,
        embedding_function=embeddings,
        collection_metadata={"hnsw:space": "cosine"},
    )


def test_index_folder_into_a_chroma_server_end_to_end(
    corpus: Path, tmp_path: Path, chroma_client: Any, llamacpp_embeddings: LlamaCppEmbeddings
) -> None:
    store = chroma_store(chroma_client, llamacpp_embeddings)
    bookkeeping = tmp_path / "bookkeeping"
    retriever = index_folder(
        corpus, llamacpp_embeddings, bookkeeping, vector_store=store, k=1, show_progress=False
    )
    collection = chroma_client.get_collection(store._collection.name)
    assert collection.count() == len(CORPUS)  # one chunk per file, on the server
    hits = {q: Path(retriever.invoke(q)[0].metadata["source"]).name for q in QUESTIONS}
    assert sum(hits[q] == expected for q, expected in QUESTIONS.items()) / len(QUESTIONS) >= 0.9

    # The same call against the embedded store finds the same files.
    embedded = index_folder(corpus, llamacpp_embeddings, tmp_path / "embedded", k=1, show_progress=False)
    assert {q: Path(embedded.invoke(q)[0].metadata["source"]).name for q in QUESTIONS} == hits

    # Incremental: one changed file re-embedded, one deleted file dropped from the server.
    (corpus / "mars.txt").write_text("Mars has the tallest volcano, Olympus Mons.", encoding="utf-8")
    (corpus / "chess.md").unlink()
    again = index_folder(
        corpus, llamacpp_embeddings, bookkeeping, vector_store=store, k=1, show_progress=False
    )
    stats = again.vectorstore.last_index_stats  # type: ignore[attr-defined]
    assert (stats.chunks_embedded, [Path(p).name for p in stats.updated]) == (1, ["mars.txt"])
    assert [Path(p).name for p in stats.removed] == ["chess.md"]
    assert collection.count() == len(CORPUS) - 1
    sources = {Path(m["source"]).name for m in collection.get(include=["metadatas"])["metadatas"]}
    assert "chess.md" not in sources
    [doc] = again.invoke("What is the highest volcano in the solar system?")
    assert "Olympus Mons" in doc.page_content

    # The bookkeeping folder is not an embedded index, and says where the vectors are.
    with pytest.raises(DocumentLoadError, match="vectors are in a Chroma"):
        open_index(bookkeeping, llamacpp_embeddings)
    with pytest.raises(InvalidParameterError, match="tracks an index kept in a Chroma"):
        index_folder(corpus, llamacpp_embeddings, bookkeeping, show_progress=False)


def test_an_interrupted_run_into_chroma_resumes(
    corpus: Path, tmp_path: Path, chroma_client: Any, llamacpp_embeddings: LlamaCppEmbeddings
) -> None:
    store = chroma_store(chroma_client, llamacpp_embeddings)
    real_add = store.add_documents
    calls: list[int] = []

    def add_then_die(documents: list[Any], **kwargs: Any) -> list[str]:
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(len(documents))
        return real_add(documents, **kwargs)

    store.add_documents = add_then_die
    with pytest.raises(KeyboardInterrupt):
        index_folder(corpus, llamacpp_embeddings, tmp_path / "b", vector_store=store, show_progress=False)
    store.add_documents = real_add
    retriever = index_folder(
        corpus, llamacpp_embeddings, tmp_path / "b", vector_store=store, show_progress=False
    )
    stats = retriever.vectorstore.last_index_stats  # type: ignore[attr-defined]
    assert stats.chunks_embedded == len(CORPUS) - 4
    assert len(stats.unchanged) == 4
    assert chroma_client.get_collection(store._collection.name).count() == len(CORPUS)


def test_rag_chain_runs_unchanged_on_a_chroma_retriever(
    corpus: Path, tmp_path: Path, chroma_client: Any, llamacpp_embeddings: LlamaCppEmbeddings
) -> None:
    store = chroma_store(chroma_client, llamacpp_embeddings)
    retriever = index_folder(
        corpus,
        llamacpp_embeddings,
        tmp_path / "c",
        vector_store=store,
        k=2,
        search_type="mmr",
        show_progress=False,
    )
    prompts: list[str] = []

    class Capture(BaseCallbackHandler):
        def on_llm_start(self, serialized: object, prompts_: list[str], **kwargs: object) -> None:
            prompts.extend(prompts_)

    llm = LlamaCpp(model_path=str(tiny_model("llama2")), max_tokens=8, temperature=0, seed=1)
    result = rag_chain(llm, retriever).invoke("Who invented the Python language?", {"callbacks": [Capture()]})
    assert any(s.endswith("python.html") for s in result["sources"])
    assert len(result["context"]) == 2
    assert "Guido van Rossum" in prompts[0]
