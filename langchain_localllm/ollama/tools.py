"""Tool calls and structured output over Ollama's ``/api/chat``.

- ``tool_choice="auto"``: the tools are sent (``tools``) and the calls Ollama's own parser
  found come back in ``message.tool_calls`` (streamed as whole calls, one chunk each).
- A forced choice: Ollama takes no ``tool_choice``, so the call is forced through
  ``format``: a JSON schema allowing only ``{"name": <a forced tool>, "arguments": {...}}``
  with the tool's argument schema, which Ollama turns into a grammar; the JSON answer is
  then returned as the tool call. The tools are described in a system message (sending
  ``tools`` as well would let the model's template take over, and servers refuse ``tools``
  for models without tool support).
- ``response_format``: its schema (or ``"json"``) is sent as ``format``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.messages.tool import tool_call_chunk

from langchain_localllm._core.chat_model import ChatDelta
from langchain_localllm._core.tool_calling import ToolRequest

__all__ = ["apply_tool_request", "call_chunks", "forced_call_schema", "forced_deltas"]

FORCED_INSTRUCTIONS = (
    "Call one of these tools (JSON schemas):\n<tools>\n{tools}\n</tools>\n"
    'Answer with the call as JSON: {{"name": <tool name>, "arguments": {{...}}}}.'
)


def forced_call_schema(tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """JSON schema of one call to one of ``tools``."""
    alternatives = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [t["function"]["name"]]},
                "arguments": t["function"].get("parameters") or {"type": "object", "properties": {}},
            },
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    return alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}


def apply_tool_request(
    messages: list[BaseMessage], kwargs: dict[str, Any], request: ToolRequest
) -> list[BaseMessage]:
    """Set ``format``/``tools`` in ``kwargs`` for ``request``; the messages to send."""
    forced = request.forced_tools
    if forced:
        kwargs["format"] = forced_call_schema(forced)
        described = FORCED_INSTRUCTIONS.format(tools="\n".join(json.dumps(t["function"]) for t in forced))
        if messages and isinstance(messages[0], SystemMessage):
            return [SystemMessage(f"{messages[0].text}\n\n{described}"), *messages[1:]]
        return [SystemMessage(described), *messages]
    if request.answer_schema is not None:
        kwargs["format"] = "json" if request.json_object else request.answer_schema
    if request.offered_tools:
        kwargs["tools"] = list(request.offered_tools)
    return messages


def call_chunks(calls: Any, first_index: int) -> list[Any]:
    """``message.tool_calls`` of an Ollama response as LangChain tool-call chunks."""
    chunks = []
    for i, call in enumerate(calls or []):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        chunks.append(
            tool_call_chunk(
                name=function.get("name"),
                args=arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
                id=call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                index=first_index + i,
            )
        )
    return chunks


def _forced_step() -> Any:
    text: list[str] = []

    def step(delta: ChatDelta) -> ChatDelta | None:
        text.append(delta.text)
        delta.text = ""
        if not delta.is_last:
            return delta if delta.reasoning else None
        if "tool_call_chunks" not in delta.extra:  # the server did not turn it into a call itself
            body = "".join(text).strip()
            try:
                value = json.loads(body)
                name, args = value["name"], value.get("arguments", {})
                chunk = tool_call_chunk(
                    name=name, args=json.dumps(args), id=f"call_{uuid.uuid4().hex[:24]}", index=0
                )
            except (ValueError, KeyError, TypeError):
                chunk = tool_call_chunk(
                    name=None, args=json.dumps(body), id=f"call_{uuid.uuid4().hex[:24]}", index=0
                )
            delta.extra = {**delta.extra, "tool_call_chunks": [chunk]}
        if delta.finish_reason == "stop":
            delta.finish_reason = "tool_calls"
        return delta

    return step


def forced_deltas(deltas: Iterator[ChatDelta]) -> Iterator[ChatDelta]:
    """The JSON answer of a forced call returned as that call."""
    step = _forced_step()
    for delta in deltas:
        out = step(delta)
        if out is not None:
            yield out


async def aforced_deltas(deltas: AsyncIterator[ChatDelta]) -> AsyncIterator[ChatDelta]:
    """Async twin of :func:`forced_deltas`."""
    step = _forced_step()
    async for delta in deltas:
        out = step(delta)
        if out is not None:
            yield out
