"""JSON schema -> GBNF: the grammar accepts exactly the valid documents.

llama.cpp's own grammar engine is the judge: a document is accepted when llama.cpp's
sampler, driven character by character, can produce it. Checked here through
llama-cpp-python's grammar parser (a grammar that does not compile raises).
"""

from __future__ import annotations

import pytest

from langchain_localllm._core.json_grammar import _int_range, json_schema_to_gbnf
from langchain_localllm.prompts.tool_calls import get_tool_call_syntax
from langchain_localllm.prompts.tool_calls.grammar import tool_call_grammar


def _matches(rule: str, text: str) -> bool:
    """Whether ``text`` is in the language of a GBNF alternative list over digits (a regex check)."""
    import re

    pattern = rule.replace('"', "").replace(" ", "").replace("|", "|")
    pattern = re.sub(r"\{(\d+)\}", r"{\1}", pattern)
    return re.fullmatch(pattern, text) is not None


@pytest.mark.parametrize(
    ("low", "high"), [(0, 9), (3, 7), (0, 130), (1900, 2100), (7, 7), (95, 1005), (0, 0)]
)
def test_integer_ranges_are_exact(low: int, high: int) -> None:
    rule = _int_range(low, high)
    accepted = {n for n in range(3000) if _matches(rule, str(n))}
    assert accepted == set(range(low, high + 1))
    assert not _matches(rule, "0" + str(low))  # no leading zeros


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
