"""Reading helpers shared by the tool-call syntaxes: JSON values, delimited blocks, calls."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from langchain_localllm.prompts.tool_calls.registry import RawCall, SectionParse

_DECODER = json.JSONDecoder()


def json_value(text: str, pos: int = 0) -> tuple[Any, int] | None:
    """The JSON value starting at ``pos`` (after blanks) and the index after it, or None."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    try:
        return _DECODER.raw_decode(text, pos)
    except ValueError:
        return None


def arguments(value: Any) -> dict[str, Any] | None:
    """Arguments as a dict: an object, an object serialised as a string, or None/empty."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        found = json_value(value)
        if found is None or value[found[1] :].strip():
            return None
        value = found[0]
    return value if isinstance(value, dict) else None


def call_from_object(
    obj: Any,
    *,
    name_keys: tuple[str, ...] = ("name",),
    args_keys: tuple[str, ...] = ("arguments", "parameters"),
    id_keys: tuple[str, ...] = ("id",),
    raw: str = "",
) -> RawCall:
    """A call from a JSON object such as ``{"name": ..., "arguments": {...}}``."""
    if not isinstance(obj, dict):
        return RawCall(None, raw or json.dumps(obj), error="The tool call is not a JSON object.")
    if isinstance(obj.get("function"), dict):  # OpenAI style {"type": "function", "function": {...}}
        obj = {**obj, **obj["function"]}
    name = next((obj[k] for k in name_keys if isinstance(obj.get(k), str)), None)
    call_id = next((str(obj[k]) for k in id_keys if obj.get(k) not in (None, "")), None)
    present = [k for k in args_keys if k in obj]
    args = arguments(obj[present[0]]) if present else {}
    if name is None:
        return RawCall(None, raw or json.dumps(obj), call_id, error="The tool call names no tool.")
    if args is None:
        raw_args = obj[present[0]]
        text = raw_args if isinstance(raw_args, str) else json.dumps(raw_args)
        return RawCall(name, text, call_id, error="The tool call's arguments are not a JSON object.")
    return RawCall(name, args, call_id)


def json_call(name: str | None, text: str, call_id: str | None = None) -> RawCall:
    """A call to ``name`` whose arguments are the JSON object ``text`` (blank means none)."""
    text = text.strip()
    if text.startswith("```"):  # DeepSeek R1 wraps arguments in a fenced block
        text = re.sub(r"^```[a-z]*\s*|\s*```$", "", text)
    args = arguments(text)
    if name is None or not name.strip():
        return RawCall(None, text, call_id, error="The tool call names no tool.")
    if args is None:
        return RawCall(name.strip(), text, call_id, error="The tool call's arguments are not a JSON object.")
    return RawCall(name.strip(), args, call_id)


def leading_json_call(name: str | None, text: str, call_id: str | None = None) -> tuple[RawCall, str]:
    """A call whose arguments are the JSON object opening ``text``, and the text after it.

    Used where a call has no closing marker: the call is complete once its object closes.
    """
    found = json_value(text)
    if found is None or not isinstance(found[0], dict):
        return json_call(name, text, call_id), ""
    return json_call(name, text[: found[1]], call_id), text[found[1] :]


def blocks(section: str, open_: str, close: str, final: bool) -> tuple[list[tuple[str, bool]], str]:
    """Bodies of ``open_ ... close`` blocks in ``section`` and the text between them.

    A block still open at the end is returned (unclosed) only when ``final``.
    """
    bodies: list[tuple[str, bool]] = []
    between: list[str] = []
    pos = 0
    while True:
        start = section.find(open_, pos)
        if start < 0:
            between.append(section[pos:])
            break
        between.append(section[pos:start])
        body_start = start + len(open_)
        end = section.find(close, body_start)
        if end < 0:
            if final:
                bodies.append((section[body_start:], False))
            break
        bodies.append((section[body_start:end], True))
        pos = end + len(close)
    return bodies, "".join(between)


def block_calls(
    section: str, open_: str, close: str, final: bool, read_body: Any, outer: tuple[str, str] = ("", "")
) -> SectionParse:
    """Calls from the blocks of a section, each body read by ``read_body(body) -> RawCall``.

    ``outer`` names the section's own open and close markers, dropped from the leftover text.
    """
    bodies, rest = blocks(section, open_, close, final)
    for marker in outer:
        if marker:
            rest = rest.replace(marker, "")
    return SectionParse([read_body(body) for body, _closed in bodies], rest.strip() if final else "")


def json_array_calls(section: str, marker: str, final: bool, **keys: Any) -> SectionParse:
    """Calls from ``marker[{...}, ...]``: complete once the array closes."""
    body = section[len(marker) :]
    found = json_value(body)
    if found is None:
        if not final:
            return SectionParse()
        return SectionParse([RawCall(None, body.strip(), error="The tool calls are not a JSON array.")])
    value, end = found
    items = value if isinstance(value, list) else [value]
    calls = [call_from_object(item, **keys) for item in items]
    return SectionParse(calls, body[end:].strip() if final else "")


def python_calls(text: str) -> list[RawCall] | None:
    """Calls written as Python, ``[f(a=1), g(b="x")]`` or ``f(a=1)``; None if it is not that."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    nodes = tree.elts if isinstance(tree, ast.List) else [tree]
    calls: list[RawCall] = []
    for node in nodes:
        if not isinstance(node, ast.Call) or node.args:
            return None
        try:
            args = {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg}
        except ValueError:
            return None
        calls.append(RawCall(_dotted(node.func), args))
    return calls


def _literal(node: ast.AST) -> Any:
    """A Python literal, also accepting JSON's ``true``/``false``/``null``."""
    if isinstance(node, ast.Name) and node.id in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[node.id]
    if isinstance(node, ast.Dict):
        pairs = zip(node.keys, node.values, strict=False)
        return {_literal(k): _literal(v) for k, v in pairs if k is not None}
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    return ast.literal_eval(node)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ast.unparse(node)


def xml_parameters(body: str, pattern: re.Pattern[str]) -> dict[str, Any]:
    """Parameters of XML-like calls; values that are JSON are decoded, others stay strings.

    ``pattern`` has groups ``key``, ``value`` and optionally ``string`` (``"true"`` keeps
    the value as a string, as DeepSeek's DSML says).
    """
    args: dict[str, Any] = {}
    for match in pattern.finditer(body):
        value = match.group("value")
        stripped = value.strip("\n")
        is_string = "string" in match.groupdict() and match.group("string") == "true"
        found = None if is_string else json_value(stripped)
        if found is not None and not stripped[found[1] :].strip():
            args[match.group("key")] = found[0]
        else:
            args[match.group("key")] = stripped
    return args
