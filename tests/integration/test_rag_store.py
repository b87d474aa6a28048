"""The RAG vector store passes LangChain's standard vector-store suite, also after a save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_localllm.errors import DocumentLoadError
from langchain_localllm.rag import LocalVectorStore


class TestLocalVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> VectorStore:  # type: ignore[override]
        """An empty store that has already been through a save and a load."""
        path = LocalVectorStore(self.get_embeddings()).save(tmp_path / "store.json")
        return LocalVectorStore.load_file(path, self.get_embeddings())


def test_documents_survive_save_and_load(tmp_path: Path) -> None:
    embeddings = VectorStoreIntegrationTests.get_embeddings()
    store = LocalVectorStore(embeddings)
    store.add_documents(
        [Document("Ünïcödé text", metadata={"source": "a.md", "page": 3}), Document("other")], ids=["x", "y"]
    )
    store.manifest["files"]["a.md"] = {"sha256": "0" * 64, "ids": ["x"]}
    loaded = LocalVectorStore.load_file(store.save(tmp_path / "s.json"), embeddings)
    [doc] = loaded.get_by_ids(["x"])
    assert (doc.page_content, doc.metadata) == ("Ünïcödé text", {"source": "a.md", "page": 3})
    assert loaded.manifest == store.manifest
    assert loaded.similarity_search("Ünïcödé text", k=1)[0].id == "x"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not a readable index"),
        ('{"format": "other", "version": 1}', "not an index of this version"),
    ],
)
def test_foreign_or_broken_index_file_is_a_typed_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "index.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DocumentLoadError, match=match):
        LocalVectorStore.load_file(path, VectorStoreIntegrationTests.get_embeddings())


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalVectorStore(VectorStoreIntegrationTests.get_embeddings())
    store.add_texts(["a", "b"])
    store.save(tmp_path / "index.json")
    store.save(tmp_path / "index.json")
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]
