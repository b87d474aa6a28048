"""The OpenAI-compatible classes against real vLLM, Ollama ``/v1`` and llama-box traffic.

Cassettes in tests/cassettes/openai_compatible/ (provenance in the README there) are replayed by
vcrpy, matched on method and path. Expected values are read from the recordings themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from pydantic import BaseModel

from langchain_localllm import ChatOpenAICompatible, OpenAICompatible
from langchain_localllm._core.http.errors import error_from_response
from langchain_localllm.errors import ContextLengthExceededError
from langchain_localllm.openai_compatible.chat_models import ChatReader
from langchain_localllm.openai_compatible.server import OPENAI_COMPATIBLE

CASSETTES = Path(__file__).parent.parent / "cassettes" / "openai_compatible"


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {"match_on": ["method", "path"], "record_mode": "none"}


def recorded(name: str, interaction: int = 0) -> str:
    data = yaml.safe_load((CASSETTES / name).read_text())
    return str(data["interactions"][interaction]["response"]["body"]["string"])


def sse_events(body: str) -> list[dict[str, Any]]:
    out = []
    for line in body.splitlines():
        if line.startswith("data: ") and line[6:].strip() != "[DONE]":
            out.append(json.loads(line[6:]))
    return out


def chat(**kwargs: Any) -> ChatOpenAICompatible:
    return ChatOpenAICompatible(base_url="http://127.0.0.1:8000/v1", **kwargs)


@pytest.mark.vcr
@pytest.mark.default_cassette("vllm_completions_opt-125m.yaml")
def test_vllm_completion() -> None:
    answer = json.loads(recorded("vllm_completions_opt-125m.yaml"))
    llm = OpenAICompatible(
        base_url="http://127.0.0.1:8000/v1", model="facebook/opt-125m", dialect="vllm", streaming=False
    )
    result = llm.generate(["Tell me a joke about OpenTelemetry"])
    generation = result.generations[0][0]
    assert generation.text == answer["choices"][0]["text"]
    info = generation.generation_info or {}
    assert info["finish_reason"] == "length"
    assert (info["prompt_tokens"], info["completion_tokens"]) == (20, 20)
    assert info["model"] == "facebook/opt-125m"


@pytest.mark.vcr
@pytest.mark.default_cassette("vllm_completions_stream_opt-125m.yaml")
def test_vllm_streamed_completion_without_usage_still_ends() -> None:
    events = sse_events(recorded("vllm_completions_stream_opt-125m.yaml"))
    llm = OpenAICompatible(base_url="http://127.0.0.1:8000", model="facebook/opt-125m", dialect="vllm")
    generation = llm.generate(["Tell me a joke about OpenTelemetry"]).generations[0][0]
    assert generation.text == "".join(e["choices"][0]["text"] for e in events)
    assert (generation.generation_info or {})["finish_reason"] == "length"  # no usage chunk came


@pytest.mark.vcr
@pytest.mark.default_cassette("vllm_chat_stream_include_usage_llama-3.3-70b.yaml")
def test_vllm_chat_stream_with_usage_chunk() -> None:
    events = sse_events(recorded("vllm_chat_stream_include_usage_llama-3.3-70b.yaml"))
    model = chat(model="meta-llama/Llama-3.3-70B-Instruct", dialect="vllm")
    chunks = list(model.stream("Count to five"))
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert "".join(str(c.content) for c in chunks) == text
    last = chunks[-1]
    assert last.usage_metadata == {"input_tokens": 46, "output_tokens": 14, "total_tokens": 60}
    assert last.response_metadata["finish_reason"] == "stop"
    assert last.response_metadata["system_fingerprint"].startswith("vllm-0.24.0")
    assert last.response_metadata["model_name"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert sum(1 for c in chunks if c.usage_metadata) == 1


@pytest.mark.vcr
@pytest.mark.default_cassette("vllm_chat_tool_calls_reasoning_glm-5.2.yaml")
def test_vllm_tool_call_round_trip_with_reasoning() -> None:
    def get_weather(city: str) -> str:
        """Get the weather of a city."""
        return "sunny, 25°C"

    model = chat(model="zai/GLM-5.2", dialect="vllm", streaming=False).bind_tools([get_weather])
    first = model.invoke([HumanMessage("What is the weather in Paris?")])
    assert isinstance(first, AIMessage)
    assert first.tool_calls == [
        {
            "name": "get_weather",
            "args": {"city": "Paris"},
            "id": "chatcmpl-tool-bbb91941bf76335c",
            "type": "tool_call",
        }
    ]
    assert first.additional_kwargs["reasoning_content"].startswith("The user wants to know the weather")
    assert first.response_metadata["finish_reason"] == "tool_calls"
    second = model.invoke(
        [HumanMessage("What is the weather in Paris?"), first, ToolMessage("sunny, 25°C", tool_call_id="x")]
    )
    expected = json.loads(recorded("vllm_chat_tool_calls_reasoning_glm-5.2.yaml", 1))
    assert second.content == expected["choices"][0]["message"]["content"]
    assert second.usage_metadata == {"input_tokens": 214, "output_tokens": 54, "total_tokens": 268}


class Place(BaseModel):
    city: str
    country: str


@pytest.mark.vcr
@pytest.mark.default_cassette("vllm_chat_json_schema_reasoning_glm-5.2.yaml")
def test_vllm_structured_output_parses_and_keeps_reasoning() -> None:
    model = chat(model="zai/GLM-5.2", dialect="vllm", streaming=False)
    result = model.with_structured_output(Place, include_raw=True).invoke("Where is the Eiffel Tower?")
    assert result["parsed"] == Place(city="Paris", country="France")
    assert result["raw"].additional_kwargs["reasoning_content"].startswith("1.  **Identify the core entity")
    assert result["parsing_error"] is None


@pytest.mark.vcr
@pytest.mark.default_cassette("ollama-v1_chat_stream_reasoning_usage_qwen3.yaml")
async def test_ollama_v1_streamed_reasoning_then_answer_async() -> None:
    events = sse_events(recorded("ollama-v1_chat_stream_reasoning_usage_qwen3.yaml"))
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    model = chat(model="qwen3", dialect="ollama")
    chunks = [c async for c in model.astream("Count from 1 to 3")]
    joined = chunks[0]
    for chunk in chunks[1:]:
        joined = joined + chunk
    assert isinstance(joined, AIMessageChunk)
    assert joined.additional_kwargs["reasoning_content"] == "".join(d.get("reasoning") or "" for d in deltas)
    assert joined.content == "".join(d.get("content") or "" for d in deltas)
    assert joined.usage_metadata == {"input_tokens": 17, "output_tokens": 289, "total_tokens": 306}
    assert [b["type"] for b in joined.content_blocks][:1] == ["reasoning"]


@pytest.mark.vcr
@pytest.mark.default_cassette("ollama-v1_chat_stream_tool_calls_qwen3.yaml")
def test_ollama_v1_streamed_whole_tool_call() -> None:
    events = sse_events(recorded("ollama-v1_chat_stream_tool_calls_qwen3.yaml"))
    recorded_call = next(
        e["choices"][0]["delta"]["tool_calls"][0]
        for e in events
        if e["choices"] and e["choices"][0]["delta"].get("tool_calls")
    )

    def weather(latitude: str, longitude: str) -> str:
        """Current weather at a place."""
        return "15°C"

    model = chat(model="qwen3", dialect="ollama").bind_tools([weather])
    message = model.invoke("Weather in Berlin (52.5200, 13.4050)?")
    assert message.tool_calls[0]["name"] == recorded_call["function"]["name"]
    assert message.tool_calls[0]["args"] == json.loads(recorded_call["function"]["arguments"])
    assert message.tool_calls[0]["id"] == recorded_call["id"]
    assert message.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.vcr
@pytest.mark.default_cassette("llama-box_chat_stream_reasoning_content_qwen3.yaml")
def test_llama_box_usage_in_finish_chunk_and_no_done_marker() -> None:
    events = sse_events(recorded("llama-box_chat_stream_reasoning_content_qwen3.yaml"))
    final = events[-1]
    model = chat(model="qwen3", dialect="llama-server")
    message = model.invoke("Count from 1 to 3")
    reasoning = "".join(e["choices"][0]["delta"].get("reasoning_content") or "" for e in events)
    assert message.additional_kwargs["reasoning_content"] == reasoning
    assert message.content == "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    usage = final["usage"]
    assert message.usage_metadata == {
        "input_tokens": usage["prompt_tokens"],
        "output_tokens": usage["completion_tokens"],
        "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
    }


@pytest.mark.vcr
@pytest.mark.default_cassette("llama-box_chat_tool_calls_reasoning_content_qwen3.yaml")
def test_llama_box_tool_call_with_null_content() -> None:
    answer = json.loads(recorded("llama-box_chat_tool_calls_reasoning_content_qwen3.yaml"))
    call = answer["choices"][0]["message"]["tool_calls"][0]

    def weather(latitude: str, longitude: str) -> str:
        """Current weather at a place."""
        return "15°C"

    model = chat(model="qwen3", dialect="llama-server", streaming=False).bind_tools([weather])
    message = model.invoke("Weather in Berlin?")
    assert message.content == ""
    assert message.tool_calls[0]["args"] == json.loads(call["function"]["arguments"])
    assert message.tool_calls[0]["id"] == call["id"]


@pytest.mark.vcr
@pytest.mark.default_cassette("ollama-cloud-v1_context_length_400_gpt-oss-120b.yaml")
def test_context_overflow_400_is_typed() -> None:
    with pytest.raises(ContextLengthExceededError, match="exceeded max context length"):
        chat(model="gpt-oss:120b", dialect="ollama").invoke("a very long prompt")


def test_vllm_context_overflow_body_is_typed_with_its_numbers() -> None:
    record = json.loads((CASSETTES / "vllm_chat_context_length_400_qwen3-0.6b.llamastack.json").read_text())
    message = record["response"]["exception_data"]["body"]["message"]
    body = json.dumps({"error": {"message": message, "type": "BadRequestError", "code": 400}}).encode()
    error = error_from_response(400, body, "http://127.0.0.1:8000/v1/chat/completions", OPENAI_COMPATIBLE)
    assert isinstance(error, ContextLengthExceededError)
    assert error.n_ctx == 4096


def test_vllm_incremental_tool_call_deltas_are_joined_per_index() -> None:
    record = json.loads((CASSETTES / "vllm_chat_stream_tool_calls_qwen3-0.6b.llamastack.json").read_text())
    events = [item["__data__"] for item in record["response"]["body"]]
    reader = ChatReader("recorded")
    deltas = [d for d in [*map(reader.feed, events), reader.close()] if d is not None]
    from langchain_localllm._core.base.chat import LocalChatModel

    chunks = [LocalChatModel._chunk(chat(model="m", dialect="vllm"), d).message for d in deltas]
    joined = chunks[0]
    for chunk in chunks[1:]:
        joined = joined + chunk
    fragments = [
        call["function"].get("arguments") or ""
        for e in events
        for choice in e["choices"]
        for call in (choice["delta"].get("tool_calls") or [])
    ]
    assert len([f for f in fragments if f]) > 1  # the recording streams the arguments in pieces
    assert isinstance(joined, AIMessageChunk)
    assert joined.tool_calls[0]["name"] == "get_weather"
    assert joined.tool_calls[0]["args"] == json.loads("".join(fragments))
