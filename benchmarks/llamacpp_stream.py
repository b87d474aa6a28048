"""Streamed tokens/s of LlamaCpp next to raw llama-cpp-python and langchain-community's LlamaCpp.

    python benchmarks/llamacpp_stream.py [--rounds 11] [--tokens 200]

On a generated ~25M-parameter model (random weights, real llama architecture), in
interleaved rounds so that machine noise hits every contestant alike, it measures:

* streamed tokens/s (median over rounds) of raw ``llama_cpp.Llama(...)(stream=True)``,
  ``langchain_localllm.LlamaCpp.stream`` and ``langchain_community.llms.LlamaCpp.stream``,
  all with the same load and sampling parameters; ratios against raw (target >= 0.97);
* first-token time of a *second instance* on the same model file against a warm call
  of the first instance, for ours (shared model cache) and for the community wrapper
  (which loads the model again per instance); target: ours within 5%.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from langchain_localllm import LlamaCpp, clear_model_cache
from langchain_localllm.demo_models import write_tiny_model

CACHE = Path.home() / ".cache" / "langchain-localllm" / "bench-models"
PROMPT = "The first man on the moon was"
LOAD = {"n_ctx": 2048, "n_batch": 512, "n_threads": 2, "verbose": False}
SAMPLING = {"temperature": 0.0, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1}


def stream_rate(stream: Callable[[], Iterator[str]], tokens: int) -> tuple[float, str]:
    """(tokens/s after the first token, the text) for one stream of ``tokens`` tokens.

    Every contestant generates the same ``tokens`` tokens (greedy, same prompt; the
    generated model practically never ends early), so rates compare like with like.
    """
    first = None
    pieces = []
    for piece in stream():
        if piece:
            first = first or time.perf_counter()
            pieces.append(piece)
    end = time.perf_counter()
    assert first is not None
    return (tokens - 1) / (end - first), "".join(pieces)


def first_token_seconds(stream: Iterator[str]) -> float:
    start = time.perf_counter()
    for piece in stream:
        if piece:
            break
    elapsed = time.perf_counter() - start
    if hasattr(stream, "close"):
        stream.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()

    import llama_cpp
    from langchain_community.llms import LlamaCpp as CommunityLlamaCpp

    path = write_tiny_model(CACHE / "bench-25m.gguf", size="bench", chat_format="llama2", context_length=2048)
    print(f"model: {path} ({path.stat().st_size / 1e6:.1f} MB), {args.tokens} tokens, {args.rounds} rounds")

    raw = llama_cpp.Llama(model_path=str(path), **LOAD)
    ours = LlamaCpp(model_path=str(path), max_tokens=args.tokens, **LOAD, **SAMPLING)
    ours.load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        community = CommunityLlamaCpp(model_path=str(path), max_tokens=args.tokens, **LOAD, **SAMPLING)

    def raw_stream() -> Iterator[str]:
        for part in raw(PROMPT, max_tokens=args.tokens, stream=True, **SAMPLING):
            yield part["choices"][0]["text"]

    contestants: dict[str, Callable[[], Iterator[str]]] = {
        "raw llama-cpp-python": raw_stream,
        "langchain_localllm.LlamaCpp": lambda: ours.stream(PROMPT),
        "langchain_community LlamaCpp": lambda: community.stream(PROMPT),
    }
    rates: dict[str, list[float]] = {name: [] for name in contestants}
    texts = {name: stream_rate(fn, args.tokens)[1] for name, fn in contestants.items()}  # warm-up
    assert len(set(texts.values())) == 1, "the contestants generated different texts"
    order = list(contestants)
    for round_no in range(args.rounds):
        # rotate who goes first, so no contestant always runs in the same spot of a round
        for name in order[round_no % len(order) :] + order[: round_no % len(order)]:
            rates[name].append(stream_rate(contestants[name], args.tokens)[0])

    base = rates["raw llama-cpp-python"]
    print(f"\n{'streamed tokens/s':<32}{'median':>10}{'ratio vs raw':>15}{'paired ratio':>15}")
    for name, values in rates.items():
        median = statistics.median(values)
        # ratio within each round (same machine state), then the median: steadier than medians' ratio
        paired = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(f"{name:<32}{median:>10.1f}{median / statistics.median(base):>15.3f}{paired:>15.3f}")

    # First token of a second instance vs a warm call of the first, each on a prompt the
    # model has not seen (so prompt processing happens, as in real use).
    prompts = iter(f"{PROMPT} {word}" for word in ("Neil", "Buzz", "Apollo", "Eagle") * 100)
    warm = statistics.median(first_token_seconds(ours.stream(next(prompts))) for _ in range(args.rounds))
    second_first = statistics.median(
        first_token_seconds(
            LlamaCpp(model_path=str(path), max_tokens=args.tokens, **LOAD, **SAMPLING).stream(next(prompts))
        )
        for _ in range(args.rounds)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        community_second = CommunityLlamaCpp(model_path=str(path), max_tokens=args.tokens, **LOAD, **SAMPLING)
        community_load = time.perf_counter() - start
    community_first = community_load + first_token_seconds(community_second.stream(next(prompts)))
    print(f"\n{'first token':<44}{'ms':>10}{'ratio vs warm':>15}")
    print(f"{'warm call, first instance (ours)':<44}{warm * 1000:>10.1f}{1.0:>15.3f}")
    print(
        f"{'second instance, same model (ours)':<44}{second_first * 1000:>10.1f}{second_first / warm:>15.3f}"
    )
    print(
        f"{'second instance (community, incl. load)':<44}{community_first * 1000:>10.1f}"
        f"{community_first / warm:>15.3f}"
    )
    clear_model_cache()


if __name__ == "__main__":
    main()
