"""Fleet dispatch quality, and the client cost of ``ChatOpenAICompatible`` vs ``ChatOpenAI``.

1. Dispatch. Three loopback endpoints that serve one request at a time with a fixed
   latency (two fast, one three times slower) take a batch of requests from a client
   running a fixed number of them at once. Wall times:

   - ideal: the batch spread in proportion to speed, ``N / sum(1 / latency)`` (no HTTP
     costs at all: each request also pays about a millisecond to connect and answer);
   - least-in-flight: ``base_url=[...]`` (this package's fleet);
   - round-robin: each request to the next endpoint in turn (what a naive client or a
     DNS round-robin does).

2. Client cost per token. A real llama-server's streamed ``/v1/chat/completions`` answer
   is recorded once and replayed from a loopback socket as fast as the client reads it, so
   the model is out of the loop: the time each client spends per streamed token (median
   over interleaved rounds). ``ChatOpenAICompatible`` against langchain-openai's
   ``ChatOpenAI``; then both against the live server too.

With ``--baseline-tree PATH`` both measurements (the fleet's dispatch wall time and
``ChatOpenAICompatible``'s time per replayed token) also run with the package imported from
``PATH`` (e.g. the base commit's tree), side by side in interleaved rounds with the ratio
current / baseline (``benchmarks/_trees.py``); round-robin and ``ChatOpenAI`` are measured in
both as controls (their ratio shows the noise).

    python benchmarks/fleet_dispatch.py [--requests 420] [--latency 0.02] [--rounds 7] [--live-rounds 3]
        [--baseline-tree PATH]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from langchain_localllm import ChatOpenAICompatible

try:
    from langchain_localllm._core.http.client import HttpClient
    from langchain_localllm._core.http.fleet import FleetClient
except ImportError:  # a --baseline-tree from before _core had sub-packages
    from langchain_localllm._core.http.client import HttpClient  # type: ignore[no-redef]
    from langchain_localllm._core.http.fleet import FleetClient  # type: ignore[no-redef]
from langchain_localllm.demo_models import write_tiny_model
from langchain_localllm.openai_compatible.server import OPENAI_COMPATIBLE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support
from benchmarks import _trees
from tests.support.fault_server import FaultServer, respond, serial, stream
from tests.support.llama_server import CACHE_DIR, LlamaServer

# --- 1. dispatch -----------------------------------------------------------------------------


def run_batch(send: Callable[[], object], count: int, concurrency: int) -> float:
    """Wall seconds to send ``count`` requests, ``concurrency`` at a time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda _: send(), range(count)))
    return time.perf_counter() - start


def dispatch(count: int, latency: float, concurrency: int) -> dict[str, float]:
    latencies = [latency, latency, 3 * latency]
    results = {"ideal": count / sum(1 / s for s in latencies)}
    ok = respond(200, b'{"ok": true}')
    servers = [FaultServer(serial(s, ok)).start() for s in latencies]
    try:
        urls = [s.base_url for s in servers]
        fleet = FleetClient(urls, OPENAI_COMPATIBLE)
        results["least-in-flight"] = run_batch(lambda: fleet.get_json("/x"), count, concurrency)
        clients = [HttpClient(url, OPENAI_COMPATIBLE) for url in urls]
        turn = itertools.cycle(clients)
        lock = threading.Lock()

        def round_robin() -> object:
            with lock:
                client = next(turn)
            return client.get_json("/x")

        results["round-robin"] = run_batch(round_robin, count, concurrency)
        results["least-in-flight shares"] = [e.requests for e in fleet.fleet.status()]  # type: ignore[assignment]
    finally:
        for server in servers:
            server.stop()
    return results


# --- 2. client cost per token ------------------------------------------------------------------

PROMPT = "The old ship sailed across the dark sea toward the city of stone, and the king said"


def record_answer(base_url: str, tokens: int) -> bytes:
    """The raw SSE bytes of one streamed chat answer of exactly ``tokens`` tokens."""
    body = {
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", base_url + "/v1/chat/completions", json=body, timeout=120) as answer:
        answer.raise_for_status()
        return b"".join(answer.iter_bytes())


def per_token(client: object, tokens: int) -> float:
    """Seconds per streamed token for one full stream of ``client``."""
    start = time.perf_counter()
    count = sum(1 for chunk in client.stream(PROMPT) if chunk.content)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - start
    assert count >= tokens - 2, (count, tokens)
    return elapsed / count


def chat_clients(base_url: str, tokens: int) -> dict[str, object]:
    """``ChatOpenAICompatible`` and langchain-openai's ``ChatOpenAI``, with the same settings."""
    from langchain_openai import ChatOpenAI

    settings = {"max_tokens": tokens, "temperature": 0}
    ours = ChatOpenAICompatible(
        base_url=base_url, model="bench", dialect="llama-server", extra_body={"ignore_eos": True}, **settings
    )
    theirs = ChatOpenAI(
        base_url=base_url + "/v1",
        api_key="unused",  # type: ignore[arg-type]
        model="bench",
        stream_usage=True,
        extra_body={"ignore_eos": True},
        **settings,  # type: ignore[arg-type]
    )
    return {"ChatOpenAICompatible": ours, "ChatOpenAI": theirs}


def compare_clients(base_url: str, tokens: int, rounds: int) -> dict[str, float]:
    clients = chat_clients(base_url, tokens)
    for client in clients.values():  # warm up: imports, pools
        per_token(client, tokens)
    times: dict[str, list[float]] = {name: [] for name in clients}
    for round_ in range(rounds):
        order = list(clients.items())
        for name, client in order if round_ % 2 == 0 else reversed(order):
            times[name].append(per_token(client, tokens))
    return {name: statistics.median(values) for name, values in times.items()}


# --- measurements run in both trees by --baseline-tree (benchmarks/_trees.py) -------------


def measure_dispatch(count: int, latency: float, concurrency: int) -> dict[str, float]:
    """One dispatch batch: wall seconds of the fleet and of round-robin (the control)."""
    results = dispatch(count, latency, concurrency)
    return {
        "least-in-flight wall s": results["least-in-flight"],
        "round-robin wall s": results["round-robin"],
    }


@functools.cache
def _replay(answer_path: str) -> FaultServer:
    return FaultServer(stream([Path(answer_path).read_bytes()], "text/event-stream")).start()


@functools.cache
def _chat_clients(base_url: str, tokens: int) -> dict[str, object]:
    return chat_clients(base_url, tokens)


def measure_chat_cost(answer_path: str, tokens: int) -> dict[str, float]:
    """One round of client time per replayed token (µs), ``ChatOpenAI`` as the control."""
    clients = _chat_clients(_replay(answer_path).base_url, tokens)
    return {f"{name} us/token": per_token(client, tokens) * 1e6 for name, client in clients.items()}


def compare_trees(args: argparse.Namespace) -> None:
    """The dispatch batch and the replayed chat stream with this repository's package and the baseline's."""
    script = Path(__file__).resolve()
    call = {"count": args.requests, "latency": args.latency, "concurrency": args.concurrency}
    print(f"1. Dispatch: {args.requests} requests, {args.concurrency} at once, {args.rounds} rounds per tree")
    dispatched = _trees.side_by_side(script, "measure_dispatch", [call], args.baseline_tree, args.rounds)
    _trees.print_table("dispatch wall time", dispatched, lower_is_better={"wall"})
    model = write_tiny_model(
        CACHE_DIR / "bench-models" / "bench-chatml.gguf", size="bench", chat_format="chatml"
    )
    with tempfile.TemporaryDirectory() as folder:
        answer = Path(folder) / "answer.sse"
        with LlamaServer(model, n_ctx=1024, threads=2) as server:
            answer.write_bytes(record_answer(server.base_url, args.tokens))
        print(f"\n2. Client cost per replayed token ({args.tokens} tokens), {args.rounds} rounds per tree")
        call = {"answer_path": str(answer), "tokens": args.tokens}
        costs = _trees.side_by_side(script, "measure_chat_cost", [call], args.baseline_tree, args.rounds)
    _trees.print_table("client cost per token", costs, lower_is_better={"us/token"})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=420, help="requests in the dispatch batch")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request of a fast endpoint")
    parser.add_argument("--concurrency", type=int, default=6, help="requests the client runs at once")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per streamed answer")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds on the replayed answer")
    parser.add_argument("--live-rounds", type=int, default=3, help="interleaved rounds on the live server")
    _trees.add_argument(parser)
    args = parser.parse_args()
    if args.baseline_tree is not None:
        compare_trees(args)
        return

    def ms(factor: int) -> str:
        return f"{factor * args.latency * 1000:.0f}"

    print(
        f"1. Dispatch: {args.requests} requests, {args.concurrency} at a time, endpoints of {ms(1)}, "
        f"{ms(1)} and {ms(3)} ms (one request at a time each)"
    )
    results = dispatch(args.requests, args.latency, args.concurrency)
    ideal = results["ideal"]
    print(f"   {'strategy':<16} {'wall s':>8} {'vs ideal':>9}")
    for name in ("ideal", "least-in-flight", "round-robin"):
        print(f"   {name:<16} {results[name]:>8.3f} {results[name] / ideal:>8.2f}x")
    print(f"   least-in-flight requests per endpoint: {results['least-in-flight shares']}", flush=True)

    model = write_tiny_model(
        CACHE_DIR / "bench-models" / "bench-chatml.gguf", size="bench", chat_format="chatml"
    )
    with LlamaServer(model, n_ctx=1024, threads=2) as server:
        recorded = record_answer(server.base_url, args.tokens)
        print(
            f"\n2. Client cost per streamed token, {args.tokens}-token answers (median of interleaved rounds)"
        )
        with FaultServer(stream([recorded], "text/event-stream")) as replay:
            replayed = compare_clients(replay.base_url, args.tokens, args.rounds)
        ratio = replayed["ChatOpenAICompatible"] / replayed["ChatOpenAI"]
        print(f"   replayed server answer ({args.rounds} rounds): client time per token")
        for name, value in replayed.items():
            print(f"   {name:<22} {value * 1e6:>8.1f} us")
        print(f"   ChatOpenAICompatible / ChatOpenAI: {ratio:.2f}x (target <= 1.0)", flush=True)
        live = compare_clients(server.base_url, args.tokens, args.live_rounds)
    live_ratio = live["ChatOpenAICompatible"] / live["ChatOpenAI"]
    print(
        f"   live server ({args.live_rounds} rounds; the server's own speed dominates): wall time per token"
    )
    for name, value in live.items():
        print(f"   {name:<22} {value * 1e6:>8.1f} us")
    print(f"   ChatOpenAICompatible / ChatOpenAI: {live_ratio:.2f}x")


if __name__ == "__main__":
    main()
