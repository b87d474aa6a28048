"""Reading tool_choice, response_format and output schemas the way LangChain passes them."""

from __future__ import annotations

from typing import TypedDict

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_localllm._core.tools.calling import normalize_tool_choice, tool_request
from langchain_localllm._core.tools.schemas import output_schema, parse_json_text
from langchain_localllm.errors import InvalidParameterError


@tool
def get_weather(city: str) -> str:
    """Weather in a city."""
    return city


class Person(BaseModel):
    """A person."""

    name: str
    age: int = Field(ge=0, le=150)


class Movie(TypedDict):
    """A movie."""

    title: str
    year: int


TOOLS = [
    {"type": "function", "function": {"name": "a", "parameters": {}}},
    {"type": "function", "function": {"name": "b", "parameters": {}}},
]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, "auto"),
        ("auto", "auto"),
        ("none", "none"),
        ("any", "required"),
        ("required", "required"),
        (True, "required"),
        ("b", "b"),
        ({"type": "function", "function": {"name": "a"}}, "a"),
    ],
)
def test_tool_choice_forms(choice: object, expected: str) -> None:
    assert normalize_tool_choice(choice, TOOLS) == expected


def test_unknown_tool_choice_names_the_bound_tools() -> None:
    with pytest.raises(InvalidParameterError, match="a, b"):
        normalize_tool_choice("c", TOOLS)


def test_tool_request_pops_what_it_reads() -> None:
    kwargs = {
        "tools": [get_weather],
        "tool_choice": "get_weather",
        "parallel_tool_calls": True,
        "temperature": 0.1,
    }
    request = tool_request(kwargs)
    assert kwargs == {"temperature": 0.1}
    assert [t["function"]["name"] for t in request.forced_tools] == ["get_weather"]
    assert request.parallel is True
    assert tool_request({"tools": [get_weather]}).parallel is False  # one call unless asked


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "p", "schema": Person.model_json_schema()}},
        {"type": "json_object", "schema": Person.model_json_schema()},  # llama-cpp-python's form
        Person,
    ],
)
def test_response_format_forms_give_the_schema(response_format: object) -> None:
    request = tool_request({"response_format": response_format})
    assert request.answer_schema is not None
    assert request.answer_schema["properties"]["age"]["maximum"] == 150


def test_json_object_mode_is_any_object() -> None:
    assert tool_request({"response_format": {"type": "json_object"}}).answer_schema == {"type": "object"}


def test_bad_response_format_is_a_typed_error() -> None:
    with pytest.raises(InvalidParameterError, match="response_format"):
        tool_request({"response_format": "json"})


def test_output_schemas_validate_into_the_users_type() -> None:
    person = output_schema(Person)
    assert person.parse('{"name": "Ann", "age": 34}') == Person(name="Ann", age=34)
    with pytest.raises(OutputParserException, match="Person"):
        person.parse('{"name": "Ann", "age": 200}')
    movie = output_schema(Movie)
    assert movie.name == "Movie"
    assert movie.parse('{"title": "Up", "year": 2009}') == {"title": "Up", "year": 2009}
    with pytest.raises(OutputParserException, match="year"):
        movie.parse('{"title": "Up", "year": "2009"}')
    raw = output_schema({"title": "Tag", "type": "object", "properties": {"t": {"enum": ["x"]}}})
    with pytest.raises(OutputParserException, match="at t"):
        raw.parse('{"t": "y"}')


def test_json_text_in_fences_and_blanks_parses() -> None:
    assert parse_json_text('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_text('{"a": 1}  \n\t') == {"a": 1}  # as Ollama's deepseek-r1 recording ends
    with pytest.raises(OutputParserException, match="not valid JSON"):
        parse_json_text('{"a": ')
