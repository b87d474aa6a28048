"""``ChatOllama`` against real Ollama ``/api/chat`` traffic (tests/cassettes/ollama/).

The cassettes are recordings of live Ollama servers (provenance in the README there);
requests are matched on method and path, since the recorded bodies came from other
clients. Raw recorded bodies (``*.ndjson``) are served as they were recorded by a
loopback server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import AIMessageChunk, HumanMessage

from langchain_localllm import ChatOllama
from langchain_localllm.errors import ModelNotFoundError
from tests.support.fault_server import FaultServer, stream

CASSETTES = Path(__file__).parent.parent / "cassettes" / "ollama"
URL = "http://127.0.0.1:11434"


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {"match_on": ["method", "path"], "record_mode": "none"}


def recorded_lines(name: str) -> list[dict[str, Any]]:
    """The NDJSON objects of a recording's first response, read independently of the client."""
    path = CASSETTES / name
    if path.suffix == ".yaml":
        body = yaml.safe_load(path.read_text())["interactions"][0]["response"]["body"]["string"]
    else:
        body = path.read_text()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def _sum(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


@pytest.mark.vcr
@pytest.mark.default_cassette("chat_stream_llama3.yaml")
def test_streamed_chat_llama3() -> None:
    lines = recorded_lines("chat_stream_llama3.yaml")
    final = lines[-1]
    chat = ChatOllama(model="llama3", base_url=URL)
    chunks = list(chat.stream([HumanMessage("Tell me a joke about OpenTelemetry")]))
    assert [c.content for c in chunks if c.content] == [
        line["message"]["content"] for line in lines if line["message"]["content"]
    ]
    message = _sum(chunks)
    assert message.content.startswith("Why did the OpenTelemetry")
    assert message.usage_metadata == {
        "input_tokens": final["prompt_eval_count"],
        "output_tokens": final["eval_count"],
        "total_tokens": final["prompt_eval_count"] + final["eval_count"],
    }
    metadata = message.response_metadata
    assert metadata["model_name"] == "llama3" and metadata["model_provider"] == "ollama"
    assert metadata["finish_reason"] == "stop"
    assert metadata["timings"]["predicted_ms"] == pytest.approx(final["eval_duration"] / 1e6)
    assert "reasoning_content" not in message.additional_kwargs


@pytest.mark.vcr
@pytest.mark.default_cassette("chat_llama3.yaml")
def test_chat_without_streaming_llama3() -> None:
    answer = recorded_lines("chat_llama3.yaml")[0]
    chat = ChatOllama(model="llama3", base_url=URL, streaming=False)
    message = chat.invoke("Tell me a joke about OpenTelemetry")
    assert message.content == answer["message"]["content"]
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == answer["eval_count"]


@pytest.mark.vcr
@pytest.mark.default_cassette("chat_stream_thinking_qwen3.6.yaml")
async def test_streamed_thinking_qwen3_is_kept_and_streamed() -> None:
    lines = recorded_lines("chat_stream_thinking_qwen3.6.yaml")
    chat = ChatOllama(model="qwen3.6", base_url=URL)
    chunks = [chunk async for chunk in chat.astream("Count from 1 to 5, digits only.")]
    thinking = "".join(line["message"].get("thinking", "") for line in lines)
    answer = "".join(line["message"]["content"] for line in lines)
    # Reasoning arrives chunk by chunk, before the answer starts.
    reasoning_chunks = [c for c in chunks if c.additional_kwargs.get("reasoning_content")]
    assert len(reasoning_chunks) > 100
    first_answer = next(i for i, c in enumerate(chunks) if c.content)
    assert chunks.index(reasoning_chunks[-1]) < first_answer
    message = _sum(chunks)
    assert message.additional_kwargs["reasoning_content"] == thinking
    assert message.content == answer
    assert message.content_blocks[0] == {"type": "reasoning", "reasoning": thinking}
    assert [b["type"] for b in message.content_blocks] == ["reasoning", "text"]


@pytest.mark.vcr
@pytest.mark.default_cassette("chat_thinking_qwen3.6.yaml")
def test_thinking_without_streaming_qwen3() -> None:
    answer = recorded_lines("chat_thinking_qwen3.6.yaml")[0]
    chat = ChatOllama(model="qwen3.6", base_url=URL, streaming=False)
    message = chat.invoke("Hi")
    assert message.additional_kwargs["reasoning_content"] == answer["message"]["thinking"]
    assert message.content == answer["message"]["content"]


@pytest.mark.vcr
@pytest.mark.default_cassette("chat_model_not_found_404.yaml")
def test_unknown_model_is_model_not_found() -> None:
    from langchain_core.exceptions import ModelNotFoundError as CoreModelNotFound

    chat = ChatOllama(model="nonexistent-model", base_url=URL)
    with pytest.raises(ModelNotFoundError, match="nonexistent-model") as caught:
        chat.invoke("Hello")
    assert isinstance(caught.value, CoreModelNotFound)
    assert not caught.value.is_retryable


def _serve_recording(name: str) -> FaultServer:
    body = (CASSETTES / name).read_bytes()
    pieces = [line + b"\n" for line in body.splitlines() if line.strip()]
    return FaultServer(stream(pieces))


def test_separate_thinking_field_gpt_oss() -> None:
    lines = recorded_lines("chat_stream_thinking_gpt-oss.ndjson")
    with _serve_recording("chat_stream_thinking_gpt-oss.ndjson") as server:
        chat = ChatOllama(model="gpt-oss", base_url=server.base_url, reasoning=True)
        message = chat.invoke("Test prompt")
    assert message.additional_kwargs["reasoning_content"] == "".join(
        line["message"].get("thinking", "") for line in lines
    )
    assert message.content == "".join(line["message"]["content"] for line in lines)


def test_inline_think_tags_are_split_out_qwen3() -> None:
    (line,) = recorded_lines("chat_stream_tool_calls_qwen3_14b.3.ndjson")
    raw = line["message"]["content"]
    with _serve_recording("chat_stream_tool_calls_qwen3_14b.3.ndjson") as server:
        message = ChatOllama(model="qwen3:14b", base_url=server.base_url).invoke("Tigers game?")
        kept_raw = ChatOllama(model="qwen3:14b", base_url=server.base_url, reasoning=False).invoke("x")
    thoughts = raw.split("<think>", 1)[1].split("</think>", 1)[0]
    assert message.additional_kwargs["reasoning_content"] == thoughts
    assert message.content == raw.split("</think>", 1)[1].lstrip("\n")
    assert message.content.startswith("The Detroit Tigers game is today at 3pm")
    assert kept_raw.content == raw  # reasoning=False: nothing is taken out of the answer
