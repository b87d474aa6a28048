"""Grammars that force tool calls: one of the bound tools, arguments valid by its schema.

The call is written in the model's own syntax (its registered :class:`CallLayout`), so a
forced call reads like one the model would write unforced; models without a native syntax
(or whose syntax has no layout) write Hermes-style ``<tool_call>{...}</tool_call>`` blocks.
The same grammar constrains the rest of a call the model opened by itself: generation
stops at the syntax's start marker, then continues under this grammar.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_localllm._core.decoding.json_grammar import GrammarBuilder
from langchain_localllm._core.decoding.pattern import (
    OPTIONAL,
    Grammar,
    Pattern,
    Ref,
    Repeat,
    Text,
    alt,
    gbnf_expression,
    seq,
)
from langchain_localllm.errors import InvalidParameterError
from langchain_localllm.prompts.tool_calls.registry import ToolCallSyntax, get_tool_call_syntax

__all__ = ["forced_syntax", "tool_call_grammar", "tool_call_ir"]


def forced_syntax(syntax: ToolCallSyntax | None) -> ToolCallSyntax:
    """The syntax forced calls are written and parsed in: the model's own, else Hermes."""
    return syntax if syntax is not None and syntax.layout is not None else get_tool_call_syntax("hermes")


def tool_call_grammar(
    tools: Sequence[dict[str, Any]],
    syntax: ToolCallSyntax | None = None,
    *,
    parallel: bool = False,
    max_calls: int | None = None,
) -> str:
    """GBNF for one call (or, with ``parallel``, one or more) to one of ``tools``.

    Args:
        tools: OpenAI-style tool definitions (``{"type": "function", "function": {...}}``,
            as ``langchain_core.utils.function_calling.convert_to_openai_tool`` makes them).
        syntax: The model's tool-call syntax (see :func:`forced_syntax`).
        parallel: Allow several calls in a row.
        max_calls: With ``parallel``, at most this many calls (None: no limit).
    """
    return _builder(tools, syntax, parallel=parallel, max_calls=max_calls).text()


def tool_call_ir(
    tools: Sequence[dict[str, Any]],
    syntax: ToolCallSyntax | None = None,
    *,
    parallel: bool = False,
    max_calls: int | None = None,
) -> Grammar:
    """The grammar of :func:`tool_call_grammar` in the IR (for budget-aware decoding)."""
    builder = _builder(tools, syntax, parallel=parallel, max_calls=max_calls)
    return Grammar(dict(builder.patterns), "root")


def _builder(
    tools: Sequence[dict[str, Any]], syntax: ToolCallSyntax | None, *, parallel: bool, max_calls: int | None
) -> GrammarBuilder:
    if not tools:
        raise InvalidParameterError("A forced tool call needs at least one tool.")
    layout = forced_syntax(syntax).layout
    assert layout is not None
    builder = GrammarBuilder()
    calls: list[Pattern] = []
    for i, tool in enumerate(tools):
        function = tool.get("function", tool)
        name = function["name"]
        params = function.get("parameters") or {"type": "object", "properties": {}}
        args = builder.schema_rule(params, f"tool{i}-args")
        if args == "object":  # no parameters: always {}
            args = builder.add_pattern(f"tool{i}-noargs", Text("{}"))
        before, after = layout.call.format(name=json.dumps(name)[1:-1], args="\x00").split("\x00")
        calls.append(Ref(builder.add_pattern(f"tool{i}-call", _seq(before, Ref(args), after))))
    call = Ref(builder.add_pattern("call", alt(*calls)))
    more: Pattern = Text("")
    if parallel:
        high = None if max_calls is None else max(max_calls - 1, 0)
        more = Repeat(_seq(layout.separator, call), 0, high, OPTIONAL)
    root = _seq(layout.open, call, more, layout.close)
    builder.rules["root"], builder.patterns["root"] = gbnf_expression(root), root
    return builder


def _seq(*items: str | Pattern) -> Pattern:
    return seq(*(Text(item) if isinstance(item, str) else item for item in items if item != ""))
