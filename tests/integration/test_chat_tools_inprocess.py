"""Tool calls and structured output of the in-process chat models on a random-weight model.

Whatever the random weights favour, the grammar decides what can come out: every forced call
names a bound tool with valid arguments and every structured answer validates. (Arguments are
bounded here so that a random model, which never chooses to end a string, finishes in time.)
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_localllm import ChatGPT4All, ChatLlamaCpp
from langchain_localllm.errors import UnsupportedParameterError
from tests.fixtures.models import tiny_model


@tool
def set_level(level: Literal["low", "high"], count: int) -> str:
    """Set the level."""
    return level


@tool
def ping() -> str:
    """Check the connection."""
    return "pong"


class Setting(BaseModel):
    level: Literal["low", "high", "off"]
    count: int = Field(ge=0, le=10)
    note: str | None = Field(default=None, max_length=8)


@pytest.fixture(scope="module")
def chat() -> ChatLlamaCpp:
    return ChatLlamaCpp(model_path=str(tiny_model("chatml")), max_tokens=120, temperature=1.0, n_ctx=1024)


@pytest.mark.parametrize(
    "choice", ["any", "required", "set_level", {"type": "function", "function": {"name": "ping"}}]
)
def test_forced_choices_give_one_valid_call(chat: ChatLlamaCpp, choice: Any) -> None:
    bound = chat.bind_tools([set_level, ping], tool_choice=choice)
    for seed in range(4):
        message = bound.invoke("Go.", seed=seed)
        assert message.invalid_tool_calls == []
        (call,) = message.tool_calls
        if isinstance(choice, str) and choice in ("set_level",):
            assert call["name"] == "set_level"
        if isinstance(choice, dict):
            assert call == {**call, "name": "ping", "args": {}}
        if call["name"] == "set_level":
            set_level.args_schema.model_validate(call["args"])  # type: ignore[union-attr]
        assert message.response_metadata["finish_reason"] == "stop"
        assert [b["type"] for b in message.content_blocks].count("tool_call") == 1


def test_streamed_calls_add_up_to_the_invoked_call(chat: ChatLlamaCpp) -> None:
    bound = chat.bind_tools([set_level], tool_choice="any")
    chunks = list(bound.stream("Go.", seed=3))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert [c["args"] for c in total.tool_calls] == [
        c["args"] for c in bound.invoke("Go.", seed=3).tool_calls
    ]
    assert len(total.tool_calls) == 1


def test_parallel_calls_only_when_asked(chat: ChatLlamaCpp) -> None:
    counts = {
        len(
            chat.bind_tools([ping], tool_choice="any", parallel_tool_calls=True)
            .invoke("Go.", seed=s)
            .tool_calls
        )
        for s in range(6)
    }
    assert max(counts) > 1  # the random model keeps calling when allowed
    assert all(
        len(chat.bind_tools([ping], tool_choice="any").invoke("Go.", seed=s).tool_calls) == 1
        for s in range(3)
    )


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_always_validates(chat: ChatLlamaCpp, method: Any) -> None:
    structured = chat.with_structured_output(Setting, method=method, include_raw=True)
    for seed in range(5):
        result = structured.invoke("A setting.", seed=seed)
        assert result["parsing_error"] is None, result["raw"]
        assert isinstance(result["parsed"], Setting)


def test_json_mode_and_the_response_format_create_agent_sends(chat: ChatLlamaCpp) -> None:
    assert isinstance(chat.with_structured_output(None, method="json_mode").invoke("JSON."), dict)
    schema = Setting.model_json_schema()
    message = chat.invoke(
        "A setting.",
        response_format={"type": "json_schema", "json_schema": {"name": "Setting", "schema": schema}},
    )
    Setting.model_validate_json(message.text)


def test_tool_history_is_written_for_templates_without_tool_support(chat: ChatLlamaCpp) -> None:
    history = [
        HumanMessage("Set it."),
        AIMessage("", tool_calls=[{"name": "set_level", "args": {"level": "low", "count": 2}, "id": "c1"}]),
        ToolMessage("done", tool_call_id="c1"),
    ]
    message = chat.bind_tools([set_level, ping], tool_choice="ping").invoke(history)
    assert [c["name"] for c in message.tool_calls] == ["ping"]
    plain = chat.invoke(history)  # no tools bound now, the history still renders
    assert isinstance(plain, AIMessage)


def test_gpt4all_refuses_what_it_cannot_constrain() -> None:
    chat = ChatGPT4All(model=str(tiny_model("chatml")), max_tokens=8)
    with pytest.raises(UnsupportedParameterError, match="ChatLlamaCpp"):
        chat.bind_tools([ping], tool_choice="any").invoke("Go.")
    with pytest.raises(UnsupportedParameterError, match="response format"):
        chat.with_structured_output(Setting).invoke("Go.")
    assert isinstance(chat.bind_tools([ping]).invoke("Go."), AIMessage)  # auto: described, parsed
