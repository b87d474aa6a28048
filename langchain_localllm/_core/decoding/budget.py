"""Grammars that fit a token budget, and the minimum a grammar needs.

A token is at least one byte, so a grammar whose every sentence has at most N bytes cannot
make an answer need more than N tokens. Three uses:

- :func:`narrowed_grammar`: the rest of an answer being decoded, from its
  :class:`~.tracker.ParseState`, when the budget left is short: no new optional property,
  array item or whitespace; the open string must close in time; later values bounded. With
  ``budget=None`` only the structure is narrowed (values keep their length), for when a
  token tried to open what the budget cannot hold but there is room left for content.
- :func:`static_grammar`: a whole answer for a server that decodes alone: the budget split
  up front, optional properties and items kept where their share holds them, no whitespace.
- :func:`check_budget`: the typed error, before any token, when the budget is below the
  shortest valid answer (:func:`~.pattern.min_length`).

Shares: the slack above the shortest answer is split evenly among the parts that can use
it (strings, digits, and for the static grammar optional parts and items), a part that can
use less passing the rest on. :class:`SchemaBudget` does the same on a JSON schema
(``maxLength``/``maxItems``) for servers that take only a schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal

from langchain_localllm._core.decoding.pattern import (
    ELASTIC,
    FIXED,
    SPACE,
    Alt,
    CharSet,
    Grammar,
    Pattern,
    Ref,
    Repeat,
    Seq,
    Text,
    alt,
    char_width,
    gbnf_expression,
    max_length,
    min_length,
    seq,
    shortest_text,
    split_widths,
)
from langchain_localllm._core.decoding.tracker import ParseState
from langchain_localllm.errors import InvalidParameterError, TokenBudgetError

__all__ = ["SchemaBudget", "check_budget", "narrowed_grammar", "static_grammar"]

Policy = Literal["tail", "static"]
_INF = math.inf
#: Longest byte-exact chain for mixed-width string content; beyond it, one-byte characters.
CHAIN_LIMIT = 192


def narrowed_grammar(state: ParseState, budget: int | None) -> Grammar:
    """The grammar of what may follow ``state``: nothing optional, and at most ``budget`` bytes.

    Every sentence is a valid completion of the text read (a subset of the grammar's own
    completions). With a ``budget`` each is at most that many bytes; ``None`` leaves the
    values' lengths free and only drops optional properties, new items and whitespace.

    Raises:
        ValueError: ``budget`` is below ``state.shortest`` (no completion fits).
    """
    tracker = state.tracker
    if budget is not None and budget < state.shortest:
        raise ValueError(f"no completion fits {budget} bytes (the shortest is {state.shortest})")
    fitter = _Fitter(tracker.grammar, "tail")
    options = [
        fitter.fit(tracker.continuation(stack), budget)
        for stack in state.stacks
        if budget is None or tracker.shortest(stack) <= budget
    ]
    return fitter.grammar(alt(*options))


def static_grammar(grammar: Grammar, budget: int) -> Grammar:
    """``grammar`` cut to sentences of at most ``budget`` bytes, shares split up front.

    Raises:
        TokenBudgetError: ``budget`` is below the grammar's shortest sentence.
    """
    check_budget(grammar, budget)
    fitter = _Fitter(grammar, "static")
    return fitter.grammar(fitter.fit(Ref(grammar.root), budget))


def check_budget(
    grammar: Grammar,
    max_tokens: int,
    *,
    prompt_tokens: int | None = None,
    n_ctx: int | None = None,
    shortest_tokens: int | None = None,
) -> int:
    """The tokens the answer may use, or the typed error when they cannot hold a valid answer.

    The budget is ``max_tokens`` (``None``/``<= 0``: no limit of its own), or what the prompt
    leaves of the context when ``n_ctx`` is given and that is less. The minimum is the shortest
    sentence's bytes (a token is at least one byte: what any grammar engine can be held to),
    or, given ``shortest_tokens`` (that sentence in the model's own tokens, for a decoder that
    can write it as those tokens itself), those tokens when fewer.

    Raises:
        TokenBudgetError: the budget is below that minimum.
    """
    minimum = min_length(grammar)
    unit = "bytes: the model may need a token per byte, so"
    if shortest_tokens is not None and shortest_tokens < minimum:
        minimum, unit = shortest_tokens, "tokens by the model's own tokenizer:"
    limits = []
    if max_tokens is not None and max_tokens > 0:
        limits.append(("max_tokens", max_tokens))
    if n_ctx is not None:
        limits.append(("context", n_ctx - (prompt_tokens or 0)))
    if not limits:
        raise InvalidParameterError(
            "A token budget needs max_tokens or a context length.", parameter="max_tokens"
        )
    what, budget = min(limits, key=lambda item: item[1])
    if budget >= minimum:
        return budget
    example = shortest_text(grammar)
    shown = example if len(example) <= 120 else example[:117] + "..."
    if what == "max_tokens":
        fix = f"raise max_tokens to at least {minimum}"
    else:
        fix = (
            f"shorten the prompt by {minimum - budget} tokens or load the model with a larger n_ctx "
            f"(the prompt has {prompt_tokens} of n_ctx={n_ctx})"
        )
    raise TokenBudgetError(
        f"The answer has {budget} tokens left ({what}), but the shortest valid answer, {shown!r}, "
        f"is {minimum} {unit} {minimum} tokens are the minimum that guarantees a valid answer. "
        f"To fix it, {fix}.",
        parameter="max_tokens",
        minimum_tokens=minimum,
        budget=budget,
        prompt_tokens=prompt_tokens,
        n_ctx=n_ctx,
    )


class _Fitter:
    """Rewrites patterns of ``grammar`` so that each fits a byte budget (see the module)."""

    def __init__(self, grammar: Grammar, policy: Policy) -> None:
        self.source = grammar
        self.policy = policy
        min_length(grammar)
        self.rules: dict[str, Pattern] = {}
        self._names: set[str] = {*grammar.rules, "root"}
        self._refs: dict[tuple[str, int | None], str] = {}
        self._caps: dict[str, float] = {}
        self._chains: dict[str, tuple[str, int]] = {}

    def grammar(self, body: Pattern) -> Grammar:
        """A grammar with ``body`` as its root rule ``root`` and every rule it reaches."""
        rules = {**self.source.rules, **self.rules, "root": body}
        reached: dict[str, Pattern] = {}
        todo = ["root"]
        while todo:
            name = todo.pop()
            if name not in reached:
                reached[name] = rules[name]
                todo.extend(_refs_in(rules[name]))
        return Grammar(reached, "root")

    def _fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}{n}"
        self._names.add(name)
        return name

    def min(self, p: Pattern) -> int:
        return int(self.source.shortest(p))

    # -- how much more than its minimum a pattern can take --------------------------------
    def cap(self, p: Pattern, active: frozenset[str] = frozenset()) -> float:
        if isinstance(p, Text):
            return 0
        if isinstance(p, CharSet):
            return char_width(p.ranges[-1][1]) - char_width(p.ranges[0][0])
        if isinstance(p, Seq):
            return sum((self.cap(i, active) for i in p.items), 0.0)
        if isinstance(p, Alt):
            return max(self.min(i) + self.cap(i, active) for i in p.items) - self.min(p)
        if isinstance(p, Ref):
            if p.name in active:
                return _INF
            if p.name not in self._caps:
                self._caps[p.name] = self.cap(self.source.rules[p.name], active | {p.name})
            return self._caps[p.name]
        assert isinstance(p, Repeat)
        keeps_more = p.role == ELASTIC or (self.policy == "static" and p.role != SPACE)
        inner = self.cap(p.item, active)
        fixed = p.low * inner if p.low else 0  # (0 * inf is not 0)
        if not keeps_more or p.high == p.low:
            return fixed
        if p.high is None:
            return _INF if self.min(p.item) + inner > 0 else 0
        return fixed + (p.high - p.low) * (self.min(p.item) + inner)

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, p: Pattern, budget: int | None) -> Pattern:
        """``p`` narrowed (optional parts cut as the policy says), every sentence <= ``budget`` bytes."""
        if isinstance(p, Text):
            return p
        if isinstance(p, CharSet):
            if budget is None or char_width(p.ranges[-1][1]) <= budget:
                return p
            parts = [c for w, c in split_widths(p).items() if w <= budget]
            return CharSet(tuple(r for c in parts for r in c.ranges))
        if isinstance(p, Seq):
            if budget is None:
                return seq(*(self.fit(i, None) for i in p.items))
            mins = [self.min(i) for i in p.items]
            caps = [self.cap(i) for i in p.items]
            shares = _shares(budget - sum(mins), caps, [self._weight(i) for i in p.items])
            return seq(*(self.fit(i, m + s) for i, m, s in zip(p.items, mins, shares, strict=True)))
        if isinstance(p, Alt):
            return alt(*(self.fit(i, budget) for i in p.items if budget is None or self.min(i) <= budget))
        if isinstance(p, Ref):
            return self._fit_ref(p, budget)
        assert isinstance(p, Repeat)
        return self._fit_repeat(p, budget)

    def _weight(self, p: Pattern) -> int:
        """A part's claim on the slack: in a static split an optional property claims half
        of what a required value or a list's items do."""
        optional_field = isinstance(p, Repeat) and p.role != ELASTIC and p.low == 0 and p.high == 1
        return 1 if self.policy == "static" and optional_field else 2

    def _fit_ref(self, p: Ref, budget: int | None) -> Pattern:
        if budget is not None and self.policy == "static" and p.name != "root":
            bound = max_length(self.source, p)
            if bound is not None and bound <= budget:
                return p  # already fits: keep the rule as it is
        key = (p.name, budget)
        if key not in self._refs:
            name = self._fresh(f"{p.name}-{'n' if budget is None else budget}")
            self._refs[key] = name
            self.rules[name] = self.fit(self.source.rules[p.name], budget)
        return Ref(self._refs[key])

    def _fit_repeat(self, p: Repeat, budget: int | None) -> Pattern:
        low, high, role = p.low, p.high, p.role
        if high == 0:
            return Text("")
        cut = role == SPACE or (self.policy == "tail" and role != ELASTIC and high != low)
        if cut:
            high = low
        if budget is None:
            if high == 0:
                return Text("")
            return Repeat(self.fit(p.item, None), low, high, role)
        if role == ELASTIC:
            return self._elastic(p.item, low, high, budget)
        if high == low:
            if low == 0:
                return Text("")
            return Repeat(self.fit(p.item, budget // low), low, low, FIXED)
        # static policy, optional part: as many items as fit at about twice their minimum
        least = max(self.min(p.item), 1)
        if high == 1:
            count = 1 if budget >= least else 0
        else:
            count = max(low, budget // (2 * least) if high is None else min(high, budget // (2 * least)))
            if count == 0 and budget >= least:
                count = 1
        if count == 0:
            return Text("")
        return Repeat(self.fit(p.item, budget // count), low, count, role)

    def _elastic(self, item: Pattern, low: int, high: int | None, budget: int) -> Pattern:
        """``item`` ``low``..``high`` times in at most ``budget`` bytes."""
        least = self.min(item)
        most = max_length(self.source, item)
        if most is not None and least == most:  # one width: a count bounds the bytes
            top = budget // max(most, 1)
            return Repeat(item, low, top if high is None else min(high, top), ELASTIC)
        if most is not None and high is not None and high * most <= budget:
            return Repeat(item, low, high, ELASTIC)
        widths = _by_width(item, self.source)
        if widths is None:  # unknown widths: the shortest form of each item
            narrow = self.fit(item, max(least, 1))
            top = budget // max(least, 1)
            return Repeat(narrow, low, top if high is None else min(high, top), ELASTIC)
        smallest = min(widths)
        head = Repeat(widths[smallest], low, low, FIXED) if low else Text("")
        room = budget - low * smallest
        extra = None if high is None else high - low
        if extra is not None and most is not None and extra * most <= room:
            return seq(head, Repeat(item, 0, extra, ELASTIC))
        if extra is not None and extra < room // smallest:
            return seq(head, Repeat(widths[smallest], 0, min(extra, room // smallest), ELASTIC))
        return seq(head, self._chain(widths, room))

    def _chain(self, widths: dict[int, Pattern], room: int) -> Pattern:
        """Any sequence of the width classes in at most ``room`` bytes: rules ``<base>-j`` for
        ``j`` bytes left, shared by every string of the same characters."""
        smallest = min(widths)
        lead: Pattern = Text("")
        if room > CHAIN_LIMIT:  # a long run of one-width characters first, then the exact chain
            lead = Repeat(widths[smallest], 0, (room - CHAIN_LIMIT) // smallest, ELASTIC)
            room = CHAIN_LIMIT
        if room <= 0:
            return lead
        key = "|".join(f"{w}:{gbnf_expression(q)}" for w, q in sorted(widths.items()))
        base, built = self._chains.setdefault(key, (self._fresh("budget-chain"), 0))
        for j in range(built + 1, room + 1):
            options: list[Pattern] = [Text("")]
            for width, part in sorted(widths.items()):
                if width == j:
                    options.append(part)
                elif width < j:
                    options.append(seq(part, Ref(f"{base}-{j - width}")))
            self.rules[f"{base}-{j}"] = alt(*options)
            self._names.add(f"{base}-{j}")
        self._chains[key] = (base, max(built, room))
        return seq(lead, Ref(f"{base}-{room}"))


def _shares(slack: int, caps: Sequence[float], weights: Sequence[int] | None = None) -> list[int]:
    """``slack`` split among parts that can take more (``caps``) in proportion to ``weights``
    (default: evenly), none above its cap; what a part cannot take goes to the others."""
    shares = [0] * len(caps)
    weight = list(weights) if weights is not None else [1] * len(caps)
    open_parts = [i for i, c in enumerate(caps) if c > 0 and weight[i] > 0]
    while slack > 0 and open_parts:
        total = sum(weight[i] for i in open_parts)
        round_slack = slack
        still = []
        for i in open_parts:
            give = int(min(max(round_slack * weight[i] // total, 1), caps[i] - shares[i], slack))
            shares[i] += give
            slack -= give
            if shares[i] < caps[i]:
                still.append(i)
            if slack <= 0:
                break
        open_parts = still
    return shares


def _by_width(p: Pattern, grammar: Grammar, depth: int = 0) -> dict[int, Pattern] | None:
    """``p``'s sentences by their byte length (a pattern per length), if finitely many lengths."""
    if depth > 8:
        return None
    if isinstance(p, Text):
        return {len(p.text.encode("utf-8")): p}
    if isinstance(p, CharSet):
        return dict(split_widths(p))
    if isinstance(p, Ref):
        return _by_width(grammar.rules[p.name], grammar, depth + 1)
    if isinstance(p, Alt):
        merged: dict[int, list[Pattern]] = {}
        for item in p.items:
            part = _by_width(item, grammar, depth + 1)
            if part is None:
                return None
            for width, q in part.items():
                merged.setdefault(width, []).append(q)
        return {w: alt(*qs) for w, qs in merged.items()}
    items: Sequence[Pattern]
    if isinstance(p, Repeat):
        if p.low != p.high:
            return None
        inner = _by_width(p.item, grammar, depth + 1)
        if inner is not None and len(inner) == 1:  # one width: the repeat as it is
            ((width, _),) = inner.items()
            return {width * p.low: p}
        if p.low > 8:
            return None
        items = [p.item] * p.low
    else:
        assert isinstance(p, Seq)
        items = p.items
    acc: dict[int, Pattern] = {0: Text("")}
    for item in items:
        part = _by_width(item, grammar, depth + 1)
        if part is None:
            return None
        combined: dict[int, list[Pattern]] = {}
        for w1, q1 in acc.items():
            for w2, q2 in part.items():
                combined.setdefault(w1 + w2, []).append(seq(q1, q2))
        if len(combined) > 12:
            return None
        acc = {w: alt(*qs) for w, qs in combined.items()}
    return acc


def _refs_in(p: Pattern) -> list[str]:
    if isinstance(p, Ref):
        return [p.name]
    if isinstance(p, Seq | Alt):
        return [name for item in p.items for name in _refs_in(item)]
    if isinstance(p, Repeat):
        return _refs_in(p.item)
    return []


class SchemaBudget:
    """Tighten a JSON schema so that every answer it allows fits a byte budget (see
    :func:`~langchain_localllm._core.decoding.json_grammar.budget_schema` for the assumptions).

    Measures are bytes of answers with ``gap_bytes`` of whitespace at each place JSON allows
    it, ``char_bytes`` per string character and ``number_bytes`` per unbounded number.
    """

    def __init__(self, schema: dict[str, Any], *, char_bytes: int, gap_bytes: int, number_bytes: int) -> None:
        self.root = schema
        self.char_bytes = max(char_bytes, 1)
        self.gap_bytes = max(gap_bytes, 0)
        self.number_bytes = number_bytes
        self._least: dict[int, int] = {}

    def tighten(self, schema: dict[str, Any], budget: int) -> dict[str, Any]:
        least = self.least(schema)
        if budget < least:
            raise TokenBudgetError(
                f"max_tokens={budget} cannot hold the shortest valid answer to this schema: it is {least} "
                f"bytes (with {self.gap_bytes} bytes of whitespace wherever JSON allows it), and a token "
                f"may be a single byte. Raise max_tokens to at least {least}.",
                parameter="max_tokens",
                minimum_tokens=least,
                budget=budget,
            )
        return self.fit(schema, budget)

    # -- measuring ------------------------------------------------------------------------------
    def resolve(self, schema: Any) -> dict[str, Any]:
        """``schema`` with its ``$ref`` followed (a copy, so it can be tightened on its own)."""
        for _ in range(64):
            if not (isinstance(schema, dict) and "$ref" in schema):
                break
            ref, target = schema["$ref"], self.root
            for part in ref[2:].split("/") if ref.startswith("#/") else ():
                target = target.get(part, {}) if isinstance(target, dict) else {}
            schema = target
        return dict(schema) if isinstance(schema, dict) else {}

    def least(self, schema: Any) -> int:
        """Bytes of the shortest valid answer."""
        key = id(schema)
        if key not in self._least:
            from langchain_localllm._core.decoding.json_grammar import json_schema_grammar

            with_defs = {**self.resolve(schema), "$defs": self.root.get("$defs", {})}
            text = shortest_text(json_schema_grammar(with_defs))
            self._least[key] = len(text.encode("utf-8")) + self.gap_bytes * _gaps(text)
        return self._least[key]

    def most(self, schema: Any, seen: frozenset[str] = frozenset()) -> float:
        """Bytes of the longest answer ``schema`` allows as it is (``inf``: unbounded)."""
        if isinstance(schema, dict) and "$ref" in schema:
            if schema["$ref"] in seen:
                return _INF
            seen = seen | {schema["$ref"]}
        schema = self.resolve(schema)
        if "const" in schema or "enum" in schema:
            values = [schema["const"]] if "const" in schema else schema["enum"]
            return max(len(json.dumps(v, ensure_ascii=False).encode("utf-8")) for v in values)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return max(self.most(s, seen) for s in schema[key])
        kind = schema.get("type")
        if isinstance(kind, list):
            return max(self.most({**schema, "type": t}, seen) for t in kind)
        if kind == "string":
            high = schema.get("maxLength")
            return _INF if high is None else 2 + int(high) * self.char_bytes
        if kind in ("integer", "number"):
            return self._number_bytes(schema)
        if kind in ("boolean", "null"):
            return 5 if kind == "boolean" else 4
        if kind == "array" or "items" in schema:
            high = schema.get("maxItems")
            if high is None:
                return _INF
            return self._array_bytes(int(high), self.most(schema.get("items", {}), seen))
        props = schema.get("properties")
        if props and (kind == "object" or kind is None):
            return self._object_bytes({k: self.most(v, seen) for k, v in props.items()})
        return _INF

    def _number_bytes(self, schema: dict[str, Any]) -> int:
        low, high = schema.get("minimum"), schema.get("maximum")
        if schema.get("type") == "integer" and isinstance(low, int) and isinstance(high, int):
            return max(len(str(low)), len(str(high)))
        return self.number_bytes

    def _array_bytes(self, count: int, item: float) -> float:
        # "[" gap item ("," gap item)* gap "]"
        return 2 + self.gap_bytes * (count + 1) + count * item + max(count - 1, 0)

    def _object_bytes(self, values: dict[str, float]) -> float:
        # "{" gap key ":" gap value ("," gap key ":" gap value)* gap "}"
        n = len(values)
        return (
            2
            + self.gap_bytes * (2 * n + 1)
            + sum(len(_key(k)) + 1 + v for k, v in values.items())
            + max(n - 1, 0)
        )

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, schema: dict[str, Any], budget: int) -> dict[str, Any]:
        """``schema`` (a copy where changed) whose answers are at most ``budget`` bytes."""
        if self.most(schema) <= budget:
            return schema
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                schema[key] = [
                    self.fit(self.resolve(s), budget) for s in schema[key] if self.least(s) <= budget
                ]
                return schema
        kind = schema.get("type")
        if isinstance(kind, list):
            options = [{**schema, "type": t} for t in kind]
            return {"anyOf": [self.fit(o, budget) for o in options if self.least(o) <= budget]}
        if kind == "string":
            chars = max((budget - 2) // self.char_bytes, int(schema.get("minLength", 0)))
            high = schema.get("maxLength")
            schema["maxLength"] = chars if high is None else min(int(high), chars)
        elif kind == "integer" and budget < self._number_bytes(schema):
            # at most `budget` characters: bound the magnitude
            schema["maximum"] = min(schema.get("maximum", math.inf), 10**budget - 1)
            schema["minimum"] = max(schema.get("minimum", -math.inf), -(10 ** (budget - 1) - 1))
        elif kind == "array" or "items" in schema:
            self._fit_array(schema, budget)
        elif schema.get("properties") and kind in ("object", None):
            self._fit_object(schema, budget)
        return schema

    def _fit_array(self, schema: dict[str, Any], budget: int) -> None:
        item = schema.get("items", {})
        low, high = int(schema.get("minItems", 0)), schema.get("maxItems")
        least = max(self.least(item), 1)
        # as many items as fit at about twice their minimum, at least minItems
        count = low
        while (high is None or count < int(high)) and self._array_bytes(count + 1, 2 * least) <= budget:
            count += 1
        if (
            count == low
            and count == 0
            and (high is None or int(high) > 0)
            and self._array_bytes(1, least) <= budget
        ):
            count = 1
        schema["maxItems"] = count
        if count:
            per_item = (budget - self._array_bytes(count, 0)) // count
            schema["items"] = self.fit(self.resolve(item), int(per_item))

    def _fit_object(self, schema: dict[str, Any], budget: int) -> None:
        props: dict[str, Any] = schema["properties"]
        required = set(schema.get("required", ()))
        least = {k: self.least(v) for k, v in props.items()}
        kept = {k: float(least[k]) for k in props if k in required}
        for k in props:  # optional properties in order, while they fit at twice their minimum
            if k not in required and self._object_bytes({**kept, k: 2 * least[k]}) <= budget:
                kept[k] = least[k]
        names = [k for k in props if k in kept]
        slack = int(budget - self._object_bytes(kept))
        shares = _shares(slack, [self.most(props[k]) - least[k] for k in names])
        schema["properties"] = {
            k: self.fit(self.resolve(props[k]), least[k] + s) for k, s in zip(names, shares, strict=True)
        }
        schema["additionalProperties"] = False


def _key(key: str) -> str:
    return json.dumps(key)


def _gaps(text: str) -> int:
    """Places in compact JSON ``text`` where whitespace may go (after ``{ [ , :``, before ``} ]``)."""
    count, in_string, escaped, previous = 0, False, False, ""
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[,:" or (ch in "}]" and previous not in "{["):
            count += 1
        previous = ch
    return count
