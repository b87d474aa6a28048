"""Random sentences of a grammar in the IR of :mod:`langchain_localllm._core.decoding.pattern`:
test inputs drawn from the language itself, to be judged by jsonschema or llama.cpp."""

from __future__ import annotations

import random

from langchain_localllm._core.decoding.pattern import (
    Alt,
    CharSet,
    Grammar,
    Pattern,
    Ref,
    Repeat,
    Seq,
    Text,
    min_length,
)


def sentence(grammar: Grammar, rng: random.Random, p: Pattern | None = None, *, wide: bool = True) -> str:
    """A random sentence of ``p`` (default: the root); deep recursion takes the shortest ways."""
    out: list[str] = []

    def walk(q: Pattern, depth: int) -> None:
        if isinstance(q, Text):
            out.append(q.text)
        elif isinstance(q, CharSet):
            ranges = [
                (lo, min(hi, 0xD7FF) if lo < 0xD800 else hi)
                for lo, hi in q.ranges
                if not 0xD800 <= lo <= 0xDFFF
            ]
            if not wide or rng.random() < 0.8:
                ranges = [(lo, min(hi, 0x7E)) for lo, hi in ranges if lo <= 0x7E] or ranges
            lo, hi = rng.choice(ranges)
            out.append(chr(rng.randint(lo, hi)))
        elif isinstance(q, Seq):
            for item in q.items:
                walk(item, depth)
        elif isinstance(q, Alt):
            if depth > 6:
                walk(min(q.items, key=lambda i: min_length(grammar, i)), depth + 1)
            else:
                walk(rng.choice(q.items), depth + 1)
        elif isinstance(q, Repeat):
            top = q.low + 3 if q.high is None else q.high
            count = q.low if depth > 6 else rng.randint(q.low, min(top, q.low + 3))
            for _ in range(count):
                walk(q.item, depth + 1)
        elif isinstance(q, Ref):
            walk(grammar.rules[q.name], depth + 1)

    walk(Ref(grammar.root) if p is None else p, 0)
    return "".join(out)
