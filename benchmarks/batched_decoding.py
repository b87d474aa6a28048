"""Concurrent requests on one in-process model: the batched engine next to one-at-a-time and llama-server.

    python benchmarks/batched_decoding.py [--concurrency 1,2,4,8] [--tokens 96] [--rounds 3]

On Gemma 3 270M (Q4_K_M), for each N of ``--concurrency``, N requests with different prompts
arrive at once, each asking for ``--tokens`` tokens at temperature 0. In interleaved rounds
(median over rounds; every contestant meets the same machine noise) it measures:

* **one at a time**: raw ``llama_cpp.Llama.create_completion``, the N requests in turn
  (today's in-process classes, which serialise calls behind the model's lock);
* **engine**: ``langchain_localllm.llamacpp.batching.BatchedEngine`` with ``n_parallel=N``
  on the same loaded ``Llama``;
* **LlamaCpp.batch** and **concurrent ainvoke**: our ``LlamaCpp(n_parallel=N)`` (a model of its
  own; its calls share the passes on the engine it keeps with the model, whose sequences each
  get the whole ``--n-ctx``), through ``batch`` and through ``asyncio.gather`` of ``ainvoke``
  (the first call of a gather runs alone, the others find the model busy and join the engine);
* **llama-server** ``--parallel N`` (the C++ ceiling): the N requests in turn, then all at
  once, streamed over loopback.

For each: aggregate tokens/s (completion tokens of all N requests / wall time from their
arrival to the last token), the ratio to the one-at-a-time run of the same stack, and time to
first token under load (mean and worst over the N requests, from their common arrival).
Target: the engine's ratio >= 0.95x llama-server's. The N=1 row is the single-stream check
(engine vs raw ``create_completion``). It also counts, per N, how many of the engine's
greedy answers equal the same prompt run alone (see ``batching.py`` on why some may not).

All contestants use the same threads (``--threads``), context (``--n-ctx``, shared by the
slots) and flash attention setting (``--flash-attn``, off by default as in llama-cpp-python).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_localllm import LlamaCpp
from langchain_localllm.demo_models.gemma import gemma_gguf_path
from langchain_localllm.llamacpp.batching import BatchedEngine
from tests.support.llama_server import LlamaServer

PROMPTS = [
    "The first man on the moon was",
    "Once upon a time, in a small village by the sea,",
    "The recipe for a good pancake batter is",
    "Paris is the capital of",
    "The three laws of motion are",
    "My favourite programming language is",
    "In 1492, Columbus",
    "The best way to learn a new language is",
]


@dataclass
class Run:
    """One workload run: wall seconds, completion tokens, each request's time to first token, texts."""

    seconds: float
    tokens: int
    first_token: list[float]
    texts: list[str]

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def one_at_a_time(llm: Any, prompts: list[str], tokens: int) -> Run:
    start = time.perf_counter()
    firsts, texts, total = [], [], 0
    for prompt in prompts:
        first, parts = None, []
        with counting(llm) as count:  # the sampled tokens, end of generation excluded
            for part in llm.create_completion(prompt, max_tokens=tokens, temperature=0.0, stream=True):
                if first is None:
                    first = time.perf_counter() - start
                parts.append(part["choices"][0]["text"])
        total += count[0]
        firsts.append(first if first is not None else time.perf_counter() - start)
        texts.append("".join(parts))
    return Run(time.perf_counter() - start, total, firsts, texts)


@contextlib.contextmanager
def counting(llm: Any) -> Iterator[list[int]]:
    """Count the tokens ``llm.generate`` yields in the block (end of generation excluded)."""
    import llama_cpp

    count = [0]
    generate = type(llm).generate.__get__(llm)

    def counted(*args: Any, **kwargs: Any) -> Iterator[int]:
        for token in generate(*args, **kwargs):
            count[0] += not llama_cpp.llama_vocab_is_eog(llm._model.vocab, token)
            yield token

    llm.generate = counted
    try:
        yield count
    finally:
        del llm.generate


class _Watch(BaseCallbackHandler):
    """One request's time to its first token and its completion tokens, from LangChain's callbacks."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.first: float | None = None
        self.tokens = 0

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.start

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        info = response.generations[0][0].generation_info or {}
        self.tokens = int(info.get("usage", {}).get("completion_tokens", 0))


def ours_run(llm: LlamaCpp, prompts: list[str], gather: bool) -> Run:
    """``llm.batch(prompts)``, or ``asyncio.gather`` of one ``ainvoke`` per prompt."""
    start = time.perf_counter()
    watches = [_Watch(start) for _ in prompts]
    configs: list[Any] = [{"callbacks": [w]} for w in watches]
    if gather:

        async def all_at_once() -> list[str]:
            return list(
                await asyncio.gather(*(llm.ainvoke(p, c) for p, c in zip(prompts, configs, strict=True)))
            )

        texts = asyncio.run(all_at_once())
    else:
        texts = llm.batch(prompts, configs)
    seconds = time.perf_counter() - start
    firsts = [w.first if w.first is not None else seconds for w in watches]
    return Run(seconds, sum(w.tokens for w in watches), firsts, texts)


def engine_run(engine: BatchedEngine, prompts: list[str], tokens: int) -> Run:
    start = time.perf_counter()
    streams = [engine.submit(prompt, max_tokens=tokens, temperature=0.0) for prompt in prompts]
    results = [stream.result() for stream in streams]
    seconds = time.perf_counter() - start
    firsts = [
        (r.first_token_seconds or seconds) + (s.submitted_at - start)
        for r, s in zip(results, streams, strict=True)
    ]
    return Run(seconds, sum(r.completion_tokens for r in results), firsts, [r.text for r in results])


def server_request(server: LlamaServer, prompt: str, tokens: int, start: float) -> tuple[float, int, str]:
    """(time to first token from ``start``, tokens predicted, text) of one streamed /completion."""
    body = {"prompt": prompt, "n_predict": tokens, "temperature": 0.0, "stream": True, "cache_prompt": False}
    connection = http.client.HTTPConnection(server.host, server.port, timeout=600)
    try:
        connection.request("POST", "/completion", json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        first, parts, predicted = None, [], 0
        for raw in response:
            line = raw.decode("utf-8").strip()
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if first is None and event.get("content"):
                first = time.perf_counter() - start
            parts.append(event.get("content", ""))
            if event.get("stop"):
                timings = event.get("timings", {})
                predicted = int(event.get("tokens_predicted") or timings.get("predicted_n", 0))
                break
        return (first if first is not None else time.perf_counter() - start), predicted, "".join(parts)
    finally:
        connection.close()


def server_run(server: LlamaServer, prompts: list[str], tokens: int, concurrent: bool) -> Run:
    start = time.perf_counter()
    answers: list[tuple[float, int, str]] = [(0.0, 0, "")] * len(prompts)

    def ask(i: int) -> None:
        answers[i] = server_request(server, prompts[i], tokens, start)

    if concurrent:
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for i in range(len(prompts)):
            ask(i)
    seconds = time.perf_counter() - start
    return Run(seconds, sum(a[1] for a in answers), [a[0] for a in answers], [a[2] for a in answers])


def race(contestants: dict[str, Callable[[], Run]], rounds: int) -> dict[str, list[Run]]:
    """Each contestant once per round, the starting one rotating; a warm-up round first."""
    for run in contestants.values():
        run()
    runs: dict[str, list[Run]] = {name: [] for name in contestants}
    order = list(contestants)
    for round_no in range(rounds):
        for name in order[round_no % len(order) :] + order[: round_no % len(order)]:
            runs[name].append(contestants[name]())
    return runs


def summary(runs: list[Run]) -> tuple[float, float, float]:
    """(median tokens/s, median mean time to first token, median worst time to first token)."""
    return (
        statistics.median(r.rate for r in runs),
        statistics.median(statistics.mean(r.first_token) for r in runs),
        statistics.median(max(r.first_token) for r in runs),
    )


def compare(llm: Any, path: Path, n: int, args: argparse.Namespace) -> str | None:
    """Print the rows of N concurrent requests; the engine-vs-llama-server verdict line."""
    prompts, tokens, threads = PROMPTS[:n], args.tokens, args.threads
    engine = BatchedEngine(llm, n_parallel=n, n_ctx=args.n_ctx)
    ours = LlamaCpp(
        model_path=str(path),
        n_ctx=args.n_ctx,
        n_threads=threads,
        temperature=0.0,
        max_tokens=tokens,
        repeat_penalty=1.0,  # as create_completion's default
        n_parallel=max(n, 1),
        model_kwargs={"n_threads_batch": threads, "flash_attn": args.flash_attn},
    )
    alone, engine_name = "one at a time (create_completion)", f"engine, n_parallel={n}"
    contestants: dict[str, Callable[[], Run]] = {
        alone: lambda: one_at_a_time(llm, prompts, tokens),
        engine_name: lambda: engine_run(engine, prompts, tokens),
        "LlamaCpp.batch": lambda: ours_run(ours, prompts, gather=False),
        "LlamaCpp, concurrent ainvoke": lambda: ours_run(ours, prompts, gather=True),
    }
    server = None
    if not args.no_server:
        flash = ["-fa", "on" if args.flash_attn else "off"]
        server = LlamaServer(
            path, n_ctx=args.n_ctx, threads=threads, parallel=n, extra_args=["-tb", str(threads), *flash]
        ).start()
        contestants["llama-server, one at a time"] = lambda: server_run(server, prompts, tokens, False)
        contestants[f"llama-server --parallel {n}"] = lambda: server_run(server, prompts, tokens, True)
    try:
        runs = race(contestants, args.rounds)
    finally:
        engine.close()
        ours.load().close_attached()
        if server is not None:
            server.stop()
    names = list(contestants)
    rates = {name: summary(runs[name]) for name in names}
    for name in names:
        base = "llama-server, one at a time" if name.startswith("llama-server") else alone
        rate, ttft_mean, ttft_max = rates[name]
        ratio = rate / rates[base][0]
        print(f"{n:>2}  {name:<34}{rate:>8.1f}{ratio:>8.2f}{ttft_mean:>10.2f}s{ttft_max:>9.2f}s")
    references = [fresh_greedy(llm, p, tokens) for p in prompts]
    for name in (engine_name, "LlamaCpp.batch"):
        same = sum(a == b for a, b in zip(references, runs[name][-1].texts, strict=True))
        print(f"    greedy answers of {name} equal to the prompt run alone: {same}/{n}")
    if server is None:
        return None
    theirs = rates[f"llama-server --parallel {n}"][0] / rates["llama-server, one at a time"][0]
    return "\n  ".join(
        f"N={n}: {name} ratio {rates[name][0] / rates[alone][0]:.2f} / llama-server ratio {theirs:.2f}"
        f" = {rates[name][0] / rates[alone][0] / theirs:.2f}"
        for name in (engine_name, "LlamaCpp.batch")
    )


def fresh_greedy(llm: Any, prompt: str, tokens: int) -> str:
    """The greedy answer of the prompt read from scratch (no prefix kept from the last call)."""
    llm.reset()
    return str(llm.create_completion(prompt, max_tokens=tokens, temperature=0.0)["choices"][0]["text"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", default="1,2,4,8", help="comma-separated request counts N")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=2048, help="KV cells, shared by the N slots")
    parser.add_argument("--flash-attn", action="store_true", help="flash attention on, for every contestant")
    parser.add_argument("--no-server", action="store_true", help="skip llama-server")
    args = parser.parse_args()
    counts = [int(n) for n in args.concurrency.split(",")]
    if max(counts) > len(PROMPTS):
        parser.error(f"at most {len(PROMPTS)} concurrent requests (one prompt each)")

    import llama_cpp

    path: Path = gemma_gguf_path(progress=True)
    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        flash_attn=args.flash_attn,
        verbose=False,
    )
    print(
        f"model: {path.name}; {args.tokens} tokens per request, temperature 0, {args.threads} threads, "
        f"n_ctx {args.n_ctx} shared by the slots, flash attention {'on' if args.flash_attn else 'off'}, "
        f"{args.rounds} rounds (+1 warm-up)\n"
    )
    header = f"{'N':>2}  {'contestant':<34}{'tok/s':>8}{'ratio':>8}{'TTFT mean':>11}{'TTFT max':>10}"
    print(header)
    print("-" * len(header))
    verdicts = [verdict for n in counts if (verdict := compare(llm, path, n, args)) is not None]
    if verdicts:
        print("\nengine's speed-up over one-at-a-time against llama-server's (target >= 0.95):")
        print("\n".join("  " + v for v in verdicts))


if __name__ == "__main__":
    main()
