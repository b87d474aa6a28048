"""Map-reduce summarisation: through Llamafile, ours against langchain-classic's on one server;
in process, ``LlamaCpp`` with its batched engine against one call at a time.

    python benchmarks/summarize_map_reduce.py [--rounds 2] [--parallel 4] [--slot-ctx 1024]
        [--only server|in-process] [--in-process-model gemma|tiny]

Starts llama.cpp's ``llama-server`` (``bash scripts/build_llama_cpp.sh`` builds it) with
``--parallel 4`` on a generated model (real llama architecture, random weights, Llama-2
chat template), then summarises the Book of Ruth (tests/data, public domain) with

* ``langchain_localllm.chains.summarize_chain(llm, "map_reduce", max_concurrency=4)``:
  the map steps run four at a time, filling the server's slots;
* langchain-classic's ``load_summarize_chain(llm, chain_type="map_reduce")`` on the same
  chunks (it does not split: it is given the Documents our splitter made), whose map
  step calls the LLM once per chunk, one after the other.

Both use the same ``Llamafile`` settings (n_predict, temperature 0), so both send about the same
number of requests (printed) of the same sizes; the rounds are interleaved so that machine noise
hits both alike. Prints the median wall times and their ratio (target <= 0.5), and the
server ceiling: the same ratio for raw requests sent at once against one by one.

In process (same run, after the server part): ``summarize_chain(LlamaCpp(...), "map_reduce")``
over the Book of Ruth on Gemma 3 270M (``--in-process-model tiny``: the generated model),
``n_ctx`` = ``--slot-ctx``, temperature 0, with ``n_parallel=--parallel`` (the map steps, as
many at once by default, share each forward pass on the model's batched engine) against
``n_parallel=1`` (today's: the calls take turns on the model), rounds interleaved. Prints the
median wall times, their ratio, the engine's peak of sequences decoded together, and whether
the two summaries are equal (at temperature 0 they may part where the batched kernels round
otherwise, see ``llamacpp/batching.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document

from langchain_localllm import LlamaCpp, Llamafile
from langchain_localllm.chains import summarize_chain
from langchain_localllm.chains._llm import answer_tokens, context_window
from langchain_localllm.chains._split import split_to_budget
from langchain_localllm.demo_models import write_tiny_model
from langchain_localllm.prompts import format_prompt_selector

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support
from tests.support.llama_server import LlamaServer, LlamaServerError

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "tests" / "data" / "book_of_ruth_kjv.txt").read_text(encoding="utf-8")
CACHE = Path.home() / ".cache" / "langchain-localllm" / "bench-models"


class CallCounter(BaseCallbackHandler):
    """Counts LLM calls (prompts sent)."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        with self._lock:
            self.n += len(prompts)

    def take(self) -> int:
        with self._lock:
            n, self.n = self.n, 0
        return n


def same_chunks(llm: Llamafile) -> list[Document]:
    """The chunks our map_reduce makes, as Documents for the classic chain."""
    from langchain_localllm.chains.summarize import SUMMARIZE, SYSTEM

    prompt = format_prompt_selector(SUMMARIZE, SYSTEM).get_prompt(llm)
    count = llm.get_num_tokens
    window, answer = context_window(llm), answer_tokens(llm)
    overhead = count(prompt.format(text=""))
    budget = window - answer - overhead - max(16, window // 50)
    return [Document(page_content=chunk) for chunk in split_to_budget(TEXT, budget, count)]


def server_ceiling(llm: Llamafile, texts: list[str], parallel: int) -> float:
    """Wall time of ``parallel`` requests sent at once over the same ones sent one by one.

    The best any client can do on this server and machine: llama-server batches the
    slots' tokens, which pays off only as far as the cores are not already saturated.
    """
    from concurrent.futures import ThreadPoolExecutor

    batch = [f"[INST] Summarise: {text} [/INST]" for text in texts[: 2 * parallel]]
    start = time.perf_counter()
    for prompt in batch[:parallel]:
        llm.invoke(prompt)
    one_by_one = time.perf_counter() - start
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(llm.invoke, batch[parallel:]))
    return (time.perf_counter() - start) / one_by_one


def in_process(args: argparse.Namespace, tiny: Path) -> None:
    """``summarize_chain`` map_reduce in process: the batched engine against one call at a time."""
    from langchain_localllm.demo_models.gemma import gemma_gguf_path
    from langchain_localllm.llamacpp.sharing import engine_of

    path = tiny if args.in_process_model == "tiny" else gemma_gguf_path(progress=True)
    settings: dict[str, Any] = {"n_ctx": args.slot_ctx, "max_tokens": args.n_predict, "temperature": 0.0}
    shared = LlamaCpp(model_path=str(path), n_parallel=args.parallel, **settings)
    alone = LlamaCpp(model_path=str(path), n_parallel=1, **settings)  # the same loaded model
    chains = {
        f"engine (n_parallel={args.parallel})": summarize_chain(shared, "map_reduce", progress=False),
        "one at a time (n_parallel=1)": summarize_chain(alone, "map_reduce", progress=False),
    }
    print(f"\nin process: {path.name}, n_ctx {args.slot_ctx}, max_tokens {args.n_predict}, temperature 0")
    summaries = {name: str(chain.invoke(TEXT)) for name, chain in chains.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in chains}
    for round_no in range(args.rounds):
        order = list(chains)[round_no % 2 :] + list(chains)[: round_no % 2]
        for name in order:
            start = time.perf_counter()
            summaries[name] = str(chains[name].invoke(TEXT))
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in medians.items():
        print(f"{name:<32}{seconds:8.2f} s  {[round(t, 2) for t in times[name]]}")
    engine_s, alone_s = medians.values()
    peak = engine_of(shared.load(), args.parallel).stats().peak_active
    print(f"wall-time ratio engine/one-at-a-time: {engine_s / alone_s:.2f}; engine peak sequences {peak}")
    print(f"summaries equal: {len(set(summaries.values())) == 1}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (median is reported)")
    parser.add_argument("--parallel", type=int, default=4, help="llama-server slots and our max_concurrency")
    parser.add_argument("--slot-ctx", type=int, default=1024, help="context window of each slot")
    parser.add_argument("--n-predict", type=int, default=128, help="tokens generated per call")
    parser.add_argument("--size", default="small", choices=["tiny", "small", "bench"], help="generated model")
    parser.add_argument(
        "--threads", type=int, default=1, help="llama-server threads (2 thrash when the cores are busy)"
    )
    parser.add_argument("--only", choices=["server", "in-process"], help="run one part only")
    parser.add_argument("--in-process-model", default="gemma", choices=["gemma", "tiny"])
    args = parser.parse_args()

    model = write_tiny_model(
        CACHE / f"summarize-{args.size}-llama2.gguf", size=args.size, chat_format="llama2"
    )
    if args.only != "in-process":
        through_server(args, model)
    if args.only != "server":
        in_process(args, model)


def through_server(args: argparse.Namespace, model: Path) -> None:
    """Ours against langchain-classic's map_reduce, through Llamafile on one llama-server."""
    from langchain_classic.chains.summarize import load_summarize_chain

    try:
        server = LlamaServer(
            model, n_ctx=args.slot_ctx * args.parallel, parallel=args.parallel, threads=args.threads
        ).start()
    except LlamaServerError as error:
        sys.exit(f"cannot start llama-server: {error}")
    try:
        # No prompt cache: repeated rounds would otherwise reuse the slots' evaluated prompts.
        llm = Llamafile(
            base_url=server.base_url, n_predict=args.n_predict, temperature=0.0, seed=1, cache_prompt=False
        )
        chunks = same_chunks(llm)
        print(
            f"model {model.name}, {len(TEXT)} characters = {llm.get_num_tokens(TEXT)} tokens, "
            f"window {context_window(llm)} per slot, {len(chunks)} chunks, n_predict {args.n_predict}, "
            f"--parallel {args.parallel}"
        )
        ours = summarize_chain(llm, "map_reduce", max_concurrency=args.parallel, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # token_max: the classic default (3000) is larger than a slot's window.
            classic = load_summarize_chain(llm, chain_type="map_reduce", token_max=args.slot_ctx // 2)

        calls = CallCounter()

        def run_ours() -> str:
            return str(ours.invoke(TEXT, config={"callbacks": [calls]}))

        def run_classic() -> str:
            return str(
                classic.invoke({"input_documents": chunks}, config={"callbacks": [calls]})["output_text"]
            )

        run_ours()  # warm-up: first connections, tokenizer, server buffers
        ours_calls = calls.take()
        run_classic()
        print(f"LLM calls per summary: ours {ours_calls}, classic {calls.take()}")
        times: dict[str, list[float]] = {"ours": [], "classic": []}
        for _ in range(args.rounds):
            for name, run in (("ours", run_ours), ("classic", run_classic)):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        ours_s = statistics.median(times["ours"])
        classic_s = statistics.median(times["classic"])
        print(f"ours    (map_reduce, max_concurrency={args.parallel}): {ours_s:7.2f} s  {times['ours']}")
        print(f"classic (load_summarize_chain map_reduce):      {classic_s:7.2f} s  {times['classic']}")
        ratio = ours_s / classic_s
        print(
            f"wall-time ratio ours/classic: {ratio:.2f} (target <= 0.5) {'OK' if ratio <= 0.5 else 'MISSED'}"
        )
        ceiling = server_ceiling(llm, [d.page_content for d in chunks], args.parallel)
        print(f"server ceiling (raw requests at once / one by one): {ceiling:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
