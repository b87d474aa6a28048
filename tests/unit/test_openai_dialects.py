"""The dialect registry and the request body each dialect gets (no server needed: pure functions)."""

from __future__ import annotations

import pytest

from langchain_localllm import ChatOpenAICompatible, OpenAICompatible
from langchain_localllm._core.tools.calling import tool_request
from langchain_localllm.errors import InvalidParameterError, UnsupportedParameterError
from langchain_localllm.openai_compatible.dialects import DIALECTS, dialect_for_owner, register_dialect
from langchain_localllm.openai_compatible.server import ServerInfo

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def info(dialect: str) -> ServerInfo:
    return ServerInfo(dialect=DIALECTS[dialect], models=("m",), n_ctx=None)


def chat_body(
    chat: ChatOpenAICompatible, dialect: str, stop: list[str], kwargs: dict[str, object]
) -> dict[str, object]:
    """The request body of a call with ``kwargs`` (the tool layer reads its tool arguments first)."""
    kwargs = dict(kwargs)
    return chat._chat_body(info(dialect), [], stop, kwargs, tool_request(kwargs))


def test_a_dialect_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        register_dialect("vllm")(lambda schema: {})


@pytest.mark.parametrize(
    ("owner", "dialect"),
    [("vllm", "vllm"), ("llamacpp", "llama-server"), ("library", "ollama"), ("sglang", "sglang")],
)
def test_servers_are_recognised_by_owned_by(owner: str, dialect: str) -> None:
    found = dialect_for_owner(owner)
    assert found is not None
    assert found.name == dialect
    assert dialect_for_owner("organization_owner") is None  # LM Studio: plain OpenAI


@pytest.mark.parametrize(
    ("dialect", "fields"),
    [
        ("vllm", {"structured_outputs": {"json": SCHEMA}}),
        ("vllm-guided", {"guided_json": SCHEMA}),
        ("llama-server", {"json_schema": SCHEMA}),
        (
            "openai",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}},
        ),
    ],
)
def test_json_schema_is_sent_the_way_each_server_reads_it(dialect: str, fields: dict[str, object]) -> None:
    chat = ChatOpenAICompatible(model="m", dialect=dialect, json_schema=SCHEMA)
    body = chat_body(chat, dialect, ["\n\n"], {})
    assert {k: body[k] for k in fields} == fields
    assert body["stream_options"] == {"include_usage": True}
    assert body["stop"] == ["\n\n"]


def test_grammar_only_where_the_server_has_grammars() -> None:
    llm = OpenAICompatible(model="m", dialect="vllm")
    with pytest.raises(UnsupportedParameterError, match="llama-server"):
        llm._body(info("vllm"), {"grammar": 'root ::= "a"'})
    assert llm._body(info("llama-server"), {"grammar": 'root ::= "a"'})["grammar"] == 'root ::= "a"'


def test_settings_errors_are_typed() -> None:
    with pytest.raises(InvalidParameterError, match="unknown dialect"):
        ChatOpenAICompatible(dialect="tgi-2")
    with pytest.raises(InvalidParameterError, match="did you mean 'temperature'"):
        ChatOpenAICompatible(model="m", dialect="vllm")._body(info("vllm"), {"temprature": 0})


def test_base_url_may_end_in_v1_like_langchain_openai() -> None:
    assert ChatOpenAICompatible(base_url="http://127.0.0.1:8000/v1/").base_url == "http://127.0.0.1:8000"
    fleet = ChatOpenAICompatible(base_url=["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001"])
    assert fleet.base_url == ["http://127.0.0.1:8000", "http://127.0.0.1:8001"]


def test_tool_choice_forms_map_to_openai() -> None:
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return city

    chat = ChatOpenAICompatible(model="m", dialect="vllm")
    for given, sent in [("any", "required"), (True, "required"), ("auto", "auto"), (False, "none")]:
        bound = chat.bind_tools([get_weather], tool_choice=given)
        assert bound.kwargs["tool_choice"] == sent  # type: ignore[attr-defined]
    named = chat.bind_tools([get_weather], tool_choice="get_weather")
    assert named.kwargs["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("dialect", "field"),
    # llama-server takes a grammar: the call's, fitted to max_tokens (whitespace bounded too)
    [("vllm", "structured_outputs"), ("llama-server", "grammar"), ("openai", "response_format")],
)
def test_a_forced_tool_choice_is_sent_as_the_calls_schema(dialect: str, field: str) -> None:
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return city

    chat = ChatOpenAICompatible(model="m", dialect=dialect)
    kwargs = chat.bind_tools([get_weather], tool_choice="any").kwargs  # type: ignore[attr-defined]
    body = chat_body(chat, dialect, [], kwargs)
    assert (body["tool_choice"], len(body["tools"])) == ("none", 1)  # shown to the model, not parsed
    assert "get_weather" in str(body[field]) and "city" in str(body[field])
    none = chat_body(chat, dialect, [], chat.bind_tools([get_weather], tool_choice="none").kwargs)  # type: ignore[attr-defined]
    assert "tools" not in none and "tool_choice" not in none
    with pytest.raises(InvalidParameterError, match="cannot be combined with"):
        chat_body(chat, dialect, [], {**kwargs, "json_schema": SCHEMA})
