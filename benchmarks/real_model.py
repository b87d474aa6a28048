"""Speed on the real model (Gemma 3 270M, Q4_K_M; the ``[demo]`` extra), side by side in one run.

    python benchmarks/real_model.py [--rounds 5] [--tokens 64] [--threads 2]

Two tables, each in interleaved rounds (the order rotates every round, so machine noise hits
every contestant alike), medians over the rounds:

* **in process**: raw ``llama_cpp.Llama(...)(stream=True)``, ``langchain_localllm.LlamaCpp.stream``
  and ``langchain_community.llms.LlamaCpp.stream``, same load and greedy sampling settings;
* **over HTTP**: a plain ``requests`` SSE stream and ``langchain_localllm.Llamafile.stream``
  against the same llama-server (built by ``scripts/build_llama_cpp.sh``) serving the same file.

For each: prompt-eval tokens/s (prompt tokens over the time to the first token, on a ~250-token
prompt that differs every call, so no cached prefix helps) and generation tokens/s (tokens after
the first over the time from the first to the last), with ratios against the raw baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import requests

from langchain_localllm import LlamaCpp, Llamafile
from langchain_localllm.demo_models.gemma import gemma_gguf_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support
from tests.support.llama_server import LlamaServer

PASSAGE = (
    "The lighthouse on the cliff was built in 1870 to warn ships away from the rocks. For a hundred "
    "years a keeper climbed its spiral stairs every evening to light the lamp, and wrote the weather, "
    "the ships that passed and the state of the sea in a thick leather book. "
) * 4
SAMPLING = {"temperature": 0.0, "top_k": 40, "top_p": 0.95, "repeat_penalty": 1.3}

Stream = Callable[[str], Iterator[str]]


def prompts() -> Iterator[str]:
    """A new prompt every call (a different first word), so prompt evaluation always happens."""
    for n in count():
        yield f"Log entry {n}. {PASSAGE}\nThe keeper wrote:"


def measure(stream: Stream, prompt: str) -> tuple[float, float, int]:
    """(seconds to the first token, generation tokens/s after it, tokens) of one streamed answer."""
    start = time.perf_counter()
    first = last = 0.0
    tokens = 0
    for piece in stream(prompt):
        if not piece:
            continue
        last = time.perf_counter()
        first = first or last
        tokens += 1
    rate = (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0
    return first - start, rate, tokens


def race(contestants: dict[str, Stream], rounds: int, prompt_tokens: int, title: str) -> None:
    source = prompts()
    for stream in contestants.values():  # warm-up: loads, first allocations
        measure(stream, next(source))
    ttft: dict[str, list[float]] = {name: [] for name in contestants}
    gen: dict[str, list[float]] = {name: [] for name in contestants}
    order = list(contestants)
    for round_no in range(rounds):
        prompt = next(source)  # the same prompt for everyone in a round; each run re-evaluates it
        for name in order[round_no % len(order) :] + order[: round_no % len(order)]:
            first, rate, _ = measure(contestants[name], prompt)
            ttft[name].append(first)
            gen[name].append(rate)
    base = order[0]
    print(f"\n{title}")
    print(f"{'':<34}{'prompt eval tok/s':>18}{'ratio':>8}{'generation tok/s':>18}{'ratio':>8}")
    for name in order:
        pe = prompt_tokens / statistics.median(ttft[name])
        pe_base = prompt_tokens / statistics.median(ttft[base])
        g, g_base = statistics.median(gen[name]), statistics.median(gen[base])
        print(f"{name:<34}{pe:>18.1f}{pe / pe_base:>8.3f}{g:>18.1f}{g / g_base:>8.3f}")


def in_process(path: Path, tokens: int, threads: int, rounds: int) -> None:
    import llama_cpp
    from langchain_community.llms import LlamaCpp as CommunityLlamaCpp

    load = {"n_ctx": 1024, "n_batch": 512, "n_threads": threads, "verbose": False}
    raw = llama_cpp.Llama(model_path=str(path), **load)
    ours = LlamaCpp(model_path=str(path), max_tokens=tokens, **load, **SAMPLING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        community = CommunityLlamaCpp(model_path=str(path), max_tokens=tokens, **load, **SAMPLING)

    def raw_stream(prompt: str) -> Iterator[str]:
        for part in raw(prompt, max_tokens=tokens, stream=True, **SAMPLING):
            yield part["choices"][0]["text"]

    prompt_tokens = len(raw.tokenize(next(prompts()).encode()))
    race(
        {
            "raw llama-cpp-python": raw_stream,
            "langchain_localllm.LlamaCpp": ours.stream,
            "langchain_community LlamaCpp": community.stream,
        },
        rounds,
        prompt_tokens,
        f"in process, {threads} threads ({prompt_tokens}-token prompt, up to {tokens} tokens)",
    )


def over_http(path: Path, tokens: int, threads: int, rounds: int) -> None:
    with LlamaServer(path, n_ctx=1024, threads=threads, parallel=1) as server:
        session = requests.Session()

        def plain(prompt: str) -> Iterator[str]:
            payload = {
                "prompt": prompt,
                "n_predict": tokens,
                "stream": True,
                "cache_prompt": False,
                **SAMPLING,
            }
            with session.post(
                server.base_url + "/completion", json=payload, stream=True, timeout=300
            ) as answer:
                answer.raise_for_status()
                for line in answer.iter_lines():
                    if line.startswith(b"data: "):
                        event = json.loads(line[6:])
                        yield event.get("content", "")
                        if event.get("stop"):
                            return

        ours = Llamafile(base_url=server.base_url, n_predict=tokens, cache_prompt=False, **SAMPLING)  # type: ignore[arg-type]
        prompt_tokens = len(ours.get_token_ids(next(prompts()))) + 1  # + BOS
        race(
            {"plain requests stream": plain, "langchain_localllm.Llamafile": ours.stream},
            rounds,
            prompt_tokens,
            f"llama-server, {threads} threads ({prompt_tokens}-token prompt, up to {tokens} tokens)",
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    path = gemma_gguf_path(progress=True)
    print(f"model: {path.name} ({path.stat().st_size / 1e6:.1f} MB), {args.rounds} rounds")
    in_process(path, args.tokens, args.threads, args.rounds)
    over_http(path, args.tokens, args.threads, args.rounds)


if __name__ == "__main__":
    main()
