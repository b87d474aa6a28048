"""Constrained decoding makes structured output valid by construction.

A random-weight model writes whatever its random logits favour; only the grammar built
from the schema stands between it and invalid JSON. 200 calls across 10 schemas (nested
objects, enums, arrays, optional fields, numbers with bounds) must all parse and validate.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from langchain_localllm import LlamaCpp
from langchain_localllm._core.decoding.json_grammar import json_schema_to_gbnf
from tests.fixtures.models import tiny_model

NAME = {"type": "string", "minLength": 1, "maxLength": 12}
SCHEMAS: list[dict[str, Any]] = [
    {  # flat object, every primitive
        "type": "object",
        "properties": {"name": NAME, "age": {"type": "integer"}, "active": {"type": "boolean"}},
        "required": ["name", "age", "active"],
    },
    {  # enums and const
        "type": "object",
        "properties": {
            "label": {"enum": ["positive", "negative", "neutral"]},
            "kind": {"const": "sentiment"},
            "level": {"enum": [1, 2, 3, None]},
        },
        "required": ["label", "kind", "level"],
    },
    {  # integer bounds, both sides, negative included
        "type": "object",
        "properties": {
            "stars": {"type": "integer", "minimum": 1, "maximum": 5},
            "delta": {"type": "integer", "minimum": -40, "maximum": 125},
            "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
        },
        "required": ["stars", "delta", "year"],
    },
    {  # number bounds, exclusive bounds, one-sided bounds
        "type": "object",
        "properties": {
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "temp": {"type": "number", "minimum": -10.5, "exclusiveMaximum": 50},
            "count": {"type": "integer", "exclusiveMinimum": 0},
            "debt": {"type": "number", "maximum": -1},
        },
        "required": ["score", "temp", "count", "debt"],
    },
    {  # optional fields only
        "type": "object",
        "properties": {
            "a": NAME,
            "b": {"type": "integer", "minimum": 0, "maximum": 9},
            "c": {"type": "boolean"},
        },
    },
    {  # optional before and after required
        "type": "object",
        "properties": {"x": {"type": "null"}, "y": NAME, "z": {"type": "integer", "maximum": 3}},
        "required": ["y"],
    },
    {  # arrays with bounds on items and length
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": NAME, "minItems": 1, "maxItems": 3},
            "scores": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 100},
                "maxItems": 4,
            },
        },
        "required": ["tags", "scores"],
    },
    {  # nested objects via $defs (as Pydantic writes them)
        "$defs": {
            "Address": {
                "type": "object",
                "properties": {"city": NAME, "zip": {"type": "string", "minLength": 5, "maxLength": 5}},
                "required": ["city", "zip"],
            }
        },
        "type": "object",
        "properties": {
            "person": NAME,
            "home": {"$ref": "#/$defs/Address"},
            "work": {"$ref": "#/$defs/Address"},
        },
        "required": ["person", "home"],
    },
    {  # anyOf, type lists, nullable
        "type": "object",
        "properties": {
            "id": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 999}, NAME]},
            "note": {"type": ["string", "null"], "maxLength": 8},
        },
        "required": ["id", "note"],
    },
    {  # a list of records, the shape extraction uses
        "type": "object",
        "properties": {
            "records": {
                "type": "array",
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {"name": NAME, "role": {"enum": ["author", "editor"]}},
                    "required": ["name", "role"],
                },
            }
        },
        "required": ["records"],
    },
]


@pytest.fixture(scope="module")
def llm() -> LlamaCpp:
    return LlamaCpp(
        model_path=str(tiny_model("chatml", size="small")),
        n_ctx=1024,
        max_tokens=600,
        temperature=1.0,
        top_k=0,
    )


@pytest.mark.parametrize("index", range(len(SCHEMAS)))
def test_every_constrained_output_parses_and_validates(llm: LlamaCpp, index: int) -> None:
    schema = SCHEMAS[index]
    validator = jsonschema.Draft202012Validator(schema)
    grammar = json_schema_to_gbnf(schema)
    outputs = [
        llm.invoke(f"Write the JSON record number {seed}.", grammar=grammar, seed=seed) for seed in range(20)
    ]
    for text in outputs:
        value = json.loads(text)
        assert not list(validator.iter_errors(value)), (text, schema)


def test_bounds_are_in_the_grammar_not_only_checked_after(llm: LlamaCpp) -> None:
    """llama-cpp-python's converter ignores bounds; the grammar here enforces them."""
    from llama_cpp import llama_grammar

    schema = {"type": "integer", "minimum": 3, "maximum": 7}
    assert "[3-7]" in json_schema_to_gbnf(schema)
    theirs = llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    assert "[3-7]" not in theirs
    grammar = json_schema_to_gbnf(schema)
    values = {int(llm.invoke("A number:", grammar=grammar, seed=seed)) for seed in range(30)}
    assert values <= set(range(3, 8))


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": NAME, "unit": {"enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": SCHEMAS[2]}},
    {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.mark.parametrize("syntax_name", [None, "hermes", "llama3_json", "mistral", "deepseek", "granite"])
def test_forced_tool_calls_in_every_layout_parse_to_bound_tools(
    llm: LlamaCpp, syntax_name: str | None
) -> None:
    from langchain_localllm.prompts.tool_calls import get_tool_call_syntax, parse_tool_calls
    from langchain_localllm.prompts.tool_calls.grammar import forced_syntax, tool_call_grammar

    syntax = get_tool_call_syntax(syntax_name) if syntax_name else None
    grammar = tool_call_grammar(TOOLS, syntax, parallel=True, max_calls=3)
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    names = set()
    for seed in range(8):
        text = llm.invoke("Call a tool.", grammar=grammar, seed=seed)
        parsed = parse_tool_calls(text, forced_syntax(syntax))
        assert parsed.invalid_tool_calls() == [], text
        assert parsed.tool_calls(), text
        assert parsed.content.strip() == "", text
        for call in parsed.tool_calls():
            jsonschema.validate(call["args"], schemas[call["name"]])
            names.add(call["name"])
    assert names  # every call named a bound tool (the dict lookup above) with valid arguments
