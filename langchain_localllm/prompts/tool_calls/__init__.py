"""Native tool-call syntaxes of local models: a registry, detection, streaming parsers.

.. code-block:: python

    from langchain_localllm.prompts.tool_calls import detect_tool_call_syntax, parse_tool_calls

    syntax = detect_tool_call_syntax(chat_template)  # e.g. "hermes" for Qwen 2.5
    parsed = parse_tool_calls(model_output, syntax)
    parsed.content, parsed.tool_calls(), parsed.invalid_tool_calls()
"""

from __future__ import annotations

from langchain_localllm.prompts.tool_calls import syntaxes as _syntaxes  # noqa: F401  (registers built-ins)
from langchain_localllm.prompts.tool_calls.registry import (
    SYNTAXES,
    CallLayout,
    RawCall,
    SectionParse,
    ToolCallSyntax,
    detect_tool_call_syntax,
    get_tool_call_syntax,
    register_tool_call_syntax,
)
from langchain_localllm.prompts.tool_calls.stream import ParsedOutput, ToolCallParser, parse_tool_calls

__all__ = [
    "SYNTAXES",
    "CallLayout",
    "ParsedOutput",
    "RawCall",
    "SectionParse",
    "ToolCallParser",
    "ToolCallSyntax",
    "detect_tool_call_syntax",
    "get_tool_call_syntax",
    "parse_tool_calls",
    "register_tool_call_syntax",
]
