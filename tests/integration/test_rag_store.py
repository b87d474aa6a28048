"""The RAG vector store: standard suite, exact vs HNSW, filters, MMR, crashes, concurrency."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_localllm.errors import DocumentLoadError, InvalidParameterError
from langchain_localllm.rag import INDEX_FILE_NAME, LocalVectorStore, index_folder
from tests.fixtures.vectors import embedding_like, recall_at

REPO = Path(__file__).resolve().parents[2]


class TestLocalVectorStoreOnDisk(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> VectorStore:  # type: ignore[override]
        """An empty store in a folder, opened a second time (as a later process would)."""
        LocalVectorStore(self.get_embeddings(), tmp_path).close()
        return LocalVectorStore(self.get_embeddings(), tmp_path)


class TestLocalVectorStoreThroughTheGraph(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> VectorStore:  # type: ignore[override]
        """Every add goes past exact_search_limit: searches are answered by the HNSW graph."""
        return LocalVectorStore(self.get_embeddings(), tmp_path, exact_search_limit=1)


class TestLocalVectorStoreInMemory(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> VectorStore:  # type: ignore[override]
        return LocalVectorStore(self.get_embeddings(), exact_search_limit=2)


def add_matrix(store: LocalVectorStore, vectors: np.ndarray, start: int = 0, **meta: object) -> list[str]:
    ids = [f"v{start + i}" for i in range(len(vectors))]
    metadatas = [{"n": start + i, "even": (start + i) % 2 == 0, **meta} for i in range(len(vectors))]
    return store.add_vectors([f"text {i}" for i in ids], vectors, metadatas, ids=ids)


def exact_top(corpus: np.ndarray, queries: np.ndarray, k: int, ids: list[str]) -> list[list[str]]:
    unit = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    scores = queries @ unit.T
    return [[ids[j] for j in np.argsort(-row)[:k]] for row in scores]


# --- exact vs approximate ---------------------------------------------------------------


@pytest.mark.timeout(1800)  # building the graph of 100k takes ~100 s on 2 idle cores
def test_hnsw_agrees_with_exact_search_on_100k_vectors(tmp_path: Path) -> None:
    corpus = embedding_like(100_000, seed=1)
    queries = embedding_like(200, seed=2)
    store = LocalVectorStore(DeterministicFakeEmbedding(size=384), tmp_path, exact_search_limit=1000)
    ids = add_matrix(store, corpus)
    assert store._ann_state()["max_key"] == 100_000  # the graph holds every chunk
    found = [[d.id for d in store.similarity_search_by_vector(q.tolist(), k=10)] for q in queries]
    assert recall_at(found, exact_top(corpus, queries, 10, ids)) >= 0.95
    # A filter makes the search exact: the same ids as numpy over the matching rows.
    even = [i for i in range(len(ids)) if i % 2 == 0]
    exact_even = exact_top(corpus[even], queries[:20], 10, [ids[i] for i in even])
    filtered = [
        [d.id for d in store.similarity_search_by_vector(q.tolist(), k=10, filter={"even": True})]
        for q in queries[:20]
    ]
    assert filtered == exact_even


def test_chunks_added_after_the_snapshot_and_deleted_ones_are_seen(tmp_path: Path) -> None:
    corpus = embedding_like(3000, seed=3)
    store = LocalVectorStore(DeterministicFakeEmbedding(size=384), tmp_path, exact_search_limit=500)
    add_matrix(store, corpus[:2400])
    snapshot = store._ann_state()
    assert snapshot["count"] == 2400
    add_matrix(store, corpus[2400:], start=2400)  # 600 more: 100 past the limit -> new snapshot
    assert store._ann_state()["generation"] == snapshot["generation"] + 1
    add_matrix(store, corpus[:10] * 0.5 + corpus[2990:] * 0.5, start=3000)  # a delta of 10
    assert store._ann_state()["max_key"] == 3000
    for i in (5, 2500, 3004):
        vector = (corpus[i] if i < 3000 else corpus[i - 3000] * 0.5 + corpus[i - 10] * 0.5).tolist()
        assert store.similarity_search_by_vector(vector, k=1)[0].id == f"v{i}"
    store.delete(["v5", "v2500"])
    assert {"v5", "v2500"}.isdisjoint(
        d.id for d in store.similarity_search_by_vector(corpus[5].tolist(), k=50)
    )
    assert store.similarity_search_by_vector(corpus[6].tolist(), k=1)[0].id == "v6"


# --- filters, MMR, scores -------------------------------------------------------------


def test_metadata_filters_dict_and_callable() -> None:
    store = LocalVectorStore(DeterministicFakeEmbedding(size=32))
    store.add_texts(
        ["a", "b", "c", "d"],
        [{"source": "x.md", "page": 1}, {"source": "y.md", "page": 1}, {"source": "x.md", "page": 2}, {}],
        ids=["1", "2", "3", "4"],
    )
    assert {d.id for d in store.similarity_search("a", k=10, filter={"source": "x.md"})} == {"1", "3"}
    assert [d.id for d in store.similarity_search("a", k=10, filter={"source": "x.md", "page": 2})] == ["3"]
    assert [d.id for d in store.similarity_search("a", k=10, filter={"source": None})] == ["4"]
    assert {
        d.id for d in store.similarity_search("a", k=10, filter=lambda d: d.metadata.get("page") == 1)
    } == {
        "1",
        "2",
    }
    assert store.similarity_search("a", k=10, filter={"source": "nowhere"}) == []
    with pytest.raises(InvalidParameterError, match="filter must be"):
        store.similarity_search("a", filter="source=x")  # type: ignore[arg-type]


def test_scores_are_cosine_similarities() -> None:
    store = LocalVectorStore(DeterministicFakeEmbedding(size=8))
    store.add_vectors(["same", "opposite", "orthogonal"], [[1, 0, 0, 0], [-2, 0, 0, 0], [0, 3, 0, 0]])
    scored = store.similarity_search_with_score_by_vector([5, 0, 0, 0], k=3)
    assert [(d.page_content, round(s, 6)) for d, s in scored] == [
        ("same", 1.0),
        ("orthogonal", 0.0),
        ("opposite", -1.0),
    ]
    relevance = store._select_relevance_score_fn()
    assert (relevance(1.0), relevance(-1.0)) == (1.0, 0.0)


def test_mmr_prefers_a_diverse_second_result(tmp_path: Path) -> None:
    store = LocalVectorStore(DeterministicFakeEmbedding(size=8), tmp_path, exact_search_limit=1)
    store.add_vectors(["a", "a-twin", "b"], [[1, 0.01, 0, 0], [1, 0.02, 0, 0], [0.6, 0.8, 0, 0]])
    query = [1, 0.3, 0, 0]
    assert [d.page_content for d in store.similarity_search_by_vector(query, k=2)] == ["a-twin", "a"]
    mmr = store.max_marginal_relevance_search_by_vector(query, k=2, fetch_k=3, lambda_mult=0.5)
    assert [d.page_content for d in mmr] == ["a-twin", "b"]


def test_vectors_of_another_dimension_are_refused() -> None:
    store = LocalVectorStore(DeterministicFakeEmbedding(size=8))
    store.add_vectors(["a"], [[1.0] * 8])
    with pytest.raises(InvalidParameterError, match="8-dimensional vectors, got 4"):
        store.add_vectors(["b"], [[1.0] * 4])
    assert len(store) == 1


# --- crashes and concurrency ------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, numpy as np
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_localllm.rag import LocalVectorStore
    mode, folder, limit, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    store = LocalVectorStore(DeterministicFakeEmbedding(size=64), folder, exact_search_limit=limit)
    rng = np.random.default_rng(abs(hash(tag)) % 1000)
    if mode == "optimize":
        print("optimizing", flush=True)
        store.optimize()
        print("done", flush=True)
        sys.exit(0)
    for batch in range(int(sys.argv[5])):
        ids = [f"{tag}-{batch}-{i}" for i in range(500)]
        vectors = rng.standard_normal((500, 64)).astype(np.float32)
        print("writing", batch, flush=True)
        store.add_vectors([f"{tag} text" for _ in ids], vectors, [{"batch": batch}] * 500, ids=ids)
    print("done", flush=True)
    """
)


def child(mode: str, folder: Path, limit: int, tag: str = "w", batches: int = 0) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", CHILD, mode, str(folder), str(limit), tag, str(batches)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)


def seeded_store(folder: Path, n: int, limit: int, dim: int = 64) -> tuple[LocalVectorStore, np.ndarray]:
    store = LocalVectorStore(DeterministicFakeEmbedding(size=64), folder, exact_search_limit=limit)
    vectors = embedding_like(n, seed=7, dim=dim)
    add_matrix(store, vectors)
    return store, vectors


def assert_intact(folder: Path, vectors: np.ndarray, limit: int) -> LocalVectorStore:
    """The seeded chunks are all there and searches find them (among the graph's top 10)."""
    store = LocalVectorStore(DeterministicFakeEmbedding(size=64), folder, exact_search_limit=limit)
    with sqlite3.connect(folder / INDEX_FILE_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert len(store.get_by_ids([f"v{i}" for i in range(len(vectors))])) == len(vectors)
    for i in range(0, len(vectors), 97):
        assert f"v{i}" in [d.id for d in store.similarity_search_by_vector(vectors[i].tolist(), k=10)]
    return store


def test_a_writer_killed_mid_write_leaves_the_previous_index_readable(tmp_path: Path) -> None:
    store, vectors = seeded_store(tmp_path, 1000, limit=10**9)
    store.close()
    writer = child("write", tmp_path, 10**9, batches=10**6)
    assert writer.stdout is not None
    for _ in range(3):  # a few batches committed, the next one under way
        assert writer.stdout.readline().startswith("writing")
    time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    after = assert_intact(tmp_path, vectors, limit=10**9)
    assert (len(after) - 1000) % 500 == 0  # whole batches only
    assert len(after) >= 1000 + 2 * 500


def test_a_process_killed_while_writing_the_graph_leaves_the_previous_state(tmp_path: Path) -> None:
    store, vectors = seeded_store(tmp_path, 30_000, limit=10**9, dim=384)
    before = store._ann_state()
    store.close()
    worker = child("optimize", tmp_path, 10**9)
    assert worker.stdout is not None
    assert worker.stdout.readline().startswith("optimizing")
    time.sleep(0.5)  # building the graph of 30k chunks of 384 dimensions takes seconds
    assert worker.poll() is None  # still building: the kill lands mid-snapshot
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    after = assert_intact(tmp_path, vectors, limit=10**9)
    assert after._ann_state() == before
    after.optimize()  # a later snapshot succeeds and cleans up what the killed one left
    assert after._ann_state()["max_key"] == 30_000
    assert sorted(p.name for p in tmp_path.glob("ann-*")) == [after._ann_state()["file"]]
    assert_intact(tmp_path, vectors, limit=10**9)


def test_one_process_writes_while_another_reads_and_nothing_is_lost(tmp_path: Path) -> None:
    reader, vectors = seeded_store(tmp_path, 1000, limit=1500)
    writer = child("write", tmp_path, 1500, tag="w", batches=8)  # crosses the limit: snapshots too
    seen = []
    while writer.poll() is None:
        seen.append(len(reader))
        assert reader.similarity_search_by_vector(vectors[3].tolist(), k=1)[0].id == "v3"
    assert writer.returncode == 0
    assert seen == sorted(seen)  # the reader only ever sees whole, growing commits
    assert len(reader) == 1000 + 8 * 500
    written = reader.get_by_ids([f"w-{b}-{i}" for b in range(8) for i in range(500)])
    assert len(written) == 4000
    assert_intact(tmp_path, vectors, limit=1500)


def test_two_writers_at_once_lose_nothing(tmp_path: Path) -> None:
    seeded_store(tmp_path, 100, limit=700)[0].close()
    writers = [child("write", tmp_path, 700, tag=tag, batches=4) for tag in ("a", "b")]
    assert [w.wait() for w in writers] == [0, 0]
    store = LocalVectorStore(DeterministicFakeEmbedding(size=64), tmp_path)
    assert len(store) == 100 + 2 * 4 * 500
    ids = [f"{t}-{b}-{i}" for t in "ab" for b in range(4) for i in range(500)]
    assert len(store.get_by_ids(ids)) == 4000


# --- files on disk ------------------------------------------------------------------------


def test_replacing_a_files_chunks_writes_about_that_much(tmp_path: Path) -> None:
    store = LocalVectorStore(DeterministicFakeEmbedding(size=384), tmp_path, exact_search_limit=1000)
    add_matrix(store, embedding_like(20_000, seed=4))
    size_before = store.disk_usage()
    for name in tmp_path.iterdir():
        os.utime(name, (0, 0))
    add_matrix(store, embedding_like(50, seed=5), start=20_000)
    store.delete([f"v{i}" for i in range(50)])
    touched = [p.name for p in tmp_path.iterdir() if p.stat().st_mtime > 0]
    assert not any(name.startswith("ann-") for name in touched)  # the graph was not rewritten
    growth = store.disk_usage() - size_before
    assert growth < 50 * 384 * 4 * 4  # well under 4x the 50 new rows (WAL frames included)


def test_a_folder_of_another_format_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / INDEX_FILE_NAME).write_bytes(b"not a database at all" * 100)
    with pytest.raises(DocumentLoadError, match="not a readable index"):
        LocalVectorStore(DeterministicFakeEmbedding(size=8), tmp_path)
    other = tmp_path / "other"
    LocalVectorStore(DeterministicFakeEmbedding(size=8), other).close()
    with sqlite3.connect(other / INDEX_FILE_NAME) as db:
        db.execute("UPDATE meta SET value='[\"langchain-localllm-vectorstore\", 9]' WHERE name='format'")
    with pytest.raises(DocumentLoadError, match="another version"):
        LocalVectorStore(DeterministicFakeEmbedding(size=8), other)


def test_index_folder_writes_to_the_store_in_batches(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.txt").write_text("\n\n".join(f"Paragraph {i} " * 20 for i in range(40)), "utf-8")
    calls: list[int] = []

    class Recording(LocalVectorStore):
        def add_documents(self, documents: list[Document], **kwargs: object) -> list[str]:
            calls.append(len(documents))
            return super().add_documents(documents, **kwargs)

    embeddings = DeterministicFakeEmbedding(size=16)
    store = Recording(embeddings, tmp_path / "index")
    index_folder(
        docs,
        embeddings,
        vector_store=store,
        chunk_size=32,
        chunk_overlap=4,
        batch_size=7,
        show_progress=False,
    )
    assert sum(calls) == len(store) > 14
    assert max(calls) == 7
