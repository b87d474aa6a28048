"""The grammars of :mod:`langchain_localllm._core.decoding.json_grammar` and of the tool-call syntaxes
compile in llama.cpp itself (this needs llama-cpp-python, so it is not in the unit tier)."""

from __future__ import annotations

from langchain_localllm._core.decoding.json_grammar import json_schema_to_gbnf
from langchain_localllm.prompts.tool_calls import get_tool_call_syntax
from langchain_localllm.prompts.tool_calls.grammar import tool_call_grammar


def test_grammars_compile_in_llama_cpp() -> None:
    from llama_cpp import LlamaGrammar

    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "number", "minimum": -2.5, "maximum": 3},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2},
            "next": {"$ref": "#"},
        },
    }
    LlamaGrammar.from_string(json_schema_to_gbnf(schema), verbose=False)
    tools = [
        {"type": "function", "function": {"name": "get_time", "parameters": schema}},
        {"type": "function", "function": {"name": "noargs", "parameters": {}}},
    ]
    from langchain_localllm.prompts.tool_calls import SYNTAXES

    for syntax in SYNTAXES.values():
        LlamaGrammar.from_string(tool_call_grammar(tools, syntax, parallel=True), verbose=False)
    assert '"<tool_call>\\n{' in tool_call_grammar(tools, None)  # no native syntax: Hermes blocks
    assert "[TOOL_CALLS]get_time[ARGS]" in tool_call_grammar(tools, get_tool_call_syntax("mistral"))
