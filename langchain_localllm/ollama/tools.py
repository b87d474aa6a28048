"""Tool calls and structured output over Ollama's ``/api/chat``: Ollama's part of the tool layer.

- ``tool_choice="auto"``: the tools are sent (``tools``) and the calls Ollama's own parser
  found come back in ``message.tool_calls`` (streamed as whole calls, one chunk each:
  :func:`call_chunks`).
- A constrained answer (``_core.tool_calling``): Ollama's strategy is its ``format``
  (:data:`OLLAMA_FORMAT`), a JSON schema (or ``"json"``) the server turns into a grammar.
  Ollama takes no ``tool_choice``, so a forced call is the call's schema as ``format``
  (``forced_call_schema``), and the tools are described in a system message (sending
  ``tools`` as well would let the model's template take over, and servers refuse ``tools``
  for models without tool support); the answer's JSON is turned back into the call by the
  server chat pipeline's ``ForcedCallReader``.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage

from langchain_localllm._core.server.chat import server_call_chunk
from langchain_localllm._core.tools.calling import Constraint, ToolRequest, new_call_id
from langchain_localllm.errors import MalformedResponseError

__all__ = ["OLLAMA_FORMAT", "OllamaFormat", "call_chunks", "tool_fields"]

FORCED_INSTRUCTIONS = (
    "Call one of these tools (JSON schemas):\n<tools>\n{tools}\n</tools>\n"
    'Answer with the call as JSON: {{"name": <tool name>, "arguments": {{...}}}}.'
)


class OllamaFormat:
    """Ollama's constrained decoding: ``format``, a JSON schema or ``"json"`` (any JSON)."""

    def fields(self, constraint: Constraint) -> dict[str, Any]:
        return {"format": "json" if constraint.json_object else constraint.sent_schema()}


OLLAMA_FORMAT = OllamaFormat()


def tool_fields(
    messages: list[BaseMessage], tools: ToolRequest, constraint: Constraint | None
) -> tuple[list[BaseMessage], dict[str, Any]]:
    """The messages to send and the ``/api/chat`` fields for what the call asked of the tool layer."""
    fields = OLLAMA_FORMAT.fields(constraint) if constraint is not None else {}
    if constraint is not None and constraint.forced_tools:
        described = FORCED_INSTRUCTIONS.format(
            tools="\n".join(json.dumps(t["function"]) for t in constraint.forced_tools)
        )
        if messages and isinstance(messages[0], SystemMessage):
            return [SystemMessage(f"{messages[0].text}\n\n{described}"), *messages[1:]], fields
        return [SystemMessage(described), *messages], fields
    if tools.offered_tools:
        fields["tools"] = list(tools.offered_tools)
    return messages, fields


def call_chunks(calls: Any, first_index: int, url: str) -> list[dict[str, Any]]:
    """``message.tool_calls`` of an Ollama response (whole calls) as LangChain tool-call chunks."""
    if calls is None:
        return []
    if not isinstance(calls, list) or not all(isinstance(call, dict) for call in calls):
        raise MalformedResponseError(
            f"{url} sent tool_calls that are not a list of calls: {calls!r:.200}", url=url
        )
    chunks = []
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        arguments = function.get("arguments") if isinstance(function, dict) else None
        chunks.append(
            server_call_chunk(
                function.get("name") if isinstance(function, dict) else None,
                arguments if arguments is not None else {},
                call.get("id") or new_call_id(),
                first_index + i,
                url,
            )
        )
    return chunks
