"""Local RAG end to end with the real all-MiniLM-L6-v2 (llama.cpp) and a real local LLM."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_localllm import LlamaCpp, LlamaCppEmbeddings
from langchain_localllm.chains import rag_chain
from langchain_localllm.rag import index_folder, open_index
from tests.fixtures.models import tiny_model
from tests.fixtures.runs import LLMEvents

# A corpus written for this test: one file per topic, and a question per file that
# does not repeat the file's wording.
CORPUS = {
    "volcanoes.txt": "Volcanoes form where magma from the Earth's mantle reaches the surface. Eruptions "
    "release lava, ash and gases; Mount Etna in Sicily is one of the most active.",
    "sourdough.md": "# Sourdough\n\nA sourdough starter is a culture of wild yeast and lactic acid bacteria. "
    "Feed it flour and water daily; the bread rises slowly and tastes tangy.",
    "tax.txt": "Freelancers must file their income tax return by the end of July and pay advance "
    "tax every quarter. Keep receipts for deductible business expenses.",
    "bicycle.txt": "To fix a flat bicycle tyre, remove the wheel, lever the tyre off the rim, find the "
    "puncture in the inner tube, patch it and pump it up again.",
    "python.html": "<html><head><title>Python</title></head><body><p>Python is a programming language "
    "created by Guido van Rossum and first released in 1991. It uses indentation for blocks."
    "</p></body></html>",
    "whales.txt": "Blue whales are the largest animals ever known, reaching 30 metres. They feed almost "
    "entirely on krill, tiny shrimp-like crustaceans.",
    "chess.md": "In chess, castling moves the king two squares towards a rook, and the rook jumps over "
    "the king. It is allowed only if neither piece has moved before.",
    "coffee.txt": "Espresso is brewed by forcing hot water at about nine bars of pressure through finely "
    "ground coffee for roughly 25 seconds.",
    "sleep.txt": "Adults need seven to nine hours of sleep per night. Screens before bedtime delay "
    "melatonin and make it harder to fall asleep.",
    "mars.txt": "Mars is the fourth planet from the Sun. Its red colour comes from iron oxide dust, and "
    "it has two small moons, Phobos and Deimos.",
}

QUESTIONS = {
    "Which mountain in Italy erupts often?": "volcanoes.txt",
    "How do I keep my bread starter alive?": "sourdough.md",
    "When is the deadline for self-employed people to declare their earnings?": "tax.txt",
    "My bike has a puncture, how do I repair it?": "bicycle.txt",
    "Who invented the Python language?": "python.html",
    "What do the biggest sea mammals eat?": "whales.txt",
    "What are the rules for the king and rook special move?": "chess.md",
    "How much pressure does an espresso machine use?": "coffee.txt",
    "How many hours should a grown-up rest at night?": "sleep.txt",
    "Why is the red planet red?": "mars.txt",
}


def write_corpus(folder: Path) -> Path:
    """``CORPUS`` as files in ``folder``."""
    folder.mkdir()
    for name, text in CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


def test_top1_retrieval_with_real_minilm(corpus: Path, llamacpp_embeddings: LlamaCppEmbeddings) -> None:
    retriever = index_folder(corpus, llamacpp_embeddings, k=1, show_progress=False)
    hits = sum(
        Path(retriever.invoke(question)[0].metadata["source"]).name == expected
        for question, expected in QUESTIONS.items()
    )
    assert hits / len(QUESTIONS) >= 0.9


def test_chunks_are_sized_in_the_models_tokens(
    tmp_path: Path, llamacpp_embeddings: LlamaCppEmbeddings
) -> None:
    (tmp_path / "long.txt").write_text(" ".join(CORPUS.values()) * 3, encoding="utf-8")
    retriever = index_folder(
        tmp_path, llamacpp_embeddings, chunk_size=64, chunk_overlap=8, show_progress=False
    )
    chunks = [d.page_content for d in retriever.vectorstore.iter_documents()]  # type: ignore[attr-defined]
    sizes = [llamacpp_embeddings.get_num_tokens(c) for c in chunks]
    assert len(chunks) > 5
    assert max(sizes) <= 64
    assert max(sizes) > 40  # chunks are filled, not cut needlessly small


def test_persisted_index_reopens_and_skips_unchanged(
    corpus: Path, tmp_path: Path, llamacpp_embeddings: LlamaCppEmbeddings
) -> None:
    store = tmp_path / "index"
    index_folder(corpus, llamacpp_embeddings, store, show_progress=False)
    (corpus / "mars.txt").write_text("Mars has the tallest volcano, Olympus Mons.", encoding="utf-8")
    again = index_folder(corpus, llamacpp_embeddings, store, show_progress=False)
    stats = again.vectorstore.last_index_stats  # type: ignore[attr-defined]
    assert [Path(p).name for p in stats.updated] == ["mars.txt"]
    assert stats.chunks_embedded == 1
    reopened = open_index(store, llamacpp_embeddings, k=1)
    assert (
        "Olympus Mons" in reopened.invoke("What is the highest volcano in the solar system?")[0].page_content
    )


def test_rag_chain_with_a_real_llama2_format_model(
    corpus: Path, llamacpp_embeddings: LlamaCppEmbeddings
) -> None:
    retriever = index_folder(corpus, llamacpp_embeddings, k=2, search_type="mmr", show_progress=False)
    llm = LlamaCpp(model_path=str(tiny_model("llama2")), max_tokens=8, temperature=0, seed=1)
    chain = rag_chain(llm, retriever)
    events = LLMEvents()
    parts = list(chain.stream("Who invented the Python language?", config={"callbacks": [events]}))
    prompts = events.prompts
    answer = "".join(p.get("answer", "") for p in parts)
    sources = next(p["sources"] for p in parts if "sources" in p)
    assert any(s.endswith("python.html") for s in sources)
    assert sum(1 for p in parts if "answer" in p) >= 1
    assert events.tokens  # the model generated
    assert answer == "".join(events.tokens)  # streamed as generated, nothing lost or added
    assert prompts[0].startswith("[INST] <<SYS>>")  # the model's own (Llama-2) format
    assert "Guido van Rossum" in prompts[0]
