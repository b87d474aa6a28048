"""Forced tool calls made impossible to violate: the server's JSON-schema decoding, our parsing.

A forced ``tool_choice`` (``"required"``/``"any"``, a tool's name or an OpenAI
``{"type": "function", "function": {"name": ...}}``) is not left to the server's tool-call
parsing, whose grammar lets a small model write text before the call (llama-server) or
which a server may not enforce at all. The answer is instead constrained, with the dialect's
own structured-output field (llama-server ``json_schema``, vLLM ``structured_outputs``,
OpenAI ``response_format``), to :func:`call_schema`: a call ``{"name": ..., "arguments": ...}``
of one of the allowed tools whose arguments follow that tool's parameters schema (a list of
such calls when ``parallel_tool_calls=True``). The tools stay in the request, with
``tool_choice="none"``, so the chat template still shows them to the model.
:class:`ForcedCallReader` turns the constrained JSON into ``tool_call_chunks`` with ids.

>>> tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
>>> call_schema([tool], parallel=False)["properties"]["name"]
{'enum': ['f']}
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from langchain_localllm._core.chat_model import ChatDelta
from langchain_localllm.errors import InvalidParameterError

__all__ = ["ForcedCallReader", "call_schema", "forced_tools"]

_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
_ARGUMENTS = re.compile(r'"arguments"\s*:\s*')
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def forced_tools(tools: list[dict[str, Any]] | None, choice: Any) -> list[dict[str, Any]] | None:
    """The tools one of which the answer must call, or None when the choice is not forced."""
    if not tools:
        return None
    if choice is True or choice in ("required", "any"):
        return tools
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if isinstance(choice, str) and choice not in ("auto", "none"):
        name = choice
    if name is None:
        return None
    chosen = [tool for tool in tools if tool.get("function", {}).get("name") == name]
    if not chosen:
        names = [tool.get("function", {}).get("name") for tool in tools]
        msg = f"tool_choice names {name!r}, which is not one of the tools: {names}."
        raise InvalidParameterError(msg, parameter="tool_choice")
    return chosen


def _one_call(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function", {})
    return {
        "type": "object",
        "properties": {
            "name": {"enum": [function["name"]]},
            "arguments": function.get("parameters") or _EMPTY_PARAMETERS,
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def call_schema(tools: list[dict[str, Any]], *, parallel: bool) -> dict[str, Any]:
    """JSON schema of exactly one call (or, ``parallel``, one or more calls) of ``tools``."""
    calls = [_one_call(tool) for tool in tools]
    call = calls[0] if len(calls) == 1 else {"anyOf": calls}
    return {"type": "array", "items": call, "minItems": 1} if parallel else call


class ForcedCallReader:
    """Reads an answer constrained by :func:`call_schema` as tool-call chunks.

    Wraps the server's reader: reasoning and the last delta (usage, timings) pass through; the
    answer's text — the call as JSON — becomes ``tool_call_chunks`` with ids (finish reason
    ``tool_calls``). One call streams: its name and id as soon as ``"arguments":`` is reached,
    then the arguments' JSON as it arrives. Parallel calls (an array) are given when the answer
    is complete. An answer cut short (``max_tokens``) keeps the text it has: the tool's name and
    the arguments' JSON prefix, with finish reason ``length``.
    """

    def __init__(self, inner: Any, *, parallel: bool = False) -> None:
        self.inner = inner
        self.parallel = parallel
        self.text = ""
        self.args_at: int | None = None  # where the streamed call's arguments begin in text
        self.scanned = 0  # chars of the arguments scanned (and sent)
        self.depth = 0
        self.in_string = self.escaped = self.args_done = False

    def feed(self, event: Any) -> list[ChatDelta]:
        return self._relay(self.inner.feed(event))

    def close(self) -> list[ChatDelta]:
        return self._relay(self.inner.close())

    def _relay(self, deltas: list[ChatDelta]) -> list[ChatDelta]:
        out: list[ChatDelta] = []
        for delta in deltas:
            self.text += delta.text
            chunks = [] if self.parallel else self._streamed()
            if delta.finish_reason is not None:
                if self.args_at is None:
                    chunks = self._chunks()
                if delta.finish_reason == "stop":
                    delta.finish_reason = "tool_calls"
            if chunks:
                out.append(ChatDelta(message_id=delta.message_id, extra={"tool_call_chunks": chunks}))
            if delta.finish_reason is not None:
                out.append(delta)
            elif delta.reasoning:
                delta.text = ""
                out.append(delta)
        return out

    def _streamed(self) -> list[dict[str, Any]]:
        """The chunks of one call that the text received so far adds."""
        chunks: list[dict[str, Any]] = []
        if self.args_at is None:
            name = _NAME.search(self.text)
            arguments = _ARGUMENTS.search(self.text)
            if name is None or arguments is None:
                return []
            self.args_at = arguments.end()
            chunks.append(_chunk(json.loads(f'"{name.group(1)}"'), ""))
        start = self.args_at + self.scanned
        end = start
        while end < len(self.text) and not self.args_done:
            self._scan(self.text[end])
            end += 1
        self.scanned += end - start
        if end > start:
            chunks.append(
                {
                    "type": "tool_call_chunk",
                    "name": None,
                    "args": self.text[start:end],
                    "id": None,
                    "index": 0,
                }
            )
        return chunks

    def _scan(self, char: str) -> None:
        if self.in_string:
            if self.escaped:
                self.escaped = False
            elif char == "\\":
                self.escaped = True
            elif char == '"':
                self.in_string = False
        elif char == '"':
            self.in_string = True
        elif char in "{[":
            self.depth += 1
        elif char in "}]":
            self.depth -= 1
            self.args_done = self.depth == 0

    def _chunks(self) -> list[dict[str, Any]]:
        try:
            parsed = json.loads(self.text)
        except json.JSONDecodeError:
            parsed = None
        calls = parsed if isinstance(parsed, list) else [parsed]
        if not calls or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls):
            return [_cut_call(self.text)]
        return [
            _chunk(call["name"], json.dumps(call.get("arguments", {}), ensure_ascii=False), index)
            for index, call in enumerate(calls)
        ]


def _chunk(name: str | None, args: str, index: int = 0) -> dict[str, Any]:
    return {"type": "tool_call_chunk", "name": name, "args": args, "id": _call_id(), "index": index}


def _cut_call(text: str) -> dict[str, Any]:
    """The chunk of an answer cut short: the tool's name if it was written, and the raw
    arguments text (LangChain reads a JSON prefix as it does any streamed call cut short; the
    finish reason ``length`` says so)."""
    name = _NAME.search(text)
    arguments = _ARGUMENTS.search(text)
    return _chunk(name.group(1) if name else None, text[arguments.end() :] if arguments else text)


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"
