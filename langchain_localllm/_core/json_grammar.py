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
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from langchain_localllm.errors import InvalidParameterError

__all__ = ["GrammarBuilder", "gbnf_literal", "json_schema_to_gbnf"]

_PRIMITIVES = {
    "ws": '| " " | "\\n" [ \\t]{0,20}',
    "char": '[^"\\\\\\x7F\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "string": '"\\"" char* "\\""',
    "digits": "[0-9]+",
    "integer": '"-"? ("0" | [1-9] [0-9]{0,15})',
    "number": '"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]+)? ([eE] [-+]? [0-9]{1,3})?',
    "boolean": '"true" | "false"',
    "null": '"null"',
    "value": "object | array | string | number | boolean | null",
    "object": '"{" ws (string ":" ws value ("," ws string ":" ws value)*)? ws "}"',
    "array": '"[" ws (value ("," ws value)*)? ws "]"',
}
_DEPENDS = {"value": ("object", "array", "string", "number", "boolean", "null"), "string": ("char",)}
_DEPENDS |= {"object": ("string", "value", "ws"), "array": ("value", "ws")}


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped.replace(chr(9), chr(92) + "t")}"'


def json_schema_to_gbnf(schema: dict[str, Any], *, root: str = "root") -> str:
    """A GBNF grammar whose sentences are the JSON documents valid against ``schema``.

    Raises:
        InvalidParameterError: the schema uses a ``$ref`` it does not define.
    """
    builder = GrammarBuilder()
    builder.rules[root] = builder.schema_rule(schema, "value-root")
    return builder.text()


class GrammarBuilder:
    """Rules of one GBNF grammar, built from any number of schemas and literals."""

    def __init__(self) -> None:
        self.rules: dict[str, str] = {}
        self._ref_rules: dict[str, str] = {}
        self.schema: dict[str, Any] = {}
        self._prefix = ""

    def schema_rule(self, schema: dict[str, Any], name: str) -> str:
        """The name of a rule for the JSON documents valid against ``schema``."""
        self.schema, self._prefix = schema, f"{name}-"
        return self.visit(schema, name)

    def text(self) -> str:
        """The grammar's text; ``root`` first."""
        order = sorted(self.rules, key=lambda n: n != "root")
        return "\n".join(f"{name} ::= {self.rules[name]}" for name in order) + "\n"

    # -- rules ---------------------------------------------------------------------------
    def primitive(self, name: str) -> str:
        if name not in self.rules:
            self.rules[name] = _PRIMITIVES[name]
            for dep in _DEPENDS.get(name, ()):
                self.primitive(dep)
        return name

    def add(self, hint: str, rule: str) -> str:
        """A rule for ``rule`` (an existing one if identical), named after ``hint``."""
        for name, existing in self.rules.items():
            if existing == rule:
                return name
        base = re.sub(r"[^a-zA-Z0-9-]+", "-", hint).strip("-") or "r"
        name, n = base, 1
        while name in self.rules:
            n += 1
            name = f"{base}{n}"
        self.rules[name] = rule
        return name

    # -- schema --------------------------------------------------------------------------
    def visit(self, schema: Any, name: str) -> str:
        if schema is True or schema == {}:
            return self.primitive("value")
        if not isinstance(schema, dict):
            raise InvalidParameterError(f"Not a JSON schema: {schema!r}.", schema=schema)
        if "$ref" in schema:
            return self.ref(schema["$ref"])
        if "const" in schema:
            return self.add(name, gbnf_literal(json.dumps(schema["const"], ensure_ascii=False)))
        if "enum" in schema:
            values = " | ".join(gbnf_literal(json.dumps(v, ensure_ascii=False)) for v in schema["enum"])
            return self.add(name, values)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                alts = [self.visit(s, f"{name}-{i}") for i, s in enumerate(schema[key])]
                return self.add(name, " | ".join(alts))
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
            return self.add(name, " | ".join(alts))
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

    def ref(self, ref: str) -> str:
        key = self._prefix + ref
        if key not in self._ref_rules:
            name = self.add(self._prefix + "ref-" + ref.rsplit("/", 1)[-1], f"<{key}>")
            self._ref_rules[key] = name
            self.rules[name] = self.visit(self.resolve(ref), name + "-body")  # recursion finds `name`
        return self._ref_rules[key]

    def object(self, schema: dict[str, Any], name: str) -> str:
        props: dict[str, Any] = schema.get("properties") or {}
        if not props:
            return self.primitive("object")
        self.primitive("ws")
        required = set(schema.get("required", ()))
        pairs = []
        for key, sub in props.items():
            value = self.visit(sub, f"{name}-{key}")
            pairs.append(
                (
                    key in required,
                    self.add(f"{name}-{key}-kv", f'{gbnf_literal(json.dumps(key))} ":" ws {value}'),
                )
            )
        # After the first property written, each later one is ","-prefixed (optional ones may be skipped).
        after = [
            " ".join(f'"," ws {kv}' if req else f'("," ws {kv})?' for req, kv in pairs[i + 1 :])
            for i in range(len(pairs))
        ]
        alts = []
        for i, (req, kv) in enumerate(pairs):
            alts.append(f"{kv} {after[i]}".strip())
            if req:
                break
        else:
            alts.append("")  # every property optional: {} is valid
        inner = " | ".join(f"({a})" if a else '""' for a in alts)
        return self.add(name, f'"{{" ws ({inner}) ws "}}"')

    def array(self, schema: dict[str, Any], name: str) -> str:
        self.primitive("ws")
        item = self.visit(schema.get("items", {}), f"{name}-item")
        low, high = int(schema.get("minItems", 0)), schema.get("maxItems")
        if high is not None and int(high) == 0:
            return self.add(name, '"[" ws "]"')
        more_low = max(low - 1, 0)
        more = f"{{{more_low},{int(high) - 1}}}" if high is not None else f"{{{more_low},}}"
        items = f'{item} ("," ws {item}){more}'
        return self.add(name, f'"[" ws {items} ws "]"' if low > 0 else f'"[" ws ({items})? ws "]"')

    def string(self, schema: dict[str, Any], name: str) -> str:
        self.primitive("char")
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if low == 0 and high is None:
            return self.primitive("string")
        count = f"{{{low},{int(high)}}}" if high is not None else f"{{{low},}}"
        return self.add(name, f'"\\"" char{count} "\\""')

    def numeric(self, schema: dict[str, Any], name: str, *, integer: bool) -> str:
        low, high = _bounds(schema)
        if low is None and high is None:
            return self.primitive("integer" if integer else "number")
        lo = None if low is None else math.ceil(low)
        hi = None if high is None else math.floor(high)
        if lo is not None and hi is not None and lo > hi:  # no whole number inside: validate instead
            return self.primitive("number")
        frac = "" if integer else ' ("." [0-9]{1,15})?'
        zeros = "" if integer else ' ("." "0"{1,15})?'
        alts: list[str] = []
        # negative part: -(n + f) for n + f in [max(0, -hi), -lo]
        if lo is None or lo < 0:
            neg_hi = None if lo is None else -lo  # largest magnitude
            neg_lo = 0 if hi is None or hi >= 0 else -hi
            alts += _magnitudes(neg_lo, neg_hi, frac, zeros, sign='"-" ', strict_zero=True)
        if hi is None or hi >= 0:
            alts += _magnitudes(max(lo or 0, 0), hi, frac, zeros, sign="", strict_zero=False)
        return self.add(name, " | ".join(f"({a})" for a in alts))


def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None]:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        low = max(low if low is not None else -math.inf, math.floor(schema["exclusiveMinimum"]) + 1)
    if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
        high = min(high if high is not None else math.inf, math.ceil(schema["exclusiveMaximum"]) - 1)
    return low, high


def _magnitudes(lo: int, hi: int | None, frac: str, zeros: str, *, sign: str, strict_zero: bool) -> list[str]:
    """Alternatives for ``sign`` + magnitudes in [lo, hi] (whole part ranges, optional fraction).

    With a fraction allowed, ``hi`` itself may only be followed by zeros. ``strict_zero``
    leaves out a bare ``-0``.
    """
    alts: list[str] = []
    if hi is None:
        below = _int_at_least(lo)
        if below:
            alts.append(f"{sign}({below}){frac}")
        return alts
    top = hi - 1 if frac else hi
    start = max(lo, 1) if strict_zero and not frac else lo
    if top >= start:
        alts.append(f"{sign}({_int_range(start, top)}){frac}")
    if frac and hi >= lo and not (strict_zero and hi == 0):
        alts.append(f'{sign}"{hi}"{zeros}')
    return alts


def _int_at_least(lo: int) -> str:
    """Whole numbers >= lo (lo >= 0), no leading zeros."""
    digits = len(str(lo))
    same = _int_range(lo, 10**digits - 1)
    return f"{same} | [1-9] [0-9]{{{digits},15}}"


def _int_range(lo: int, hi: int) -> str:
    """GBNF for the whole numbers lo..hi (0 <= lo <= hi), written without leading zeros."""
    alts: list[str] = []
    while lo <= hi:
        width = len(str(lo))
        end = min(hi, 10**width - 1)
        alts.append(_same_width(str(lo), str(end)))
        lo = end + 1
    return " | ".join(alts)


def _same_width(a: str, b: str) -> str:
    """Digit strings between a and b, both of the same length."""
    if len(a) == 1:
        return f'"{a}"' if a == b else f"[{a}-{b}]"
    rest = len(a) - 1
    if a[0] == b[0]:
        return f'"{a[0]}" ({_same_width(a[1:], b[1:])})'
    if a[1:] == "0" * rest and b[1:] == "9" * rest:
        return f"[{a[0]}-{b[0]}] [0-9]{{{rest}}}"
    alts = [f'"{a[0]}" ({_same_width(a[1:], "9" * rest)})']
    if int(a[0]) + 1 <= int(b[0]) - 1:
        alts.append(f"[{int(a[0]) + 1}-{int(b[0]) - 1}] [0-9]{{{rest}}}")
    alts.append(f'"{b[0]}" ({_same_width("0" * rest, b[1:])})')
    return " | ".join(f"({x})" for x in alts)
