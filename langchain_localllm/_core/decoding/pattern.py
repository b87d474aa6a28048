"""A small grammar IR: what an answer may be, as data that can be rendered, parsed and measured.

A :class:`Grammar` maps rule names to patterns: :class:`Text` (a literal), :class:`CharSet`
(one code point out of ranges), :class:`Seq`, :class:`Alt`, :class:`Repeat` and :class:`Ref`
(a named rule, which may recurse). Each :class:`Repeat` carries a *role* saying what it is
in the answer, which is what budgeting needs to know:

- ``"elastic"``: content whose length is the writer's choice (a string's characters, a
  number's digits): bounded by the budget when the budget is short;
- ``"optional"``: structure that may be left out (an optional property, array items beyond
  ``minItems``, a number's fraction): left out when the budget is short;
- ``"space"``: whitespace between tokens: never needed, left out when the budget is short;
- ``"fixed"``: anything else (a count fixed by the grammar, ``\\uXXXX``'s four digits).

Lengths are in bytes of UTF-8 text (:func:`min_length`, :func:`max_length`); :func:`to_gbnf`
renders a grammar in llama.cpp's GBNF.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ELASTIC",
    "FIXED",
    "OPTIONAL",
    "SPACE",
    "Alt",
    "CharSet",
    "Grammar",
    "Pattern",
    "Ref",
    "Repeat",
    "Seq",
    "Text",
    "alt",
    "char_width",
    "charset",
    "complement",
    "gbnf_expression",
    "gbnf_literal",
    "max_length",
    "min_length",
    "seq",
    "shortest_text",
    "split_widths",
    "to_gbnf",
]

Role = Literal["elastic", "optional", "space", "fixed"]
ELASTIC: Role = "elastic"
OPTIONAL: Role = "optional"
SPACE: Role = "space"
FIXED: Role = "fixed"

MAX_CODE_POINT = 0x10FFFF
#: The first code point of each UTF-8 width (1..4 bytes).
_WIDTH_STARTS = (0, 0x80, 0x800, 0x10000, MAX_CODE_POINT + 1)


class Pattern:
    """Base class of the IR's nodes (immutable; compared by identity)."""

    __slots__ = ()


@dataclass(frozen=True, eq=False, slots=True)
class Text(Pattern):
    """A literal."""

    text: str


@dataclass(frozen=True, eq=False, slots=True)
class CharSet(Pattern):
    """One code point out of ``ranges`` (inclusive, sorted, disjoint, not adjacent)."""

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, eq=False, slots=True)
class Seq(Pattern):
    """The items one after the other (empty: the empty text)."""

    items: tuple[Pattern, ...]


@dataclass(frozen=True, eq=False, slots=True)
class Alt(Pattern):
    """Any one of the items (at least one)."""

    items: tuple[Pattern, ...]


@dataclass(frozen=True, eq=False, slots=True)
class Repeat(Pattern):
    """``item`` ``low`` to ``high`` times (``None``: no upper bound); ``role`` as the module says."""

    item: Pattern
    low: int
    high: int | None
    role: Role = FIXED


@dataclass(frozen=True, eq=False, slots=True)
class Ref(Pattern):
    """The rule ``name`` of the grammar."""

    name: str


@dataclass
class Grammar:
    """Named rules and the name of the start rule."""

    rules: dict[str, Pattern]
    root: str = "root"
    _min: dict[str, float] = field(default_factory=dict, repr=False)

    def resolve(self, ref: Ref) -> Pattern:
        return self.rules[ref.name]

    def shortest(self, p: Pattern) -> float:
        """Bytes of the shortest sentence of ``p`` (``inf`` if it has none)."""
        if not self._min:
            self._fix_minimums()
        return _min(p, self._min)

    def _fix_minimums(self) -> None:
        # Least fixed point: start at infinity and lower until nothing changes.
        self._min = dict.fromkeys(self.rules, float("inf"))
        changed = True
        while changed:
            changed = False
            for name, body in self.rules.items():
                value = _min(body, self._min)
                if value < self._min[name]:
                    self._min[name] = value
                    changed = True


def char_width(code_point: int) -> int:
    """Bytes of the code point in UTF-8."""
    return 1 if code_point < 0x80 else 2 if code_point < 0x800 else 3 if code_point < 0x10000 else 4


def charset(ranges: Iterable[tuple[int, int]]) -> CharSet:
    """A :class:`CharSet` of ``ranges`` (any order, may overlap)."""
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return CharSet(tuple((lo, hi) for lo, hi in merged))


def complement(ranges: Iterable[tuple[int, int]]) -> CharSet:
    """Every code point outside ``ranges``."""
    out, start = [], 0
    for lo, hi in charset(ranges).ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return CharSet(tuple(out))


def split_widths(chars: CharSet) -> dict[int, CharSet]:
    """The code points of ``chars`` by their UTF-8 width."""
    out: dict[int, CharSet] = {}
    for width in range(1, 5):
        low, high = _WIDTH_STARTS[width - 1], _WIDTH_STARTS[width] - 1
        part = [(max(lo, low), min(hi, high)) for lo, hi in chars.ranges if lo <= high and hi >= low]
        if part:
            out[width] = CharSet(tuple(part))
    return out


def seq(*items: Pattern) -> Pattern:
    """A sequence, nested sequences flattened and adjacent literals joined."""
    flat: list[Pattern] = []
    for item in items:
        for part in item.items if isinstance(item, Seq) else (item,):
            if isinstance(part, Text) and not part.text:
                continue
            if isinstance(part, Text) and flat and isinstance(flat[-1], Text):
                flat[-1] = Text(flat[-1].text + part.text)
            else:
                flat.append(part)
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def alt(*items: Pattern) -> Pattern:
    """An alternative, nested alternatives flattened (one item: the item itself)."""
    flat: list[Pattern] = []
    for item in items:
        flat.extend(item.items if isinstance(item, Alt) else (item,))
    if not flat:
        raise ValueError("an alternative needs at least one item")
    return flat[0] if len(flat) == 1 else Alt(tuple(flat))


# -- lengths ---------------------------------------------------------------------------------


def _min(p: Pattern, rules: dict[str, float]) -> float:
    if isinstance(p, Text):
        return len(p.text.encode("utf-8"))
    if isinstance(p, CharSet):
        return char_width(p.ranges[0][0]) if p.ranges else float("inf")
    if isinstance(p, Seq):
        return sum((_min(i, rules) for i in p.items), 0.0)
    if isinstance(p, Alt):
        return min(_min(i, rules) for i in p.items)
    if isinstance(p, Repeat):
        return 0 if p.low == 0 else p.low * _min(p.item, rules)
    if isinstance(p, Ref):
        return rules[p.name]
    raise TypeError(p)


def min_length(grammar: Grammar, p: Pattern | None = None) -> int:
    """Bytes of the shortest sentence of ``p`` (default: the grammar's root).

    Raises:
        ValueError: the pattern has no finite sentence (a rule that only recurses).
    """
    value = grammar.shortest(Ref(grammar.root) if p is None else p)
    if value == float("inf"):
        raise ValueError("the grammar has no finite sentence")
    return int(value)


def max_length(grammar: Grammar, p: Pattern | None = None) -> int | None:
    """Bytes of the longest sentence of ``p`` (default: the root); ``None`` if unbounded."""
    memo: dict[str, int | None] = {}
    active: set[str] = set()

    def walk(q: Pattern) -> int | None:
        if isinstance(q, Text):
            return len(q.text.encode("utf-8"))
        if isinstance(q, CharSet):
            return char_width(q.ranges[-1][1])
        if isinstance(q, Seq | Alt):
            parts = [walk(i) for i in q.items]
            if any(v is None for v in parts):
                return None
            values = [v for v in parts if v is not None]
            return sum(values) if isinstance(q, Seq) else max(values)
        if isinstance(q, Repeat):
            if q.high == 0:
                return 0
            inner = walk(q.item)
            if inner is None:
                return None
            if q.high is None:
                return None if inner > 0 else 0
            return q.high * inner
        if isinstance(q, Ref):
            if q.name in memo:
                return memo[q.name]
            if q.name in active:  # recursion through a rule: no bound
                return None
            active.add(q.name)
            memo[q.name] = walk(grammar.rules[q.name])
            active.discard(q.name)
            return memo[q.name]
        raise TypeError(q)

    return walk(Ref(grammar.root) if p is None else p)


def shortest_text(grammar: Grammar, p: Pattern | None = None) -> str:
    """A shortest sentence of ``p`` (default: the root): each choice its shortest option."""
    out: list[str] = []

    def walk(q: Pattern) -> None:
        if isinstance(q, Text):
            out.append(q.text)
        elif isinstance(q, CharSet):
            lo = q.ranges[0][0]
            out.append(chr(0x20 if lo <= 0x20 <= q.ranges[0][1] else lo))
        elif isinstance(q, Seq):
            for item in q.items:
                walk(item)
        elif isinstance(q, Alt):
            walk(min(q.items, key=grammar.shortest))
        elif isinstance(q, Repeat):
            for _ in range(q.low):
                walk(q.item)
        elif isinstance(q, Ref):
            walk(grammar.rules[q.name])
        else:
            raise TypeError(q)

    walk(Ref(grammar.root) if p is None else p)
    return "".join(out)


# -- GBNF ------------------------------------------------------------------------------------


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _class_char(cp: int) -> str:
    if 0x20 <= cp < 0x7F and chr(cp) not in '\\]["-^':
        return chr(cp)
    if cp <= 0xFF:
        return f"\\x{cp:02X}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04X}"
    return f"\\U{cp:08X}"


def _class(ranges: tuple[tuple[int, int], ...], negated: bool) -> str:
    parts = []
    for lo, hi in ranges:
        if lo == hi:
            parts.append(_class_char(lo))
        elif hi == lo + 1:
            parts.append(_class_char(lo) + _class_char(hi))
        else:
            parts.append(f"{_class_char(lo)}-{_class_char(hi)}")
    return f"[{'^' if negated else ''}{''.join(parts)}]"


def _charset_gbnf(chars: CharSet) -> str:
    if len(chars.ranges) == 1 and chars.ranges[0][0] == chars.ranges[0][1]:
        return gbnf_literal(chr(chars.ranges[0][0]))
    negated = complement(chars.ranges).ranges
    if negated and (len(negated) < len(chars.ranges) or chars.ranges[-1][1] == MAX_CODE_POINT):
        return _class(negated, True)
    return _class(chars.ranges, False)


def gbnf_expression(p: Pattern) -> str:
    """``p`` as a GBNF expression (rules referenced by name)."""
    if isinstance(p, Text):
        return gbnf_literal(p.text)
    if isinstance(p, CharSet):
        return _charset_gbnf(p)
    if isinstance(p, Ref):
        return p.name
    if isinstance(p, Seq):
        if not p.items:
            return '""'
        return " ".join(_atom(i, in_seq=True) for i in p.items)
    if isinstance(p, Alt):
        return " | ".join(gbnf_expression(i) for i in p.items)
    if isinstance(p, Repeat):
        low, high = p.low, p.high
        if high == 0:
            return '""'
        item = _atom(p.item, in_seq=False)
        if (low, high) == (1, 1):
            return item
        if (low, high) == (0, 1):
            return item + "?"
        if high is None:
            return item + ("*" if low == 0 else "+" if low == 1 else f"{{{low},}}")
        return item + (f"{{{low}}}" if low == high else f"{{{low},{high}}}")
    raise TypeError(p)


def _atom(p: Pattern, *, in_seq: bool) -> str:
    text = gbnf_expression(p)
    if isinstance(p, Alt) or (not in_seq and isinstance(p, Seq | Repeat) and text != '""'):
        return f"({text})"
    return text


def to_gbnf(grammar: Grammar) -> str:
    """The grammar in GBNF, starting at a rule ``root`` (listed first)."""
    if grammar.root != "root" and "root" in grammar.rules:
        raise ValueError("a grammar whose root is not `root` cannot also have a rule named `root`")
    lines = [] if grammar.root == "root" else [f"root ::= {grammar.root}"]
    order = sorted(grammar.rules, key=lambda name: name != "root")
    lines += [f"{name} ::= {gbnf_expression(grammar.rules[name])}" for name in order]
    return "\n".join(lines) + "\n"
