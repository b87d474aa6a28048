"""Streaming through ``Llamafile`` vs plain ``requests`` and ``httpx`` streams vs community ``Llamafile``.

All clients talk to the same llama-server (built by ``scripts/build_llama_cpp.sh``)
serving a generated ~25M-parameter model (``write_tiny_model(size="bench")``), with the
same greedy settings, in interleaved rounds (the order rotates every round). For each
client: time to first token (TTFT, from sending the request to the first non-empty
token in hand) and streamed tokens/s (tokens after the first, over the time from the
first to the last). Medians over the rounds, with ratios against plain ``requests``
(target: >= 0.97 for tokens/s).

On a shared machine the server's speed varies from round to round, so a second table
measures what each client itself costs: the server's real SSE answer is recorded once
and replayed from a loopback socket as fast as the client reads it, giving the client's
time per token (its ceiling in tokens/s) without the model in the loop.

With ``--baseline-tree PATH`` the same two measurements run with the package imported from
this repository and from ``PATH`` (e.g. the base commit's tree), side by side in interleaved
rounds, with the ratio current / baseline (``benchmarks/_trees.py``); the plain clients are
measured in both as a control (their ratio shows the noise).

    python benchmarks/llamafile_stream.py [--rounds 7] [--tokens 200] [--threads 1] [--baseline-tree PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import requests

from langchain_localllm import Llamafile
from langchain_localllm.demo_models import write_tiny_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support
from benchmarks import _trees
from tests.support.llama_server import CACHE_DIR, LlamaServer

PROMPT = "The old ship sailed across the dark sea toward the city of stone, and the king said"
SAMPLING = {
    "temperature": 0.0,
    "top_k": 40,
    "top_p": 0.95,
    "min_p": 0.05,
    "repeat_penalty": 1.1,
    "repeat_last_n": 64,
    "seed": 1,
}


def timed(tokens: Iterator[str] | Iterator[tuple[float, str]]) -> tuple[float, float, int]:
    """(TTFT s, tokens/s after the first, token count) of a token iterator started now.

    Items may be ``(arrival time, token)`` pairs when the arrival was timed elsewhere.
    """
    start = time.perf_counter()
    first = last = 0.0
    count = 0
    for item in tokens:
        arrived, token = item if isinstance(item, tuple) else (time.perf_counter(), item)
        if not token:
            continue
        last = arrived
        if count == 0:
            first = last
        count += 1
    rate = (count - 1) / (last - first) if count > 1 and last > first else 0.0
    return first - start, rate, count


def plain_requests(base_url: str, n_predict: int) -> Callable[[], Iterator[str]]:
    session = requests.Session()
    payload = {"prompt": PROMPT, "n_predict": n_predict, "stream": True, **SAMPLING}

    def run() -> Iterator[str]:
        with session.post(base_url + "/completion", json=payload, stream=True, timeout=(5, 300)) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith(b"data: "):
                    event = json.loads(line[6:])
                    yield event.get("content", "")
                    if event.get("stop"):
                        return

    return run


def plain_httpx(base_url: str, n_predict: int) -> Callable[[], Iterator[str]]:
    client = httpx.Client(timeout=httpx.Timeout(300, connect=5))
    payload = {"prompt": PROMPT, "n_predict": n_predict, "stream": True, **SAMPLING}

    def run() -> Iterator[str]:
        with client.stream("POST", base_url + "/completion", json=payload) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    yield event.get("content", "")
                    if event.get("stop"):
                        return

    return run


def ours(base_url: str, n_predict: int) -> Callable[[], Iterator[str]]:
    llm = Llamafile(base_url=base_url, n_predict=n_predict, **SAMPLING)  # type: ignore[arg-type]
    return lambda: llm.stream(PROMPT)


def ours_async(base_url: str, n_predict: int) -> Callable[[], Iterator[str]]:
    """``astream`` consumed inside one coroutine; yields the tokens afterwards with their times."""
    llm = Llamafile(base_url=base_url, n_predict=n_predict, **SAMPLING)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()

    async def consume() -> list[tuple[float, str]]:
        return [(time.perf_counter(), token) async for token in llm.astream(PROMPT)]

    def run() -> Iterator[tuple[float, str]]:
        yield from loop.run_until_complete(consume())

    return run  # type: ignore[return-value]


def community(base_url: str, n_predict: int) -> Callable[[], Iterator[str]]:
    from langchain_community.llms import Llamafile as CommunityLlamafile

    llm = CommunityLlamafile(base_url=base_url, n_predict=n_predict, streaming=True, **SAMPLING)
    return lambda: llm.stream(PROMPT)


def record_stream(base_url: str, n_predict: int) -> bytes:
    """The raw SSE body of one real streamed answer."""
    payload = {"prompt": PROMPT, "n_predict": n_predict, "stream": True, **SAMPLING}
    with httpx.stream("POST", base_url + "/completion", json=payload, timeout=300) as response:
        return b"".join(response.iter_bytes())


Factory = Callable[[str, int], Callable[[], Iterator[str]]]

CLIENTS: dict[str, Factory] = {
    "plain requests": plain_requests,
    "plain httpx": plain_httpx,
    "Llamafile (ours, sync)": ours,
    "Llamafile (ours, async)": ours_async,
}
"""The clients of both tables (community ``Llamafile`` is added when measured alone)."""


def client_cost(body: bytes, factories: dict[str, Factory], repeats: int = 30) -> dict[str, float]:
    """Microseconds per token of each client, replaying ``body`` (one HTTP chunk per SSE event,
    as llama-server sends) ``repeats`` times from a loopback socket."""
    from tests.support.fault_server import FaultServer, stream

    events = [event + b"\n\n" for event in body.split(b"\n\n") if event.strip()]
    costs: dict[str, float] = {}
    with FaultServer(stream(events, "text/event-stream")) as server:
        for name, factory in factories.items():
            run = factory(server.base_url, 0)
            timed(run())  # warm-up
            start = time.perf_counter()
            count = sum(timed(run())[2] for _ in range(repeats))
            costs[name] = (time.perf_counter() - start) / count * 1e6
    return costs


def print_client_cost(body: bytes, costs: dict[str, float], repeats: int) -> None:
    events = sum(1 for event in body.split(b"\n\n") if event.strip())
    print(f"\nclient cost: a recorded answer of {events} events replayed {repeats}x per client\n")
    header = f"{'client':<26}{'us/token':>10}{'ceiling tok/s':>15}"
    print(header)
    print("-" * len(header))
    for name, per_token in costs.items():
        print(f"{name:<26}{per_token:>10.1f}{1e6 / per_token:>15.0f}")


# --- measurements run in both trees by --baseline-tree (benchmarks/_trees.py) -------------


@functools.cache
def _live_clients(base_url: str, n_predict: int) -> dict[str, Callable[[], Iterator[str]]]:
    return {name: factory(base_url, n_predict) for name, factory in CLIENTS.items()}


def measure_live(base_url: str, tokens: int) -> dict[str, float]:
    """One round on the live server: each client's TTFT and streamed tokens/s."""
    metrics: dict[str, float] = {}
    for name, run in _live_clients(base_url, tokens).items():
        ttft, rate, _ = timed(run())
        metrics[f"{name} TTFT ms"] = ttft * 1000
        metrics[f"{name} tok/s"] = rate
    return metrics


def measure_client_cost(body_path: str, repeats: int) -> dict[str, float]:
    """One round of :func:`client_cost` on the answer recorded in ``body_path``."""
    costs = client_cost(Path(body_path).read_bytes(), CLIENTS, repeats)
    return {f"{name} us/token": value for name, value in costs.items()}


def compare_trees(server: LlamaServer, baseline: Path, rounds: int, tokens: int) -> None:
    """Both measurements with the package of this repository and of ``baseline``."""
    script = Path(__file__).resolve()
    print(f"\nlive server, {rounds} interleaved rounds per tree, n_predict={tokens}:")
    live = _trees.side_by_side(
        script, "measure_live", [{"base_url": server.base_url, "tokens": tokens}], baseline, rounds
    )
    _trees.print_table("live server", live, lower_is_better={"TTFT"})
    with tempfile.TemporaryDirectory() as folder:
        body = Path(folder) / "answer.sse"
        body.write_bytes(record_stream(server.base_url, tokens))
        print(f"\nclient cost (recorded answer replayed), {rounds} interleaved rounds per tree:")
        cost = _trees.side_by_side(
            script, "measure_client_cost", [{"body_path": str(body), "repeats": 10}], baseline, rounds
        )
    _trees.print_table("client cost per token", cost, lower_is_better={"us/token"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--tokens", type=int, default=200, help="n_predict per request")
    parser.add_argument("--threads", type=int, default=1, help="llama-server threads (-t)")
    parser.add_argument("--repeats", type=int, default=30, help="replays per client in the client-cost table")
    _trees.add_argument(parser)
    args = parser.parse_args()

    model = write_tiny_model(
        CACHE_DIR / "bench-models" / "bench-llama2.gguf", size="bench", chat_format="llama2"
    )
    print(f"model: {model} ({model.stat().st_size / 1e6:.0f} MB)")
    with LlamaServer(model, n_ctx=2048, threads=args.threads, parallel=1) as server:
        print(f"server: {server.binary} on {server.base_url}, threads={args.threads}")
        if args.baseline_tree is not None:
            compare_trees(server, args.baseline_tree, args.rounds, args.tokens)
            return
        factories = {**CLIENTS, "community Llamafile": community}
        clients = {name: factory(server.base_url, args.tokens) for name, factory in factories.items()}
        for run in clients.values():  # warm-up: load caches, open connections
            timed(run())
        recorded = record_stream(server.base_url, args.tokens)
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in clients}
        names = list(clients)
        for round_index in range(args.rounds):
            order = names[round_index % len(names) :] + names[: round_index % len(names)]
            for name in order:
                results[name].append(timed(clients[name]()))

    base_ttft = statistics.median(r[0] for r in results["plain requests"])
    base_rate = statistics.median(r[1] for r in results["plain requests"])
    print(f"\n{args.rounds} interleaved rounds, n_predict={args.tokens}, medians:\n")
    header = f"{'client':<26}{'TTFT ms':>9}{'tok/s':>9}{'tokens':>8}{'tok/s ratio':>13}{'TTFT ratio':>12}"
    print(header)
    print("-" * len(header))
    for name, rows in results.items():
        ttft = statistics.median(r[0] for r in rows)
        rate = statistics.median(r[1] for r in rows)
        count = statistics.median(r[2] for r in rows)
        print(
            f"{name:<26}{ttft * 1000:>9.1f}{rate:>9.1f}{count:>8.0f}"
            f"{rate / base_rate:>13.3f}{base_ttft / ttft if ttft else 0:>12.3f}"
        )
    print("\nratios: tok/s vs plain requests (higher is better); TTFT ratio = plain TTFT / client TTFT.")
    print_client_cost(recorded, client_cost(recorded, factories, args.repeats), args.repeats)


if __name__ == "__main__":
    main()
