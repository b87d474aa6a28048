"""JSON schema to GBNF (llama.cpp's grammar format): output that validates by construction.

Covers what structured output needs: objects with required and optional properties (in
schema order), nested objects and ``$ref``/``$defs`` (Pydantic), arrays with
``minItems``/``maxItems``, strings with ``enum``/``const``/``minLength``/``maxLength``,
integers and numbers with ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``,
booleans, null, ``anyOf``/``oneOf``/type lists, and any JSON value for ``{}``.

Bounds are enforced by the grammar itself (llama-cpp-python's own converter ignores them).
A number bound that is not a whole number narrows the grammar to the whole numbers inside
it, a subset of the valid values; a range holding no whole number (``0.1..0.9``) and the
keywords the grammar cannot express (``pattern``, ``format``, ``multipleOf``,
``uniqueItems``) are checked by validating the parsed output instead.

Every part of a sentence is bounded except the content the schema leaves open (strings,
arrays, free objects): whitespace is at most one run between two tokens of JSON, a space
or a newline and :data:`MAX_INDENT` spaces or tabs; number digits are bounded (16 before
the point, 15 after, 3 in an exponent). The schema is compiled to the IR of
:mod:`langchain_localllm._core.decoding.pattern` (:func:`json_schema_grammar`), which the
budget tracker parses and narrows; the GBNF is its rendering.

For a token budget: :func:`budget_gbnf` is a grammar whose every sentence fits ``max_tokens``
(for servers that take a grammar), :func:`budget_schema` the schema tightened with
``maxLength``/``maxItems`` (for servers that take only a schema).
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

from langchain_localllm._core.decoding.pattern import (
    ELASTIC,
    FIXED,
    OPTIONAL,
    SPACE,
    Grammar,
    Pattern,
    Ref,
    Repeat,
    Text,
    alt,
    charset,
    complement,
    gbnf_expression,
    gbnf_literal,
    seq,
    to_gbnf,
)
from langchain_localllm.errors import InvalidParameterError

__all__ = [
    "MAX_INDENT",
    "GrammarBuilder",
    "budget_gbnf",
    "budget_schema",
    "gbnf_literal",
    "json_schema_grammar",
    "json_schema_to_gbnf",
]

#: Spaces or tabs allowed after a newline between two JSON tokens.
MAX_INDENT = 20

_DIGIT = charset([(0x30, 0x39)])
_HEX = charset([(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)])


def _primitives() -> dict[str, Pattern]:
    ws = Ref("ws")
    kv = seq(Ref("string"), Text(":"), ws, Ref("value"))
    element = Ref("value")
    sign = Repeat(Text("-"), 0, 1, OPTIONAL)
    whole = alt(Text("0"), seq(charset([(0x31, 0x39)]), Repeat(_DIGIT, 0, 15, ELASTIC)))
    fraction = Repeat(seq(Text("."), Repeat(_DIGIT, 1, 15, ELASTIC)), 0, 1, OPTIONAL)
    exponent_sign = Repeat(charset([(0x2B, 0x2B), (0x2D, 0x2D)]), 0, 1, OPTIONAL)
    exponent = Repeat(
        seq(charset([(0x45, 0x45), (0x65, 0x65)]), exponent_sign, Repeat(_DIGIT, 1, 3, ELASTIC)),
        0,
        1,
        OPTIONAL,
    )
    escape = alt(charset([(ord(c), ord(c)) for c in '"\\/bfnrt']), seq(Text("u"), Repeat(_HEX, 4, 4, FIXED)))
    return {
        "ws": Repeat(
            alt(Text(" "), seq(Text("\n"), Repeat(charset([(9, 9), (32, 32)]), 0, MAX_INDENT, SPACE))),
            0,
            1,
            SPACE,
        ),
        "char": alt(
            complement([(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0x7F, 0x7F)]), seq(Text("\\"), escape)
        ),
        "string": seq(Text('"'), Repeat(Ref("char"), 0, None, ELASTIC), Text('"')),
        "integer": seq(sign, whole),
        "number": seq(sign, whole, fraction, exponent),
        "boolean": alt(Text("true"), Text("false")),
        "null": Text("null"),
        "value": alt(*(Ref(n) for n in ("object", "array", "string", "number", "boolean", "null"))),
        "object": seq(
            Text("{"),
            ws,
            Repeat(seq(kv, Repeat(seq(Text(","), ws, kv), 0, None, OPTIONAL), ws), 0, 1, OPTIONAL),
            Text("}"),
        ),
        "array": seq(
            Text("["),
            ws,
            Repeat(seq(element, Repeat(seq(Text(","), ws, element), 0, None, OPTIONAL), ws), 0, 1, OPTIONAL),
            Text("]"),
        ),
    }


_PRIMITIVES = _primitives()
_DEPENDS = {
    "value": ("object", "array", "string", "number", "boolean", "null"),
    "string": ("char",),
    "object": ("string", "value", "ws"),
    "array": ("value", "ws"),
}


def json_schema_grammar(schema: dict[str, Any]) -> Grammar:
    """The IR grammar of the JSON documents valid against ``schema`` (root rule ``root``).

    Raises:
        InvalidParameterError: the schema uses a ``$ref`` it does not define.
    """
    builder = GrammarBuilder()
    name = builder.schema_rule(schema, "value-root")
    builder.patterns["root"] = Ref(name)
    return Grammar(dict(builder.patterns), "root")


def json_schema_to_gbnf(schema: dict[str, Any], *, root: str = "root") -> str:
    """A GBNF grammar whose sentences are the JSON documents valid against ``schema``.

    Raises:
        InvalidParameterError: the schema uses a ``$ref`` it does not define.
    """
    builder = GrammarBuilder()
    builder.rules[root] = builder.schema_rule(schema, "value-root")
    return builder.text()


def budget_gbnf(schema: dict[str, Any], max_tokens: int) -> str:
    """A GBNF grammar for answers valid against ``schema`` that fit ``max_tokens`` tokens.

    For servers that take a grammar: every sentence is at most ``max_tokens`` bytes of
    compact JSON, and a token is at least one byte, so no grammar engine can make the
    answer run out of tokens. The budget is split up front (the server decodes alone):
    each string gets a share as its longest length, optional properties and array items are
    allowed where their share holds them.

    Raises:
        TokenBudgetError: ``max_tokens`` is below the shortest valid answer.
    """
    from langchain_localllm._core.decoding.budget import static_grammar

    return to_gbnf(static_grammar(json_schema_grammar(schema), max_tokens))


def budget_schema(
    schema: dict[str, Any],
    max_tokens: int,
    *,
    char_bytes: int = 1,
    gap_bytes: int = 0,
    number_bytes: int = 24,
) -> dict[str, Any]:
    """``schema`` tightened so that every answer it allows fits ``max_tokens`` tokens.

    For servers that take only a JSON schema. Strings without a tighter bound get a
    ``maxLength`` and arrays a ``maxItems`` from their share of the budget (a token is at
    least one byte); optional properties that do not fit are left out. A schema cannot bound
    what the server's grammar engine adds, so the bound holds for answers whose characters
    take at most ``char_bytes`` bytes (1: ASCII without escapes; 6 covers ``\\uXXXX``), with
    at most ``gap_bytes`` of whitespace between two JSON tokens (llama.cpp's own converter
    allows 22) and numbers of at most ``number_bytes`` (bounded numbers: their longest). A
    server answer that still stops for ``length`` must be treated as cut off.

    Raises:
        TokenBudgetError: ``max_tokens`` is below the shortest valid answer (whitespace and
            character widths counted as above).
    """
    from langchain_localllm._core.decoding.budget import SchemaBudget

    return SchemaBudget(
        schema, char_bytes=char_bytes, gap_bytes=gap_bytes, number_bytes=number_bytes
    ).tighten(copy.deepcopy(schema), max_tokens)


class GrammarBuilder:
    """Rules of one GBNF grammar, built from any number of schemas and literals.

    ``rules`` holds the GBNF text of each rule; ``patterns`` the IR of the rules built from
    schemas (:meth:`schema_rule`).
    """

    def __init__(self) -> None:
        self.rules: dict[str, str] = {}
        self.patterns: dict[str, Pattern] = {}
        self._ref_rules: dict[str, str] = {}
        self.schema: dict[str, Any] = {}
        self._prefix = ""

    def schema_rule(self, schema: dict[str, Any], name: str) -> str:
        """The name of a rule for the JSON documents valid against ``schema``."""
        self.schema, self._prefix = schema, f"{name}-"
        pattern = self.visit(schema, name)
        return pattern.name if isinstance(pattern, Ref) else self.add_pattern(name, pattern)

    def text(self) -> str:
        """The grammar's text; ``root`` first."""
        order = sorted(self.rules, key=lambda n: n != "root")
        return "\n".join(f"{name} ::= {self.rules[name]}" for name in order) + "\n"

    # -- rules ---------------------------------------------------------------------------
    def primitive(self, name: str) -> Ref:
        if name not in self.patterns:
            self.patterns[name] = _PRIMITIVES[name]
            self.rules[name] = gbnf_expression(_PRIMITIVES[name])
            for dep in _DEPENDS.get(name, ()):
                self.primitive(dep)
        return Ref(name)

    def add(self, hint: str, rule: str) -> str:
        """A rule for ``rule`` (an existing one if identical), named after ``hint``."""
        for name, existing in self.rules.items():
            if existing == rule:
                return name
        name = self._fresh(hint)
        self.rules[name] = rule
        return name

    def add_pattern(self, hint: str, pattern: Pattern) -> str:
        """A rule for ``pattern`` (an existing one if it renders the same), named after ``hint``."""
        name = self.add(hint, gbnf_expression(pattern))
        self.patterns.setdefault(name, pattern)
        return name

    def _fresh(self, hint: str) -> str:
        base = re.sub(r"[^a-zA-Z0-9-]+", "-", hint).strip("-") or "r"
        name, n = base, 1
        while name in self.rules:
            n += 1
            name = f"{base}{n}"
        return name

    def _rule(self, hint: str, pattern: Pattern) -> Ref:
        return Ref(self.add_pattern(hint, pattern))

    # -- schema --------------------------------------------------------------------------
    def visit(self, schema: Any, name: str) -> Pattern:
        if schema is True or schema == {}:
            return self.primitive("value")
        if not isinstance(schema, dict):
            raise InvalidParameterError(f"Not a JSON schema: {schema!r}.", schema=schema)
        if "$ref" in schema:
            return self.ref(schema["$ref"])
        if "const" in schema:
            return self._rule(name, Text(json.dumps(schema["const"], ensure_ascii=False)))
        if "enum" in schema:
            values = [Text(json.dumps(v, ensure_ascii=False)) for v in schema["enum"]]
            if not values:
                raise InvalidParameterError("An enum needs at least one value.", schema=schema)
            return self._rule(name, alt(*values))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                alts = [self.visit(s, f"{name}-{i}") for i, s in enumerate(schema[key])]
                return self._rule(name, alt(*alts))
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part["$ref"]) if "$ref" in part else part
                for k, v in part.items():
                    merged[k] = {**merged.get(k, {}), **v} if k == "properties" else v
            return self.visit(merged, name)
        kind = schema.get("type")
        if isinstance(kind, list):
            alts = [self.visit({**schema, "type": t}, f"{name}-{t}") for t in kind]
            return self._rule(name, alt(*alts))
        if kind == "object" or (kind is None and "properties" in schema):
            return self.object(schema, name)
        if kind == "array" or (kind is None and "items" in schema):
            return self.array(schema, name)
        if kind == "string":
            return self.string(schema, name)
        if kind in ("integer", "number"):
            return self.numeric(schema, name, integer=kind == "integer")
        if kind in ("boolean", "null"):
            return self.primitive(kind)
        return self.primitive("value")

    def resolve(self, ref: str) -> dict[str, Any]:
        if ref == "#":
            return self.schema
        if not ref.startswith("#/"):
            raise InvalidParameterError(f"Only local $refs are supported, got {ref!r}.", ref=ref)
        target: Any = self.schema
        for part in ref[2:].split("/"):
            if not isinstance(target, dict) or part not in target:
                raise InvalidParameterError(f"The schema does not define {ref!r}.", ref=ref)
            target = target[part]
        return target

    def ref(self, ref: str) -> Ref:
        key = self._prefix + ref
        if key not in self._ref_rules:
            name = self.add(self._prefix + "ref-" + ref.rsplit("/", 1)[-1], f"<{key}>")  # placeholder
            self._ref_rules[key] = name
            body = self.visit(self.resolve(ref), name + "-body")  # recursion finds `name`
            self.rules[name], self.patterns[name] = gbnf_expression(body), body
        return Ref(self._ref_rules[key])

    def object(self, schema: dict[str, Any], name: str) -> Pattern:
        props: dict[str, Any] = schema.get("properties") or {}
        if not props:
            return self.primitive("object")
        ws = self.primitive("ws")
        required = set(schema.get("required", ()))
        pairs = []
        for key, sub in props.items():
            value = self.visit(sub, f"{name}-{key}")
            pairs.append(
                (key in required, self._rule(f"{name}-{key}-kv", seq(Text(json.dumps(key) + ":"), ws, value)))
            )
        # After the first property written, each later one is ","-prefixed (optional ones may be skipped).
        after = [
            [
                seq(Text(","), ws, kv) if req else Repeat(seq(Text(","), ws, kv), 0, 1, OPTIONAL)
                for req, kv in pairs[i + 1 :]
            ]
            for i in range(len(pairs))
        ]
        alts: list[Pattern] = []
        for i, (req, kv) in enumerate(pairs):
            alts.append(seq(kv, *after[i]))
            if req:
                break
        inner = alt(*alts)
        if any(req for req, _ in pairs):
            return self._rule(name, seq(Text("{"), ws, inner, ws, Text("}")))
        return self._rule(name, seq(Text("{"), ws, Repeat(seq(inner, ws), 0, 1, OPTIONAL), Text("}")))

    def array(self, schema: dict[str, Any], name: str) -> Pattern:
        ws = self.primitive("ws")
        item = self.visit(schema.get("items", {}), f"{name}-item")
        low, high = int(schema.get("minItems", 0)), schema.get("maxItems")
        if high is not None and int(high) == 0:
            return self._rule(name, seq(Text("["), ws, Text("]")))
        more = Repeat(
            seq(Text(","), ws, item), max(low - 1, 0), None if high is None else int(high) - 1, OPTIONAL
        )
        items = seq(item, more)
        if low > 0:
            return self._rule(name, seq(Text("["), ws, items, ws, Text("]")))
        return self._rule(name, seq(Text("["), ws, Repeat(seq(items, ws), 0, 1, OPTIONAL), Text("]")))

    def string(self, schema: dict[str, Any], name: str) -> Pattern:
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if low == 0 and high is None:
            return self.primitive("string")
        char = self.primitive("char")
        return self._rule(
            name, seq(Text('"'), Repeat(char, low, None if high is None else int(high), ELASTIC), Text('"'))
        )

    def numeric(self, schema: dict[str, Any], name: str, *, integer: bool) -> Pattern:
        low, high = _bounds(schema)
        if low is None and high is None:
            return self.primitive("integer" if integer else "number")
        lo = None if low is None else math.ceil(low)
        hi = None if high is None else math.floor(high)
        if lo is not None and hi is not None and lo > hi:  # no whole number inside: validate instead
            return self.primitive("number")
        frac = None if integer else Repeat(seq(Text("."), Repeat(_DIGIT, 1, 15, ELASTIC)), 0, 1, OPTIONAL)
        zeros = None if integer else Repeat(seq(Text("."), Repeat(Text("0"), 1, 15, ELASTIC)), 0, 1, OPTIONAL)
        alts: list[Pattern] = []
        # negative part: -(n + f) for n + f in [max(0, -hi), -lo]
        if lo is None or lo < 0:
            neg_hi = None if lo is None else -lo  # largest magnitude
            neg_lo = 0 if hi is None or hi >= 0 else -hi
            alts += _magnitudes(neg_lo, neg_hi, frac, zeros, sign="-", strict_zero=True)
        if hi is None or hi >= 0:
            alts += _magnitudes(max(lo or 0, 0), hi, frac, zeros, sign="", strict_zero=False)
        return self._rule(name, alt(*alts))


def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None]:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        low = max(low if low is not None else -math.inf, math.floor(schema["exclusiveMinimum"]) + 1)
    if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
        high = min(high if high is not None else math.inf, math.ceil(schema["exclusiveMaximum"]) - 1)
    return low, high


def _magnitudes(
    lo: int, hi: int | None, frac: Pattern | None, zeros: Pattern | None, *, sign: str, strict_zero: bool
) -> list[Pattern]:
    """Alternatives for ``sign`` + magnitudes in [lo, hi] (whole part ranges, optional fraction).

    With a fraction allowed, ``hi`` itself may only be followed by zeros. ``strict_zero``
    leaves out a bare ``-0``.
    """
    tail = [] if frac is None else [frac]
    if hi is None:
        return [seq(Text(sign), _int_at_least(lo), *tail)]
    alts: list[Pattern] = []
    top = hi - 1 if frac is not None else hi
    start = max(lo, 1) if strict_zero and frac is None else lo
    if top >= start:
        alts.append(seq(Text(sign), _int_range_pattern(start, top), *tail))
    if zeros is not None and hi >= lo and not (strict_zero and hi == 0):
        alts.append(seq(Text(sign + str(hi)), zeros))
    return alts


def _int_at_least(lo: int) -> Pattern:
    """Whole numbers >= lo (lo >= 0), no leading zeros, at most 16 digits."""
    digits = len(str(lo))
    same = _int_range_pattern(lo, 10**digits - 1)
    return alt(same, seq(charset([(0x31, 0x39)]), Repeat(_DIGIT, digits, 15, ELASTIC)))


def _int_range_pattern(lo: int, hi: int) -> Pattern:
    """The whole numbers lo..hi (0 <= lo <= hi), written without leading zeros."""
    alts: list[Pattern] = []
    while lo <= hi:
        width = len(str(lo))
        end = min(hi, 10**width - 1)
        alts.append(_same_width(str(lo), str(end)))
        lo = end + 1
    return alt(*alts)


def _int_range(lo: int, hi: int) -> str:
    """GBNF for the whole numbers lo..hi (0 <= lo <= hi), written without leading zeros."""
    return gbnf_expression(_int_range_pattern(lo, hi))


def _digits(a: str, b: str) -> Pattern:
    return Text(a) if a == b else charset([(ord(a), ord(b))])


def _same_width(a: str, b: str) -> Pattern:
    """Digit strings between a and b, both of the same length."""
    if len(a) == 1:
        return _digits(a, b)
    rest = len(a) - 1
    if a[0] == b[0]:
        return seq(Text(a[0]), _same_width(a[1:], b[1:]))
    if a[1:] == "0" * rest and b[1:] == "9" * rest:
        return seq(_digits(a[0], b[0]), Repeat(_DIGIT, rest, rest, FIXED))
    alts = [seq(Text(a[0]), _same_width(a[1:], "9" * rest))]
    if int(a[0]) + 1 <= int(b[0]) - 1:
        alts.append(seq(_digits(str(int(a[0]) + 1), str(int(b[0]) - 1)), Repeat(_DIGIT, rest, rest, FIXED)))
    alts.append(seq(Text(b[0]), _same_width("0" * rest, b[1:])))
    return alt(*alts)
