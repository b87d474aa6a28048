"""The RAG vector store at scale: LocalVectorStore against the previous InMemoryVectorStore path.

    python benchmarks/rag_store.py                  # 100k chunks, both stores (about 15 minutes on 2 cores)
    python benchmarks/rag_store.py --n 1000000 --skip-baseline   # the 1M run (the baseline needs ~40 GB)
    python benchmarks/rag_store.py --minilm 2000    # also: index build throughput with the real MiniLM

Contestants, on the same generated chunks (384-dim embedding-like vectors, see
``tests/fixtures/vectors.py``; ~300 characters of text and a source/chunk metadata each):

* **baseline**: what ``index_folder`` did before, langchain-core's ``InMemoryVectorStore``
  persisted as one JSON file (vectors as base64 float32), rewritten on every save;
* **LocalVectorStore**: SQLite rows + the usearch HNSW snapshot (``langchain_localllm.rag``).

Each store is built in one child process; a second, fresh child opens it and measures
open time, query latency (``similarity_search_by_vector``, k=10, documents included) p50
and p99, recall@10 against exact numpy search, and replacing one file's 50 chunks (delete
50, add 50, persist: time and bytes passed to ``write()``, from ``/proc/self/io``), then
reports its own peak RSS. ``--isotropic`` uses standard-normal vectors instead (the worst
case for any approximate index: all distances are nearly equal).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from tests.fixtures.vectors import embedding_like, isotropic, recall_at

K = 10
WORDS = [
    "local",
    "private",
    "model",
    "index",
    "chunk",
    "vector",
    "search",
    "answer",
    "source",
    "file",
    "page",
    "token",
]


def text_of(i: int) -> str:
    rng = np.random.default_rng(i)
    return f"chunk {i}: " + " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), 45))


def metadata_of(i: int) -> dict[str, Any]:
    return {"source": f"/docs/file{i // 50}.txt", "chunk": i % 50}


def vectors(args: argparse.Namespace, n: int, seed: int) -> np.ndarray:
    return (isotropic if args.isotropic else embedding_like)(n, seed)


def wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the baseline: InMemoryVectorStore + one JSON file (the code index_folder used) -------


def baseline_save(store: Any, path: Path) -> None:
    records = [
        {
            "id": r["id"],
            "text": r["text"],
            "metadata": r["metadata"],
            "vector": base64.b64encode(np.asarray(r["vector"], "<f4").tobytes()).decode("ascii"),
        }
        for r in store.store.values()
    ]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump({"format": "langchain-localllm-vectorstore", "version": 1, "records": records}, handle)
    os.replace(tmp, path)


def baseline_load(path: Path, embedding: Any) -> Any:
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(embedding)
    for r in json.loads(path.read_text(encoding="utf-8"))["records"]:
        vector = np.frombuffer(base64.b64decode(r["vector"]), "<f4").tolist()
        store.store[r["id"]] = {"id": r["id"], "text": r["text"], "metadata": r["metadata"], "vector": vector}
    return store


# --- phases (each in its own process) ------------------------------------------------------


def embeddings() -> Any:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    return DeterministicFakeEmbedding(size=384)


def build(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.dir)
    corpus = vectors(args, args.n, seed=1)
    queries = vectors(args, args.queries, seed=2)
    unit = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    truth = [[f"c{j}" for j in np.argsort(-(unit @ q))[:K]] for q in queries]
    (folder / "truth.json").write_text(json.dumps({"queries": queries.tolist(), "truth": truth}))
    del unit
    ids = [f"c{i}" for i in range(args.n)]
    start = time.perf_counter()
    if args.store == "baseline":
        from langchain_core.vectorstores import InMemoryVectorStore

        store = InMemoryVectorStore(embeddings())
        for i in range(args.n):
            store.store[ids[i]] = {
                "id": ids[i],
                "text": text_of(i),
                "metadata": metadata_of(i),
                "vector": corpus[i].tolist(),
            }
        baseline_save(store, folder / "index.json")
    else:
        from langchain_localllm.rag import LocalVectorStore

        new = LocalVectorStore(embeddings(), folder / "store", exact_search_limit=args.n + 1)
        for lo in range(0, args.n, 20_000):
            hi = min(lo + 20_000, args.n)
            new.add_vectors(
                [text_of(i) for i in range(lo, hi)],
                corpus[lo:hi],
                [metadata_of(i) for i in range(lo, hi)],
                ids=ids[lo:hi],
            )
        new.optimize()
    raw = corpus.nbytes + sum(len(text_of(i).encode()) for i in range(args.n))
    return {"build_s": time.perf_counter() - start, "raw_mb": raw / 1e6}


def query(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.dir)
    spec = json.loads((folder / "truth.json").read_text())
    queries, truth = spec["queries"][: args.queries], spec["truth"][: args.queries]
    from langchain_localllm.rag import LocalVectorStore  # imports are not part of "open"
    from langchain_localllm.rag.store import _usearch_index

    _usearch_index()
    start = time.perf_counter()
    store: Any
    if args.store == "baseline":
        store = baseline_load(folder / "index.json", embeddings())
    else:
        store = LocalVectorStore(embeddings(), folder / "store")
    open_s = time.perf_counter() - start
    store.similarity_search_by_vector(queries[0], k=K)  # maps the graph, reads the delta
    first_s = time.perf_counter() - start
    found, times = [], []
    for q in queries:
        t = time.perf_counter()
        docs = store.similarity_search_by_vector(q, k=K)
        times.append(time.perf_counter() - t)
        found.append([d.id for d in docs])
    # Replace one file's 50 chunks, as index_folder does for a changed file.
    new_vectors = vectors(args, 50, seed=3)
    before, t = wchar(), time.perf_counter()
    old_ids = [f"c{i}" for i in range(50)]
    new_ids = [f"n{i}" for i in range(50)]
    texts = [text_of(10**9 + i) for i in range(50)]
    metas = [metadata_of(i) for i in range(50)]
    if args.store == "baseline":
        store.delete(old_ids)
        for i in range(50):
            store.store[new_ids[i]] = {
                "id": new_ids[i],
                "text": texts[i],
                "metadata": metas[i],
                "vector": new_vectors[i].tolist(),
            }
        baseline_save(store, folder / "index.json")
    else:
        store.add_vectors(texts, new_vectors, metas, ids=new_ids)
        store.delete(old_ids)
    replace_s, written = time.perf_counter() - t, wchar() - before
    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "truth.json")
    ms = sorted(x * 1000 for x in times)
    return {
        "open_s": open_s,
        "first_s": first_s,
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))],
        "recall": recall_at(found, truth),
        "replace_s": replace_s,
        "replace_mb": written / 1e6,
        "disk_mb": disk / 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "queries": len(queries),
    }


def child(phase: str, store: str, folder: Path, args: argparse.Namespace, queries: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--phase", phase, "--store", store, "--dir", str(folder)]
    argv += ["--n", str(args.n), "--queries", str(queries)] + (["--isotropic"] if args.isotropic else [])
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{phase} {store} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {store} {phase}: {result}", flush=True)  # kept even if a later phase fails
    return result


# --- index build with the real MiniLM ----------------------------------------------------------


def minilm(n: int) -> None:
    from langchain_localllm import LlamaCppEmbeddings
    from langchain_localllm.demo_models.minilm import minilm_gguf_path
    from langchain_localllm.rag import index_folder

    emb = LlamaCppEmbeddings(model_path=str(minilm_gguf_path()))
    texts = [text_of(i) for i in range(n)]
    emb.embed_documents(texts[:8])  # load the model
    start = time.perf_counter()
    emb.embed_documents(texts)
    alone = n / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for f in range(0, n, 50):  # 50 chunks per file, one chunk per paragraph
            (docs / f"f{f}.txt").write_text("\n\n".join(texts[f : f + 50]), encoding="utf-8")
        start = time.perf_counter()
        retriever = index_folder(
            docs, emb, Path(tmp) / "index", chunk_size=64, chunk_overlap=0, show_progress=False
        )
        took = time.perf_counter() - start
        chunks = len(retriever.vectorstore)  # type: ignore[arg-type]
    print(f"\nIndex build with the real all-MiniLM-L6-v2 ({n} chunks of ~300 characters):")
    print(f"  LlamaCppEmbeddings.embed_documents alone: {alone:8.1f} chunks/s")
    print(f"  index_folder into LocalVectorStore:       {chunks / took:8.1f} chunks/s ({chunks} chunks)")
    print(f"  store + loading + splitting share:        {1 - (chunks / took) / alone:8.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="chunks (default 100,000)")
    parser.add_argument("--queries", type=int, default=200, help="queries for LocalVectorStore (default 200)")
    parser.add_argument("--baseline-queries", type=int, default=20, help="queries for the baseline (20)")
    parser.add_argument("--skip-baseline", action="store_true", help="only LocalVectorStore (for 1M)")
    parser.add_argument("--isotropic", action="store_true", help="standard-normal vectors (worst case)")
    parser.add_argument(
        "--minilm", type=int, default=0, help="also time index_folder with MiniLM on N chunks"
    )
    parser.add_argument("--phase", choices=("build", "query"), help=argparse.SUPPRESS)
    parser.add_argument("--store", choices=("baseline", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps((build if args.phase == "build" else query)(args)))
        return

    if args.n <= 0:  # --n 0 --minilm N: only the MiniLM build throughput
        minilm(args.minilm)
        return
    kind = "isotropic" if args.isotropic else "embedding-like"
    print(
        f"{args.n:,} chunks, 384-dim {kind} vectors, k={K}; each store built, then opened in a fresh process"
    )
    rows = []
    contestants = [("new", "LocalVectorStore", args.queries)]
    if not args.skip_baseline:
        contestants.insert(0, ("baseline", "InMemoryVectorStore+JSON", args.baseline_queries))
    for store, label, queries in contestants:
        with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
            built = child("build", store, Path(tmp), args, queries)
            print(f"  {label}: built in {built['build_s']:.1f} s", flush=True)
            rows.append((label, built, child("query", store, Path(tmp), args, queries)))
    raw = rows[0][1]["raw_mb"]
    print(f"\nraw vectors + text: {raw:,.0f} MB")
    head = (
        "| store | queries | query p50 | query p99 | recall@10 | open (first answer) | peak RSS "
        "| replace 50 chunks | written | on disk |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for label, _, r in rows:
        print(
            f"| {label} | {r['queries']} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['recall']:.3f} | "
            f"{r['open_s']:.2f} s ({r['first_s']:.2f} s) | "
            f"{r['peak_rss_mb']:,.0f} MB ({r['peak_rss_mb'] / raw:.1f}x raw) | "
            f"{r['replace_s'] * 1000:.0f} ms | {r['replace_mb']:.2f} MB | {r['disk_mb']:,.0f} MB |"
        )
    if len(rows) == 2:
        old, new = rows[0][2], rows[1][2]
        ratios = {
            "query p50": old["p50_ms"] / new["p50_ms"],
            "open": old["open_s"] / new["open_s"],
            "peak RSS": old["peak_rss_mb"] / new["peak_rss_mb"],
            "replace": old["replace_s"] / new["replace_s"],
            "written": old["replace_mb"] / new["replace_mb"],
        }
        print("\nbaseline / LocalVectorStore: " + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items()))
    if args.minilm:
        minilm(args.minilm)


if __name__ == "__main__":
    main()
