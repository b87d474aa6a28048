"""Local RAG without a model runtime: loaders, indexing, persistence, errors, the chain."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.language_models import FakeListLLM
from langchain_core.prompts import PromptTemplate

from langchain_localllm.chains import rag_chain
from langchain_localllm.chains.rag import format_documents, rag_prompt_selector
from langchain_localllm.errors import (
    DocumentLoadError,
    EmbeddingMismatchError,
    InvalidParameterError,
    LocalLLMError,
)
from langchain_localllm.rag import INDEX_FILE_NAME, LocalVectorStore, index_folder, load_file, open_index


class CountingEmbeddings(Embeddings):
    """Deterministic fake vectors; remembers every text it was asked to embed.

    With a ``budget``, dies (like a killed process) once more texts than that were asked for.
    """

    def __init__(self, budget: int | None = None) -> None:
        self.inner = DeterministicFakeEmbedding(size=16)
        self.seen: list[str] = []
        self.budget = budget

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.budget is not None and len(self.seen) + len(texts) > self.budget:
            raise KeyboardInterrupt
        self.seen.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A small, valid PDF with one line of text per page (Helvetica)."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "france.txt").write_text("Paris is the capital of France.\n", encoding="utf-8")
    (folder / "dogs.md").write_text(
        "# Dogs\n\nDogs are loyal pets that bark at strangers.\n", encoding="utf-8"
    )
    (folder / "sub" / "python.html").write_text(
        "<html><head><title>Python</title><style>p{color:red}</style><script>var secret=1;</script></head>"
        "<body><h1>Python</h1><p>Python was created by Guido van Rossum.</p></body></html>",
        encoding="utf-8",
    )
    make_pdf(folder / "moon.pdf", ["The Moon orbits the Earth.", "Apollo 11 landed in 1969."])
    (folder / ".hidden.txt").write_text("never indexed", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return folder


# --- loaders ----------------------------------------------------------------------------


def test_html_loader_keeps_text_and_title_but_not_scripts(corpus: Path) -> None:
    [doc] = load_file(corpus / "sub" / "python.html")
    assert "Guido van Rossum" in doc.page_content
    assert "secret" not in doc.page_content
    assert "color" not in doc.page_content
    assert doc.metadata == {"source": str(corpus / "sub" / "python.html"), "title": "Python"}


def test_pdf_loader_gives_one_document_per_page(corpus: Path) -> None:
    docs = load_file(corpus / "moon.pdf")
    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert "Moon orbits" in docs[0].page_content
    assert "1969" in docs[1].page_content


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        ("empty.txt", b"", "no text to index"),
        ("blank.md", b"  \n\n\t\n", "no text to index"),
        ("binary.txt", b"abc\x00\x01\x02def", "looks binary"),
        ("latin1.txt", "caf\u00e9".encode("latin-1"), "not UTF-8"),
        ("broken.pdf", b"%PDF-1.4\nthis is not a pdf", "not a readable PDF"),
        ("notes.docx", b"PK\x03\x04", "unsupported extension"),
    ],
)
def test_bad_files_are_typed_errors_naming_the_file(
    tmp_path: Path, name: str, data: bytes, match: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DocumentLoadError, match=match) as info:
        load_file(path)
    assert info.value.path == str(path)  # type: ignore[attr-defined]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LocalLLMError)


def test_directory_with_a_supported_name_is_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    with pytest.raises(DocumentLoadError, match="could not be read"):
        load_file(folder)


# --- indexing -------------------------------------------------------------------------


def test_index_folder_indexes_supported_visible_files(corpus: Path) -> None:
    emb = CountingEmbeddings()
    retriever = index_folder(corpus, emb, show_progress=False)
    stats = retriever.vectorstore.last_index_stats  # type: ignore[attr-defined]
    assert sorted(Path(p).name for p in stats.added) == ["dogs.md", "france.txt", "moon.pdf", "python.html"]
    assert stats.chunks_embedded == 5  # the PDF has two pages
    assert not any("never indexed" in t for t in emb.seen)
    docs = retriever.invoke("Paris is the capital of France.")
    assert docs[0].page_content.startswith("Paris is the capital")
    assert docs[0].metadata["source"] == str((corpus / "france.txt").resolve()) or docs[0].metadata[
        "source"
    ] == str(corpus / "france.txt")


def test_chunks_respect_the_size_in_tokens(tmp_path: Path) -> None:
    text = " ".join(f"word{i}" for i in range(400))  # ~ 8 characters per word
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    emb = CountingEmbeddings()
    index_folder(tmp_path, emb, chunk_size=50, chunk_overlap=10, show_progress=False)
    assert len(emb.seen) > 10
    assert all(max(1, len(t) // 4) <= 50 for t in emb.seen)  # the estimate used without a tokenizer


def chunks_in(store: Any) -> dict[str, Document]:
    return {doc.id: doc for doc in store.iter_documents()}


def test_persistence_round_trip_without_pickle(corpus: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "index"
    emb = CountingEmbeddings()
    first = index_folder(corpus, emb, store_dir, show_progress=False)
    with sqlite3.connect(store_dir / INDEX_FILE_NAME) as db:  # plain SQLite rows, no pickle
        rows = db.execute("SELECT id, text, metadata, vector FROM chunks").fetchall()
    assert len(rows) == 5
    assert all(json.loads(meta)["source"] and len(vector) == 16 * 4 for _, _, meta, vector in rows)
    reopened = open_index(store_dir, emb, k=2)
    question = "Dogs are loyal pets"
    assert [d.page_content for d in reopened.invoke(question)] == [
        d.page_content for d in first.invoke(question)
    ][:2]
    store = LocalVectorStore(emb, store_dir)
    original = chunks_in(first.vectorstore)
    assert chunks_in(store) == original
    for doc_id in original:
        [(_, score)] = store.similarity_search_with_score_by_vector(
            emb.embed_query(original[doc_id].page_content), k=1
        )
        assert score == pytest.approx(1.0, abs=1e-5)  # vectors kept as float32


def test_reindexing_embeds_only_changed_files_and_drops_deleted(corpus: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "index"
    index_folder(corpus, CountingEmbeddings(), store_dir, show_progress=False)

    (corpus / "france.txt").write_text("Lyon is a city in France.\n", encoding="utf-8")
    (corpus / "dogs.md").unlink()
    (corpus / "cats.txt").write_text("Cats purr.\n", encoding="utf-8")
    emb = CountingEmbeddings()
    retriever = index_folder(corpus, emb, store_dir, show_progress=False)
    stats = retriever.vectorstore.last_index_stats  # type: ignore[attr-defined]

    assert sorted(emb.seen) == ["Cats purr.", "Lyon is a city in France."]
    assert [Path(p).name for p in stats.updated] == ["france.txt"]
    assert [Path(p).name for p in stats.added] == ["cats.txt"]
    assert [Path(p).name for p in stats.removed] == ["dogs.md"]
    assert sorted(Path(p).name for p in stats.unchanged) == ["moon.pdf", "python.html"]
    texts = {d.page_content for d in chunks_in(retriever.vectorstore).values()}
    assert "Paris is the capital of France." not in texts
    assert not any("Dogs" in t for t in texts)
    assert len(texts) == 5

    again = CountingEmbeddings()
    index_folder(corpus, again, store_dir, show_progress=False)
    assert again.seen == []


def test_another_embedding_model_is_refused(corpus: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "index"
    index_folder(corpus, CountingEmbeddings(), store_dir, show_progress=False)

    class OtherModel(CountingEmbeddings):
        pass

    other = OtherModel()
    with pytest.raises(EmbeddingMismatchError, match=r"built with .*CountingEmbeddings.*not .*OtherModel"):
        index_folder(corpus, other, store_dir, show_progress=False)
    with pytest.raises(EmbeddingMismatchError, match="new persist_directory"):
        open_index(store_dir, other)
    assert other.seen == []
    assert len(LocalVectorStore(other, store_dir)) == 5  # nothing was dropped


def test_bad_file_raises_but_keeps_everything_indexed(corpus: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "index"
    index_folder(corpus, CountingEmbeddings(), store_dir, show_progress=False)
    before = chunks_in(LocalVectorStore(CountingEmbeddings(), store_dir))

    (corpus / "zz_binary.txt").write_bytes(b"\x00\x01\x02\x03")
    (corpus / "aa_new.txt").write_text("Brand new notes about gardening.", encoding="utf-8")
    with pytest.raises(DocumentLoadError, match="zz_binary.txt looks binary"):
        index_folder(corpus, CountingEmbeddings(), store_dir, show_progress=False)

    after = chunks_in(LocalVectorStore(CountingEmbeddings(), store_dir))
    assert before.keys() <= after.keys()  # nothing lost
    assert any("gardening" in d.page_content for d in after.values())  # progress before the error was kept

    emb = CountingEmbeddings()
    (corpus / "zz_binary.txt").unlink()
    index_folder(corpus, emb, store_dir, show_progress=False)
    assert emb.seen == []  # the good files were not embedded a second time


def test_skip_mode_warns_and_goes_on(corpus: Path) -> None:
    (corpus / "empty.md").write_text("", encoding="utf-8")
    with pytest.warns(UserWarning, match="empty.md has no text"):
        retriever = index_folder(corpus, CountingEmbeddings(), on_error="skip", show_progress=False)
    stats = retriever.vectorstore.last_index_stats  # type: ignore[attr-defined]
    assert [Path(p).name for p in stats.skipped] == ["empty.md"]
    assert len(stats.added) == 4


def test_empty_or_missing_folder_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match="holds no file to index"):
        index_folder(tmp_path, CountingEmbeddings(), show_progress=False)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(DocumentLoadError, match="holds no file to index"):
        index_folder(tmp_path, CountingEmbeddings(), show_progress=False)
    with pytest.raises(DocumentLoadError, match="does not exist"):
        index_folder(tmp_path / "nope", CountingEmbeddings(), show_progress=False)
    with pytest.raises(DocumentLoadError, match="No index"):
        open_index(tmp_path, CountingEmbeddings())


def test_a_single_file_can_be_indexed(corpus: Path) -> None:
    retriever = index_folder(corpus / "france.txt", CountingEmbeddings(), show_progress=False, k=1)
    assert [d.page_content for d in retriever.invoke("anything")] == ["Paris is the capital of France."]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 10, "chunk_overlap": 10}, "chunk_overlap"),
        ({"search_type": "knn"}, "search_type"),
        ({"k": 0}, "k must be"),
        ({"on_error": "ignore"}, "on_error"),
    ],
)
def test_bad_options_are_typed_errors(corpus: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        index_folder(corpus, CountingEmbeddings(), show_progress=False, **kwargs)


def test_mmr_retriever_returns_k_diverse_results(tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"dup{i}.txt").write_text("The same sentence." if i < 5 else "Something else.", "utf-8")
    retriever = index_folder(tmp_path, CountingEmbeddings(), search_type="mmr", k=2, show_progress=False)
    docs = retriever.invoke("The same sentence.")
    assert len(docs) == 2
    assert {d.page_content for d in docs} == {"The same sentence.", "Something else."}


def test_progress_is_shown_on_stderr(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index_folder(corpus, CountingEmbeddings(), show_progress=True)
    assert "Indexing" in capsys.readouterr().err


# --- the chain ------------------------------------------------------------------------


class RecordingLLM(FakeListLLM):
    """FakeListLLM that keeps the prompts it was given and can name a model."""

    prompts: list[str] = []
    model_name: str | None = None

    def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        self.prompts.append(prompt)
        return super()._call(prompt, stop, **kwargs)


def test_rag_chain_answers_with_sources(corpus: Path) -> None:
    retriever = index_folder(corpus, CountingEmbeddings(), show_progress=False, k=2)
    llm = RecordingLLM(responses=["Guido van Rossum [1]."], prompts=[])
    # The fake embeddings are random per text: ask with a chunk's exact text to hit it.
    result = rag_chain(llm, retriever).invoke("Paris is the capital of France.")
    assert result["answer"] == "Guido van Rossum [1]."
    assert result["question"] == "Paris is the capital of France."
    assert len(result["context"]) == 2
    assert result["sources"][0].endswith("france.txt")
    prompt = llm.prompts[0]
    assert "[1] (" in prompt and "france.txt)\nParis is the capital of France." in prompt
    assert "Question: Paris is the capital of France." in prompt
    assert prompt.rstrip().endswith("Answer:")  # plain format for an unknown model


def test_rag_chain_streams_answer_after_sources(corpus: Path) -> None:
    retriever = index_folder(corpus, CountingEmbeddings(), show_progress=False, k=1)
    chain = rag_chain(RecordingLLM(responses=["Paris."], prompts=[]), retriever)
    parts = list(chain.stream({"question": "capital of France"}))
    keys = [next(iter(p)) for p in parts]
    assert keys.index("sources") < keys.index("answer")
    assert "".join(p.get("answer", "") for p in parts) == "Paris."


async def test_rag_chain_async(corpus: Path) -> None:
    retriever = index_folder(corpus, CountingEmbeddings(), show_progress=False, k=1)
    result = await rag_chain(RecordingLLM(responses=["ok"], prompts=[]), retriever).ainvoke("q?")
    assert result["answer"] == "ok"
    assert len(result["sources"]) == 1


@pytest.mark.parametrize(
    ("model_name", "start", "inside"),
    [
        ("llama-2-7b-chat.Q4_K_M.gguf", "[INST] <<SYS>>\nYou are an assistant", "<</SYS>>\n\nContext:\nCTX"),
        ("qwen2-7b-instruct", "<|im_start|>system\nYou are an assistant", "<|im_start|>assistant"),
        ("mistral-7b-instruct-v0.2", "[INST] You are an assistant", "Question: Q? [/INST]"),
        ("some-base-model", "You are an assistant", "Question: Q?\n\nAnswer:"),
    ],
)
def test_prompt_follows_the_models_format(model_name: str, start: str, inside: str) -> None:
    from langchain_localllm.prompts import clear_prompt_format_cache

    clear_prompt_format_cache()
    llm = RecordingLLM(responses=["x"], prompts=[], model_name=model_name)
    prompt = rag_prompt_selector().get_prompt(llm).format(context="CTX", question="Q?")
    assert prompt.startswith(start)
    assert inside in prompt


def test_rag_chain_rejects_bad_arguments(corpus: Path) -> None:
    retriever = index_folder(corpus, CountingEmbeddings(), show_progress=False)
    llm = RecordingLLM(responses=["x"], prompts=[])
    with pytest.raises(InvalidParameterError, match="retriever"):
        rag_chain(llm, ["not", "a", "retriever"])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="context"):
        rag_chain(llm, retriever, prompt=PromptTemplate.from_template("Only {question}"))
    with pytest.raises(InvalidParameterError, match="empty"):
        rag_chain(llm, retriever).invoke("   ")


def test_format_documents_numbers_passages_with_sources() -> None:
    docs = [Document("a", metadata={"source": "x.pdf", "page": 2}), Document("b", metadata={})]
    assert format_documents(docs) == "[1] (x.pdf (page 2))\na\n\n[2] (unknown)\nb"
    assert format_documents([]) == "(no passages were found)"


def test_two_folders_share_one_index_without_dropping_each_other(tmp_path: Path) -> None:
    first, second = tmp_path / "docs", tmp_path / "docs2"
    first.mkdir()
    second.mkdir()
    (first / "a.txt").write_text("alpha", encoding="utf-8")
    (second / "b.txt").write_text("beta", encoding="utf-8")
    store_dir = tmp_path / "index"
    index_folder(second, CountingEmbeddings(), store_dir, show_progress=False)
    retriever = index_folder(first, CountingEmbeddings(), store_dir, show_progress=False)
    assert retriever.vectorstore.last_index_stats.removed == []  # type: ignore[attr-defined]
    assert {d.page_content for d in chunks_in(retriever.vectorstore).values()} == {"alpha", "beta"}


# --- the embedding model's identity, resuming, progress ---------------------------------


class FileModelEmbeddings(CountingEmbeddings):
    """Fake embeddings that name a model file, as LlamaCppEmbeddings does."""

    def __init__(self, model_path: Path) -> None:
        super().__init__()
        self.model_path = str(model_path)


def test_the_model_is_recorded_by_content_not_by_file_name(corpus: Path, tmp_path: Path) -> None:
    first, second, moved = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf", tmp_path / "c.gguf"
    for path, content in ((first, b"weights one"), (second, b"weights two"), (moved, b"weights one")):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
    store_dir = tmp_path / "index"
    index_folder(corpus, FileModelEmbeddings(first), store_dir, show_progress=False)

    # Another model under the same file name: refused, nothing embedded.
    other = FileModelEmbeddings(second)
    with pytest.raises(EmbeddingMismatchError, match=r"model.gguf, sha256:.*model.gguf, sha256:"):
        index_folder(corpus, other, store_dir, show_progress=False)
    assert other.seen == []
    # The same model, moved and renamed: accepted, nothing re-embedded.
    same = FileModelEmbeddings(moved)
    index_folder(corpus, same, store_dir, show_progress=False)
    assert same.seen == []
    # The file rewritten in place with other weights: refused.
    first.write_bytes(b"weights three")
    with pytest.raises(EmbeddingMismatchError):
        open_index(store_dir, FileModelEmbeddings(first))


def test_an_interrupted_run_resumes_without_embedding_anything_twice(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"f{n}.txt").write_text(" ".join(f"w{n}x{i}" for i in range(600)), encoding="utf-8")
    store_dir = tmp_path / "index"
    options: dict[str, Any] = {"chunk_size": 20, "chunk_overlap": 0, "batch_size": 5, "show_progress": False}
    complete = CountingEmbeddings()
    index_folder(docs, complete, **options)
    total = len(complete.seen)

    dying = CountingEmbeddings(budget=total // 2)  # stops in the middle of the second file
    with pytest.raises(KeyboardInterrupt):
        index_folder(docs, dying, store_dir, **options)
    resumed = CountingEmbeddings()
    retriever = index_folder(docs, resumed, store_dir, **options)
    assert len(dying.seen) + len(resumed.seen) == total
    assert set(dying.seen).isdisjoint(resumed.seen)
    assert len(retriever.vectorstore) == total  # type: ignore[arg-type]


def test_a_changed_file_whose_update_was_interrupted_leaves_no_stale_chunks(
    corpus: Path, tmp_path: Path
) -> None:
    store_dir = tmp_path / "index"
    index_folder(corpus, CountingEmbeddings(), store_dir, chunk_size=8, chunk_overlap=0, show_progress=False)
    (corpus / "france.txt").write_text("Lyon is a city in France. " * 20, encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        index_folder(
            corpus,
            CountingEmbeddings(budget=2),
            store_dir,
            chunk_size=8,
            chunk_overlap=0,
            batch_size=2,
            show_progress=False,
        )
    retriever = index_folder(corpus, CountingEmbeddings(), store_dir, chunk_size=8, chunk_overlap=0)
    texts = [d.page_content for d in chunks_in(retriever.vectorstore).values()]
    assert not any("Paris" in t for t in texts)
    assert sum("Lyon" in t for t in texts) > 3
    stats = retriever.vectorstore.last_index_stats  # type: ignore[attr-defined]
    assert [Path(p).name for p in stats.updated] == ["france.txt"]


def test_progress_shows_chunks_per_second_and_an_eta(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(4):
        (tmp_path / f"f{n}.txt").write_text(" ".join(f"w{i}" for i in range(300)), encoding="utf-8")
    index_folder(tmp_path, CountingEmbeddings(), chunk_size=16, chunk_overlap=0, batch_size=4)
    err = capsys.readouterr().err
    assert "chunk/s" in err
    assert re.search(r"\d+/\d+ \[\d\d:\d\d<\d\d:\d\d", err)  # done/total [elapsed<remaining


def test_cli_rag_stats_prints_chunks_files_size_and_model(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_localllm.cli.main import main

    model = tmp_path / "minilm.gguf"
    model.write_bytes(b"weights")
    store_dir = tmp_path / "index"
    index_folder(corpus, FileModelEmbeddings(model), store_dir, show_progress=False)
    assert main(["rag", "stats", "--index", str(store_dir)]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["chunks"].strip() == "5"
    assert lines["files"].strip() == "4"
    assert float(lines["disk"].strip().removesuffix(" MB")) > 0
    assert lines["embeddings"].strip() == "minilm.gguf (tests.integration.test_rag.FileModelEmbeddings)"
    assert lines["model id"].strip() == "sha256:" + hashlib.sha256(b"weights").hexdigest()

    assert main(["rag", "stats", "--index", str(tmp_path / "nowhere")]) == 1
    assert "localllm rag index DIR" in capsys.readouterr().err
