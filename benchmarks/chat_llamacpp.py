"""ChatLlamaCpp next to raw llama-cpp-python chat and langchain-community's ChatLlamaCpp.

    python benchmarks/chat_llamacpp.py [--rounds 5] [--tokens 200] [--baseline-tree PATH]

On a generated ~25M-parameter model (random weights, real llama architecture, ChatML
template), in interleaved rounds so that machine noise hits every contestant alike:

* streamed tokens/s (median; from the first to the last answer token) of raw
  ``llama_cpp.Llama.create_chat_completion(stream=True)``, ``ChatLlamaCpp.stream`` and
  community ``ChatLlamaCpp.stream``, same load and sampling parameters; ratios against raw
  (target >= 0.97);
* time to first token of a conversation's second turn against its first turn, with a
  ~1,000-token system prompt (target <= 0.25x), directly after the first turn and with
  another conversation (its own ~1,000-token system prompt) run on the same model in
  between; for ours and for community's.

With ``--baseline-tree PATH`` (a checkout of another commit) the streamed tokens/s of ours and
of raw llama-cpp-python are measured with the package imported from this repository and from
``PATH``, in interleaved worker processes (``benchmarks/_trees.py``); raw is the control (the
same code in both), ours/raw the figure that must not get worse.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from benchmarks import _trees
from langchain_localllm import ChatLlamaCpp
from langchain_localllm.demo_models import write_tiny_model

CACHE = Path.home() / ".cache" / "langchain-localllm" / "bench-models"
LOAD = {"n_ctx": 4096, "n_batch": 512, "n_threads": 2, "verbose": False}
SAMPLING = {"temperature": 0.0, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1}
QUESTION = "Tell me about the first man on the moon."


def stream_rate(pieces: Iterator[str], tokens: int) -> float:
    """Tokens/s between the first and the last answer piece of a ``tokens``-token answer."""
    first = last = None
    for piece in pieces:
        if piece:
            last = time.perf_counter()
            first = first or last
    assert first is not None
    assert last is not None
    assert last > first
    return (tokens - 1) / (last - first)


def first_token_seconds(pieces: Iterator[str]) -> tuple[float, str]:
    """Seconds to the first answer piece, and the whole answer (the stream is finished)."""
    start = time.perf_counter()
    first = None
    text = []
    for piece in pieces:
        if piece:
            first = first or time.perf_counter()
            text.append(piece)
    assert first is not None
    return first - start, "".join(text)


def system_prompt(tag: str, model: ChatLlamaCpp, target: int = 1000) -> str:
    """A system prompt of about ``target`` tokens, different for each ``tag``."""
    words = f"{tag}: the sun and the moon and the stars over the sea and the river "
    text = words
    while model.get_num_tokens(text) < target:
        text += words
    return text


def turns(
    chat: Callable[[list[BaseMessage]], Iterator[str]], system_a: str, system_b: str
) -> dict[str, float]:
    """First and second turn TTFT of conversation A, plain and with B interleaved."""
    conversation: list[BaseMessage] = [SystemMessage(system_a), HumanMessage(QUESTION)]
    first, answer = first_token_seconds(chat(conversation))
    conversation += [AIMessage(answer), HumanMessage("And then?")]
    second, answer = first_token_seconds(chat(conversation))
    conversation += [AIMessage(answer), HumanMessage("Why?")]
    first_token_seconds(chat([SystemMessage(system_b), HumanMessage(QUESTION)]))  # another conversation
    interleaved, _ = first_token_seconds(chat(conversation))
    return {"first": first, "second": second / first, "interleaved": interleaved / first}


# --- measurements run in both trees by --baseline-tree (benchmarks/_trees.py) -------------


@functools.cache
def _stream_contestants(tokens: int) -> dict[str, Callable[[], Iterator[str]]]:
    import llama_cpp

    path = write_tiny_model(
        CACHE / "bench-25m-chatml-4k.gguf", size="bench", chat_format="chatml", context_length=4096
    )
    raw = llama_cpp.Llama(model_path=str(path), **LOAD)
    ours = ChatLlamaCpp(model_path=str(path), max_tokens=tokens, **LOAD, **SAMPLING)
    ours.load()
    messages = [{"role": "user", "content": QUESTION}]

    def raw_stream() -> Iterator[str]:
        for part in raw.create_chat_completion(messages, stream=True, max_tokens=tokens, **SAMPLING):
            yield part["choices"][0]["delta"].get("content") or ""

    def ours_stream() -> Iterator[str]:
        return (str(chunk.content) for chunk in ours.stream([HumanMessage(QUESTION)]))

    return {"raw": raw_stream, "ours": ours_stream}


def measure_stream(tokens: int) -> dict[str, float]:
    """One round: streamed tokens/s of raw and ours, and ours/raw."""
    contestants = _stream_contestants(tokens)
    rates = {name: stream_rate(stream(), tokens) for name, stream in contestants.items()}
    return {"raw tok/s": rates["raw"], "ours tok/s": rates["ours"], "ours/raw": rates["ours"] / rates["raw"]}


def compare_trees(args: argparse.Namespace) -> None:
    script = Path(__file__).resolve()
    print(f"streamed tokens/s, {args.tokens} tokens, {args.rounds} rounds per tree")
    results = _trees.side_by_side(
        script, "measure_stream", [{"tokens": args.tokens}], args.baseline_tree, args.rounds
    )
    _trees.print_table("ChatLlamaCpp.stream vs raw create_chat_completion", results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=200)
    _trees.add_argument(parser)
    args = parser.parse_args()
    if args.baseline_tree is not None:
        compare_trees(args)
        return

    import llama_cpp
    from langchain_community.chat_models import ChatLlamaCpp as CommunityChatLlamaCpp

    path = write_tiny_model(
        CACHE / "bench-25m-chatml-4k.gguf", size="bench", chat_format="chatml", context_length=4096
    )
    print(f"model: {path} ({path.stat().st_size / 1e6:.1f} MB), {args.tokens} tokens, {args.rounds} rounds")

    raw = llama_cpp.Llama(model_path=str(path), **LOAD)
    ours = ChatLlamaCpp(model_path=str(path), max_tokens=args.tokens, **LOAD, **SAMPLING)
    ours.load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        community = CommunityChatLlamaCpp(model_path=str(path), max_tokens=args.tokens, **LOAD, **SAMPLING)
    messages = [{"role": "user", "content": QUESTION}]

    def raw_stream() -> Iterator[str]:
        for part in raw.create_chat_completion(messages, stream=True, max_tokens=args.tokens, **SAMPLING):
            yield part["choices"][0]["delta"].get("content") or ""

    def lc_stream(model: Any) -> Callable[[], Iterator[str]]:
        return lambda: (str(chunk.content) for chunk in model.stream([HumanMessage(QUESTION)]))

    contestants = {"raw create_chat_completion": raw_stream, "ChatLlamaCpp (ours)": lc_stream(ours)}
    contestants["community ChatLlamaCpp"] = lc_stream(community)
    rates: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(args.rounds):
        for name, stream in contestants.items():
            rates[name].append(stream_rate(stream(), args.tokens))
    print("\nstreamed tokens/s (median)")
    base = statistics.median(rates["raw create_chat_completion"])
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:28s} {rate:8.1f} tok/s   {rate / base:5.3f}x raw")

    short = {"max_tokens": 16}
    ours_short = ours.model_copy(update=short)
    community.max_tokens = 16

    def ours_chat(conversation: list[BaseMessage]) -> Iterator[str]:
        return (str(chunk.content) for chunk in ours_short.stream(conversation))

    def community_chat(conversation: list[BaseMessage]) -> Iterator[str]:
        return (str(chunk.content) for chunk in community.stream(conversation))

    results: dict[str, list[dict[str, float]]] = {"ChatLlamaCpp (ours)": [], "community ChatLlamaCpp": []}
    for round_ in range(args.rounds):
        system_a = system_prompt(f"A{round_}", ours)  # new prompts each round: first turns are cold
        system_b = system_prompt(f"B{round_}", ours)
        results["ChatLlamaCpp (ours)"].append(turns(ours_chat, system_a, system_b))
        results["community ChatLlamaCpp"].append(turns(community_chat, system_a + " ", system_b + " "))
    tokens = ours.get_num_tokens(system_prompt("A0", ours))
    print(f"\ntime to first token, second turn / first turn ({tokens}-token system prompt, median)")
    for name, rows in results.items():
        first = statistics.median(r["first"] for r in rows)
        second = statistics.median(r["second"] for r in rows)
        interleaved = statistics.median(r["interleaved"] for r in rows)
        print(
            f"  {name:28s} first {first * 1000:7.1f} ms   second {second:5.3f}x   "
            f"with another conversation in between {interleaved:5.3f}x"
        )


if __name__ == "__main__":
    main()
