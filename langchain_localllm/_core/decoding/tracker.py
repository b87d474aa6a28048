"""Follow generated text through a grammar, piece by piece, without I/O.

:class:`Tracker` compiles a :class:`~.pattern.Grammar` once; :meth:`Tracker.start` gives the
:class:`ParseState` before the first character, and :meth:`ParseState.feed` the state after
more text (``None`` if the text leaves the grammar's language). A state knows the bytes of the
shortest valid completion of what is open (:attr:`ParseState.shortest`: the current string's
closing quote, the required fields not yet written, the closing brackets), whether the text
so far is a whole sentence (:attr:`ParseState.complete`), and its parse stacks, from which
:mod:`.budget` builds the narrowed grammar for the rest.

The parser keeps every parse that is still possible (a set of stacks), so ambiguous
grammars (``anyOf``, keys sharing a prefix) are followed exactly. A stack is a tuple of
``(node, position)`` frames, bottom first; sequences and repeats pass their last item on
without keeping a frame, so stacks stay as deep as the document's nesting.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from langchain_localllm._core.decoding.pattern import (
    ELASTIC,
    Alt,
    CharSet,
    Grammar,
    Pattern,
    Ref,
    Repeat,
    Seq,
    Text,
    char_width,
    min_length,
    seq,
    shortest_text,
)

__all__ = ["ParseState", "Tracker"]

_TEXT, _SET, _SEQ, _ALT, _REP, _REF = range(6)
_MAX_DEPTH = 4096

Frame = tuple[int, int]
Stack = tuple[Frame, ...]


class Tracker:
    """A grammar compiled for incremental parsing."""

    def __init__(self, grammar: Grammar) -> None:
        self.grammar = grammar
        min_length(grammar)  # fixes the rules' minimums (and checks there is a sentence)
        self.kind: list[int] = []
        self.arg: list[Any] = []
        self.patterns: list[Pattern] = []
        self.min: list[int] = []
        self.pieces: list[int] = []
        """Per node: elastic parts (strings, digits) in its shortest sentence."""
        self._rule_pieces: dict[str, int] = {}
        self._rest: list[Any] = []  # per node: what `rest` needs (suffix sums, widths, ...)
        self._ids: dict[int, int] = {}
        self._rules: dict[str, int] = {}
        self.root = self._compile(Ref(grammar.root))

    @classmethod
    def for_schema(cls, schema: dict[str, Any]) -> Tracker:
        """A tracker for the JSON documents valid against ``schema`` (as the grammar allows them)."""
        from langchain_localllm._core.decoding.json_grammar import json_schema_grammar

        return cls(json_schema_grammar(schema))

    def start(self) -> ParseState:
        """The state before any text."""
        return ParseState(self, (((self.root, 0),),))

    # -- compilation -------------------------------------------------------------------------
    def _node(self, p: Pattern, kind: int, arg: Any) -> int:
        nid = len(self.kind)
        self.kind.append(kind)
        self.arg.append(arg)
        self.patterns.append(p)
        value = self.grammar.shortest(p)
        self.min.append(int(value) if value != float("inf") else 1 << 40)
        self.pieces.append(self._pieces(p, frozenset()))
        self._rest.append(None)
        self._ids[id(p)] = nid
        return nid

    def _compile(self, p: Pattern) -> int:
        known = self._ids.get(id(p))
        if known is not None:
            return known
        if isinstance(p, Ref):
            if p.name in self._rules:
                return self._rules[p.name]
            nid = self._node(p, _REF, -1)
            self._rules[p.name] = nid
            self.arg[nid] = self._compile(self.grammar.rules[p.name])
            return nid
        if isinstance(p, Text):
            nid = self._node(p, _TEXT, p.text)
            sizes = [len(ch.encode("utf-8")) for ch in p.text]
            self._rest[nid] = [sum(sizes[k:]) for k in range(len(sizes) + 1)]
            return nid
        if isinstance(p, CharSet):
            mask = 0
            for lo, hi in p.ranges:
                for cp in range(lo, min(hi, 127) + 1):
                    mask |= 1 << cp
            starts = [lo for lo, _ in p.ranges]
            nid = self._node(p, _SET, (mask, starts, p.ranges))
            self._rest[nid] = char_width(p.ranges[0][0])
            return nid
        if isinstance(p, Seq | Alt):
            nid = self._node(p, _SEQ if isinstance(p, Seq) else _ALT, ())
            children = tuple(self._compile(i) for i in p.items)
            self.arg[nid] = children
            if isinstance(p, Seq):
                mins = [self.min[c] for c in children]
                self._rest[nid] = [sum(mins[k:]) for k in range(len(mins) + 1)]
            return nid
        if isinstance(p, Repeat):
            nid = self._node(p, _REP, None)
            child = self._compile(p.item)
            if self.min[child] == 0 and p.high is None:
                raise ValueError("a repeat without bound needs an item that cannot be empty")
            self.arg[nid] = (child, p.low, p.high)
            return nid
        raise TypeError(p)

    def _pieces(self, p: Pattern, active: frozenset[str]) -> int:
        if isinstance(p, Seq):
            return sum(self._pieces(i, active) for i in p.items)
        if isinstance(p, Alt):
            return self._pieces(min(p.items, key=self.grammar.shortest), active)
        if isinstance(p, Repeat):
            return (p.role == ELASTIC) + p.low * self._pieces(p.item, active)
        if isinstance(p, Ref):
            if p.name in active:
                return 0
            if p.name not in self._rule_pieces:
                self._rule_pieces[p.name] = self._pieces(self.grammar.rules[p.name], active | {p.name})
            return self._rule_pieces[p.name]
        return 0

    # -- parsing -----------------------------------------------------------------------------
    def rest(self, frame: Frame) -> int:
        """Bytes of the shortest text that completes ``frame`` (its node from its position)."""
        nid, k = frame
        kind = self.kind[nid]
        if kind in (_TEXT, _SEQ):
            return int(self._rest[nid][k])
        if kind == _REP:
            child, low, _ = self.arg[nid]
            return max(low - k, 0) * self.min[child]
        if kind == _SET:
            return int(self._rest[nid])
        return self.min[nid]

    def shortest(self, stack: Stack) -> int:
        return sum(self.rest(frame) for frame in stack)

    def later_pieces(self, stack: Stack) -> int:
        """Elastic parts (strings, digits) in the shortest completion of ``stack``, not counting
        the one being written."""
        count = 0
        for nid, k in stack:
            kind = self.kind[nid]
            if kind == _SEQ:
                count += sum(self.pieces[c] for c in self.arg[nid][k:])
            elif kind == _REP:
                child, low, _ = self.arg[nid]
                if self.patterns[nid].role != ELASTIC:  # type: ignore[attr-defined]
                    count += max(low - k, 0) * self.pieces[child]
            elif kind in (_ALT, _REF):
                count += self.pieces[nid]
        return count

    def rest_pattern(self, frame: Frame) -> Pattern:
        """What may complete ``frame``, as a pattern."""
        nid, k = frame
        p, kind = self.patterns[nid], self.kind[nid]
        if kind == _TEXT:
            assert isinstance(p, Text)
            return Text(p.text[k:])
        if kind == _SEQ:
            assert isinstance(p, Seq)
            return seq(*p.items[k:])
        if kind == _REP:
            assert isinstance(p, Repeat)
            return Repeat(p.item, max(p.low - k, 0), None if p.high is None else p.high - k, p.role)
        return p

    def continuation(self, stack: Stack) -> Pattern:
        """What may complete ``stack``: the rest of each frame, the top one first."""
        return seq(*(self.rest_pattern(frame) for frame in reversed(stack)))

    def expand(self, stack: Stack, out: dict[Stack, None]) -> None:
        """Add to ``out`` the stacks ``stack`` can become without reading a character:
        each with a literal or a character set on top, or ``()`` (the sentence may end)."""
        kind_of, arg_of = self.kind, self.arg
        while True:
            if not stack:
                out[stack] = None
                return
            if len(stack) > _MAX_DEPTH:
                raise ValueError("the grammar recurses without reading text")
            nid, k = stack[-1]
            kind = kind_of[nid]
            if kind == _TEXT:
                if k < len(arg_of[nid]):
                    out[stack] = None
                    return
                stack = stack[:-1]
            elif kind == _SET:
                out[stack] = None
                return
            elif kind == _SEQ:
                items = arg_of[nid]
                if k >= len(items):
                    stack = stack[:-1]
                elif k == len(items) - 1:
                    stack = (*stack[:-1], (items[k], 0))
                else:
                    stack = (*stack[:-1], (nid, k + 1), (items[k], 0))
            elif kind == _REF:
                stack = (*stack[:-1], (arg_of[nid], 0))
            elif kind == _ALT:
                base = stack[:-1]
                for child in arg_of[nid]:
                    self.expand((*base, (child, 0)), out)
                return
            else:  # _REP
                child, low, high = arg_of[nid]
                base = stack[:-1]
                if high is None or k < high:
                    if high is not None and k + 1 == high:
                        self.expand((*base, (child, 0)), out)
                    else:
                        self.expand((*base, (nid, k + 1), (child, 0)), out)
                if k < low:
                    return
                stack = base

    def consume(self, stack: Stack, ch: str) -> Stack | None:
        """``stack`` (expanded) after reading ``ch``, or None."""
        if not stack:
            return None
        nid, k = stack[-1]
        if self.kind[nid] == _TEXT:
            text = self.arg[nid]
            if text[k] != ch:
                return None
            return stack[:-1] if k + 1 == len(text) else (*stack[:-1], (nid, k + 1))
        mask, starts, ranges = self.arg[nid]
        cp = ord(ch)
        if cp < 128:
            return stack[:-1] if (mask >> cp) & 1 else None
        i = bisect_right(starts, cp) - 1
        return stack[:-1] if i >= 0 and ranges[i][1] >= cp else None


class ParseState:
    """Where the text read so far stands in the grammar (immutable)."""

    __slots__ = ("_shortest", "stacks", "tracker")

    def __init__(self, tracker: Tracker, stacks: tuple[Stack, ...]) -> None:
        self.tracker = tracker
        self.stacks = stacks
        """Every parse still possible (unexpanded: a frame on top may still be entered)."""
        self._shortest: int | None = None

    def feed(self, text: str) -> ParseState | None:
        """The state after ``text``; None if no sentence of the grammar starts with what was read."""
        tracker, stacks = self.tracker, self.stacks
        for ch in text:
            ready: dict[Stack, None] = {}
            for stack in stacks:
                tracker.expand(stack, ready)
            moved: dict[Stack, None] = {}
            for stack in ready:
                after = tracker.consume(stack, ch)
                if after is not None:
                    moved[after] = None
            if not moved:
                return None
            stacks = tuple(moved)
        return ParseState(tracker, stacks)

    @property
    def shortest(self) -> int:
        """Bytes of the shortest text that makes what was read a whole sentence."""
        if self._shortest is None:
            self._shortest = min(self.tracker.shortest(stack) for stack in self.stacks)
        return self._shortest

    def ready(self) -> tuple[Stack, ...]:
        """The stacks expanded (each waiting for a character, or ``()`` when the text may end)."""
        out: dict[Stack, None] = {}
        for stack in self.stacks:
            self.tracker.expand(stack, out)
        return tuple(out)

    def later_pieces(self) -> int:
        """Elastic parts (strings, digits) the shortest completion still has to write, not
        counting the one being written: what a fair budget keeps room for."""
        best = min(self.stacks, key=self.tracker.shortest)
        return self.tracker.later_pieces(best)

    def shortest_completion(self) -> str:
        """A shortest text that makes what was read a whole sentence."""
        best = min(self.stacks, key=self.tracker.shortest)
        return shortest_text(self.tracker.grammar, self.tracker.continuation(best))

    @property
    def complete(self) -> bool:
        """The text read is a whole sentence (it may end here)."""
        return () in self.ready()

    @property
    def finished(self) -> bool:
        """The text read is a whole sentence and nothing may follow it."""
        return self.ready() == ((),)
