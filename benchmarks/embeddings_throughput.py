"""Embedding throughput with the real all-MiniLM-L6-v2 GGUF, ours against the alternatives.

    python benchmarks/embeddings_throughput.py            # 2,000 chunks (a few minutes on 2 cores)
    python benchmarks/embeddings_throughput.py --n 400    # quicker

Embeds the same N chunks (deterministic sentences of 10-60 words) with:

* ours: ``LlamaCppEmbeddings`` (default batching) and ``GPT4AllEmbeddings``;
* ``langchain_community.embeddings.LlamaCppEmbeddings`` (all texts in one call);
* raw llama-cpp-python, one text per ``Llama.embed`` call;
* raw gpt4all, one text per ``Embed4All.embed`` call (local file, no download).

The chunks are split into rounds and the contestants take turns within each round,
so a change in machine load hits all of them alike. Prints texts/s and the ratios
the project targets (ours / community >= 2.5, ours / raw llama.cpp >= 0.95, ours
gpt4all / raw gpt4all >= 0.95), printing the running ratios after each round. Before
that it times a persisted RAG index of the first ``--rag-n`` chunks with
``index_folder`` (build, re-index unchanged) and the query latency (similarity, MMR).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = [
    "model",
    "local",
    "private",
    "document",
    "question",
    "answer",
    "retrieval",
    "vector",
    "index",
    "server",
    "token",
    "context",
    "window",
    "prompt",
    "chunk",
    "embedding",
    "llama",
    "laptop",
    "offline",
    "folder",
    "search",
    "note",
    "meeting",
    "invoice",
    "contract",
    "travel",
    "recipe",
    "garden",
    "budget",
    "report",
    "summary",
    "project",
    "deadline",
    "customer",
    "email",
    "invoice",
    "policy",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "that",
    "this",
    "it",
    "be",
    "are",
    "was",
    "were",
    "has",
    "have",
]


def make_chunks(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60))).capitalize() + "." for _ in range(n)
    ]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """llama.cpp and gpt4all print to file descriptor 2; keep the report readable."""
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def contestants(model: Path) -> dict[str, Callable[[list[str]], object]]:
    import llama_cpp
    from gpt4all import Embed4All
    from langchain_community.embeddings import LlamaCppEmbeddings as CommunityLlamaCppEmbeddings

    from langchain_localllm import GPT4AllEmbeddings, LlamaCppEmbeddings

    with quiet_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = LlamaCppEmbeddings(model_path=str(model))
        ours.load()
        ours_g4a = GPT4AllEmbeddings(model=str(model))
        ours_g4a.load()
        community = CommunityLlamaCppEmbeddings(model_path=str(model), verbose=False)
        raw = llama_cpp.Llama(model_path=str(model), embedding=True, n_ctx=512, verbose=False)
        raw_g4a = Embed4All(model.name, model_path=str(model.parent), allow_download=False, device="cpu")

    def raw_llama(texts: list[str]) -> object:
        return [raw.embed(t) for t in texts]

    def raw_gpt4all(texts: list[str]) -> object:
        return [raw_g4a.embed(t) for t in texts]

    return {
        "ours LlamaCppEmbeddings": ours.embed_documents,
        "community LlamaCppEmbeddings": community.embed_documents,
        "raw llama-cpp-python, 1 text/call": raw_llama,
        "ours GPT4AllEmbeddings": ours_g4a.embed_documents,
        "raw gpt4all Embed4All, 1 text/call": raw_gpt4all,
    }


def throughput(model: Path, chunks: list[str], rounds: int) -> dict[str, float]:
    runners = contestants(model)
    for run in runners.values():  # warm-up: first-call allocations
        with quiet_stderr():
            run(chunks[:8])
    spent = dict.fromkeys(runners, 0.0)
    size = -(-len(chunks) // rounds)
    for r in range(rounds):
        part = chunks[r * size : (r + 1) * size]
        order = list(runners) if r % 2 == 0 else list(reversed(runners))
        for name in order:
            start = time.perf_counter()
            with quiet_stderr():
                runners[name](part)
            spent[name] += time.perf_counter() - start
        done = min(len(chunks), (r + 1) * size)
        rates = {name: done / seconds for name, seconds in spent.items()}
        print(f"  after round {r + 1}/{rounds} ({done} texts each): {_ratios(rates)}", flush=True)
    return {name: len(chunks) / seconds for name, seconds in spent.items()}


def _ratios(rates: dict[str, float]) -> str:
    ours = rates["ours LlamaCppEmbeddings"]
    return (
        f"ours {ours:.1f}/s, vs community {ours / rates['community LlamaCppEmbeddings']:.2f}x, "
        f"vs raw llama.cpp {ours / rates['raw llama-cpp-python, 1 text/call']:.2f}x, gpt4all ours/raw "
        f"{rates['ours GPT4AllEmbeddings'] / rates['raw gpt4all Embed4All, 1 text/call']:.2f}x"
    )


def rag_timings(model: Path, chunks: list[str]) -> None:
    from langchain_localllm import LlamaCppEmbeddings
    from langchain_localllm.rag import index_folder

    embeddings = LlamaCppEmbeddings(model_path=str(model))
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        per_file = 20
        for i in range(0, len(chunks), per_file):
            (docs / f"note{i // per_file:04d}.txt").write_text("\n\n".join(chunks[i : i + per_file]), "utf-8")
        store = Path(tmp) / "index"
        start = time.perf_counter()
        retriever = index_folder(
            docs, embeddings, store, chunk_size=128, chunk_overlap=16, show_progress=False
        )
        build = time.perf_counter() - start
        n_chunks = len(retriever.vectorstore)  # type: ignore[attr-defined]
        start = time.perf_counter()
        index_folder(docs, embeddings, store, chunk_size=128, chunk_overlap=16, show_progress=False)
        reindex = time.perf_counter() - start
        latencies = []
        for question in make_chunks(30, seed=99):
            start = time.perf_counter()
            retriever.invoke(question[:80])
            latencies.append(time.perf_counter() - start)
        mmr = index_folder(docs, embeddings, store, search_type="mmr", k=4, show_progress=False)
        mmr_latencies = []
        for question in make_chunks(10, seed=98):
            start = time.perf_counter()
            mmr.invoke(question[:80])
            mmr_latencies.append(time.perf_counter() - start)
    files = -(-len(chunks) // per_file)
    print(f"index build ({files} files, {n_chunks} chunks, persisted): {build:.1f} s")
    print(f"re-index, nothing changed: {reindex:.2f} s (no chunk re-embedded)")
    print(f"query latency, top-4 similarity: median {statistics.median(latencies) * 1000:.1f} ms")
    print(f"query latency, MMR k=4 of 20: median {statistics.median(mmr_latencies) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="chunks to embed (default 2000)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    parser.add_argument(
        "--rag-n", type=int, default=None, help="chunks to index for the RAG timings (default: --n)"
    )
    parser.add_argument("--no-rag", action="store_true", help="skip the index build / query timings")
    args = parser.parse_args()

    from langchain_localllm.demo_models.minilm import minilm_gguf_path

    model = minilm_gguf_path()
    chunks = make_chunks(args.n)
    print(f"model: {model.name}; {args.n} chunks of 10-60 words; {os.cpu_count()} CPUs")
    if not args.no_rag:  # first, so a long throughput run cut short still reports it
        rag_timings(model, chunks[: args.rag_n or args.n])
    rates = throughput(model, chunks, args.rounds)
    width = max(map(len, rates))
    for name, rate in rates.items():
        print(f"{name:<{width}}  {rate:7.1f} texts/s")
    ours = rates["ours LlamaCppEmbeddings"]
    checks = [
        ("ours / community LlamaCppEmbeddings", ours / rates["community LlamaCppEmbeddings"], 2.5),
        ("ours / raw llama-cpp-python per text", ours / rates["raw llama-cpp-python, 1 text/call"], 0.95),
        (
            "ours GPT4AllEmbeddings / raw gpt4all per text",
            rates["ours GPT4AllEmbeddings"] / rates["raw gpt4all Embed4All, 1 text/call"],
            0.95,
        ),
    ]
    for label, ratio, target in checks:
        print(f"{label}: {ratio:.2f}x (target >= {target}x) {'ok' if ratio >= target else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
