"""Reading answers constrained to a forced call's schema (``_core.http_chat.ForcedCallReader``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from langchain_localllm._core.base.chat import ChatDelta
from langchain_localllm._core.server.chat import ForcedCallReader
from langchain_localllm._core.server.exchange import AnswerReader
from langchain_localllm._core.tools.calling import forced_call_schema, tool_request
from langchain_localllm.errors import InvalidParameterError
from langchain_localllm.openai_compatible.chat_models import ChatReader

TOOLS = [
    {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "g"}},
]


def read_all(reader: AnswerReader[ChatDelta], events: list[Any]) -> list[ChatDelta]:
    """What a reader makes of ``events`` (and of the end of the answer)."""
    out = [reader.feed(event) for event in events] + [reader.close()]
    return [delta for delta in out if delta is not None]


def forced_tools(tools: list[dict[str, Any]], choice: Any) -> list[dict[str, Any]] | None:
    """The tools a call with ``choice`` must call (None when the choice is not forced)."""
    return tool_request({"tools": tools, "tool_choice": choice}).forced_tools or None


def call_schema(tools: list[dict[str, Any]], *, parallel: bool) -> dict[str, Any]:
    return forced_call_schema(tools, parallel=parallel)


def _events(text: str, step: int, finish: str = "stop") -> list[dict[str, Any]]:
    pieces = [text[i : i + step] for i in range(0, len(text), step)]
    events: list[dict[str, Any]] = [{"choices": [{"delta": {"content": piece}}]} for piece in pieces]
    events.append({"choices": [{"delta": {}, "finish_reason": finish}], "usage": {"prompt_tokens": 3}})
    return events


def _read(
    text: str, step: int, *, parallel: bool = False, finish: str = "stop"
) -> tuple[AIMessageChunk, list[ChatDelta]]:
    reader = ForcedCallReader(ChatReader("test"), parallel=parallel)
    deltas = read_all(reader, _events(text, step, finish))
    message = AIMessageChunk(content="")
    for delta in deltas:
        message = message + AIMessageChunk(content=delta.text, **delta.extra)
    return message, deltas


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_one_call_streams_whatever_the_split(step: int) -> None:
    text = '{ "name": "f", "arguments": {"s": "a}\\"{", "n": [1, {"x": 2}]}\n}'
    message, deltas = _read(text, step)
    assert message.content == ""
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("f", {"s": 'a}"{', "n": [1, {"x": 2}]})]
    assert message.tool_calls[0]["id"]
    assert deltas[-1].finish_reason == "tool_calls"
    if step == 1:  # the arguments arrive in many chunks, before the answer ends
        assert sum(1 for d in deltas if d.extra) > 10


def test_parallel_calls_and_a_cut_answer() -> None:
    message, _ = _read(
        '[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {"k": 1}}]', 5, parallel=True
    )
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("f", {}), ("g", {"k": 1})]
    assert len({c["id"] for c in message.tool_calls}) == 2
    message, deltas = _read('{"name": "g", "arguments": {"k": "abc', 4, finish="length")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("g", {"k": "abc"})]
    assert deltas[-1].finish_reason == "length"
    message, _ = _read('{"na', 2, finish="length")
    assert message.tool_call_chunks[0]["args"] == '{"na'  # kept, not lost


def test_forced_tools_and_schema() -> None:
    assert forced_tools(TOOLS, "auto") is None and forced_tools(TOOLS, "none") is None
    assert forced_tools(TOOLS, "required") == TOOLS
    assert forced_tools(TOOLS, {"type": "function", "function": {"name": "g"}}) == TOOLS[1:]
    with pytest.raises(InvalidParameterError, match="not one of the tools"):
        forced_tools(TOOLS, "h")
    schema = call_schema(TOOLS, parallel=True)
    assert schema["minItems"] == 1
    assert [c["properties"]["name"] for c in schema["items"]["anyOf"]] == [{"enum": ["f"]}, {"enum": ["g"]}]
    assert (
        json.dumps(schema["items"]["anyOf"][1]["properties"]["arguments"])
        == '{"type": "object", "properties": {}}'
    )
