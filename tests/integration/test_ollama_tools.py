"""ChatOllama tool calls and structured output: real recorded traffic and the emulator.

Recorded answers (tests/cassettes/ollama/TOOL_CALLS.PROVENANCE.md) come from live servers
that parsed the model's calls themselves; forced choices and schemas go through ``format``,
which the emulator turns into a llama.cpp grammar as Ollama does, on a random-weight model.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from langchain_localllm import ChatOllama
from tests.fixtures.models import tiny_model
from tests.integration.test_chat_ollama_recordings import _serve_recording, recorded_lines
from tests.integration.test_chat_tools_inprocess import ping, set_level
from tests.support.ollama_server import OllamaTestServer


@tool
def weather(city: str) -> str:
    """Current weather in a city."""
    return "sunny"


@tool
def search(query: str) -> str:
    """Search the web."""
    return "3pm"


def _expected(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (c["function"]["name"], c["function"]["arguments"])
        for line in recorded_lines(name)
        for c in (line.get("message") or {}).get("tool_calls") or []
    ]


@pytest.mark.parametrize(
    "name",
    [
        "chat_stream_tool_calls_qwen3_14b.1.ndjson",
        "chat_stream_tool_calls_granite3-dense_8b.ndjson",
        "chat_tool_calls_parallel_qwen2.5_14b.json",
    ],
)
def test_recorded_tool_calls_become_tool_calls(name: str) -> None:
    expected = _expected(name)
    with _serve_recording(name) as server:
        chat = ChatOllama(model="m", base_url=server.base_url).bind_tools([weather, search])
        chunks = list(chat.stream("What time is the tigers game today in Detroit?"))
        message = chat.invoke("again")
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessageChunk)
    for result in (total, message):
        assert [(c["name"], c["args"]) for c in result.tool_calls] == expected
        assert len({c["id"] for c in result.tool_calls}) == len(expected)
        assert result.response_metadata["finish_reason"] == "tool_calls"
        assert [b["name"] for b in result.content_blocks if b["type"] == "tool_call"] == [
            n for n, _ in expected
        ]
    # streamed as the server sent them: one chunk per recorded call, indices in order
    indices = [tc["index"] for c in chunks for tc in c.tool_call_chunks]
    assert indices == list(range(len(expected)))


@pytest.fixture(scope="module")
def server() -> Any:
    with OllamaTestServer({"tiny-chatml": tiny_model("chatml")}, n_ctx=512) as running:
        yield running


class Setting(BaseModel):
    level: Literal["low", "high", "off"]
    count: int


@pytest.mark.parametrize(
    "choice", ["any", "required", "set_level", {"type": "function", "function": {"name": "set_level"}}]
)
def test_forced_choice_goes_through_format(server: OllamaTestServer, choice: Any) -> None:
    chat = ChatOllama(model="tiny-chatml", base_url=server.base_url, num_predict=80, temperature=1.0)
    bound = chat.bind_tools([ping, set_level], tool_choice=choice)  # bounded arguments: the random model ends
    message = bound.invoke("Set the level.")
    assert message.invalid_tool_calls == []
    (call,) = message.tool_calls
    if choice != "any" and choice != "required":
        assert call["name"] == "set_level"
    if call["name"] == "set_level":
        assert call["args"]["level"] in ("low", "high")
        assert isinstance(call["args"]["count"], int)
    chunks = list(bound.stream("Set the level."))
    # one call, streamed as it is written (the one forced-answer reader of every server chat model)
    assert {tc["index"] for c in chunks for tc in c.tool_call_chunks} == {0}
    assert sum(1 for c in chunks for tc in c.tool_call_chunks if tc["id"]) == 1
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessageChunk)
    assert len(total.tool_calls) == 1 and total.invalid_tool_calls == []


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_structured_output_over_ollama(server: OllamaTestServer, method: Any) -> None:
    chat = ChatOllama(model="tiny-chatml", base_url=server.base_url, num_predict=80, temperature=1.0)
    if method == "json_mode":
        value = chat.with_structured_output(None, method="json_mode").invoke("JSON please")
        assert isinstance(value, dict)
        return
    for seed in range(3):
        result = chat.with_structured_output(Setting, method=method, include_raw=True).invoke(
            "Give a setting.", seed=seed
        )
        assert result["parsing_error"] is None, result["raw"]
        assert isinstance(result["parsed"], Setting)


def test_auto_tool_choice_sends_the_tools(server: OllamaTestServer) -> None:
    """The emulator's tiny model, like Ollama's gemma3, does not support tools: the server's
    400 comes back as a typed error, nothing is made up."""
    from langchain_localllm.errors import InvalidParameterError

    chat = ChatOllama(model="tiny-chatml", base_url=server.base_url)
    with pytest.raises(InvalidParameterError, match="does not support tools"):
        chat.bind_tools([weather]).invoke("weather?")


def test_auto_tool_choice_reaches_a_tool_capable_template(server: OllamaTestServer) -> None:
    """A model served with a template that renders tools (Qwen 2.5's, as a Modelfile ``TEMPLATE``)
    supports tools: ChatOllama sends them with tool_choice="auto", the template puts them in
    the prompt (the prompt grows by their description), and what the model writes comes back."""
    from pathlib import Path

    import httpx

    template = Path(__file__).parent.parent / "data" / "chat_templates" / "Qwen-Qwen2.5-7B-Instruct.jinja"
    server.add_model("tiny-tools", tiny_model("chatml"), template=template.read_text(), stop=())
    show = httpx.post(f"{server.base_url}/api/show", json={"model": "tiny-tools"}).json()
    assert "tools" in show["capabilities"]
    chat = ChatOllama(model="tiny-tools", base_url=server.base_url, num_predict=8, temperature=0)
    plain = chat.invoke("Weather in Paris?")
    with_tools = chat.bind_tools([weather]).invoke("Weather in Paris?")
    sent = server.requests[-1][2]
    assert [t["function"]["name"] for t in sent["tools"]] == ["weather"] and "format" not in sent
    assert plain.usage_metadata is not None and with_tools.usage_metadata is not None
    grown = with_tools.usage_metadata["input_tokens"] - plain.usage_metadata["input_tokens"]
    assert grown > len(json.dumps(convert_to_openai_tool(weather))) // 8  # the schema is in the prompt
