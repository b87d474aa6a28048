"""``Ollama`` against real Ollama traffic, replayed from cassettes (tests/cassettes/ollama/).

The cassettes are recordings of live Ollama servers (provenance in the README there);
requests are matched on method and path, since the recorded bodies came from other clients.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from langchain_localllm import Ollama
from langchain_localllm.errors import ModelNotFoundError
from tests.fixtures.runs import LLMEvents as Tokens

CASSETTES = Path(__file__).parent.parent / "cassettes" / "ollama"


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {"match_on": ["method", "path"], "record_mode": "none"}


def recorded_lines(name: str) -> list[dict[str, Any]]:
    """The NDJSON objects of a cassette's first response, read independently of the client."""
    data = yaml.safe_load((CASSETTES / name).read_text())
    body = data["interactions"][0]["response"]["body"]["string"]
    return [json.loads(line) for line in body.splitlines() if line.strip()]


@pytest.mark.vcr
@pytest.mark.default_cassette("generate_stream_llama3.yaml")
def test_streamed_generate_llama3() -> None:
    lines = recorded_lines("generate_stream_llama3.yaml")
    final = lines[-1]
    handler = Tokens()
    llm = Ollama(model="llama3", base_url="http://127.0.0.1:11434")
    result = llm.generate(["Tell me a joke about OpenTelemetry"], callbacks=[handler])
    generation = result.generations[0][0]
    assert generation.text == "".join(line["response"] for line in lines)
    assert generation.text.startswith("A joke about OpenTelemetry!")
    assert handler.tokens == [line["response"] for line in lines if line["response"]]
    info = generation.generation_info or {}
    assert info["finish_reason"] == "stop"
    assert info["model"] == "llama3"
    assert "context" not in info
    assert info["usage"] == {
        "prompt_tokens": final["prompt_eval_count"],
        "completion_tokens": final["eval_count"],
        "total_tokens": final["prompt_eval_count"] + final["eval_count"],
    }
    assert info["timings"]["predicted_ms"] == pytest.approx(final["eval_duration"] / 1e6)
    assert info["timings"]["predicted_per_second"] == pytest.approx(
        final["eval_count"] / final["eval_duration"] * 1e9
    )
    assert info["timings"]["prompt_ms"] == pytest.approx(final["prompt_eval_duration"] / 1e6)
    assert info["timings"]["total_ms"] == pytest.approx(final["total_duration"] / 1e6)
    assert result.llm_output == {"token_usage": info["usage"], "model_name": "llama3"}


@pytest.mark.vcr
@pytest.mark.default_cassette("generate_stream_gemma3_1b.yaml")
async def test_streamed_generate_gemma3_async_non_ascii() -> None:
    lines = recorded_lines("generate_stream_gemma3_1b.yaml")
    llm = Ollama(model="gemma3:1b", base_url="http://127.0.0.1:11434")
    chunks = [chunk async for chunk in llm.astream("Tell me a joke about OpenTelemetry")]
    assert "".join(chunks) == "".join(line["response"] for line in lines)
    assert chunks[-2].endswith("\U0001f60a")  # the emoji token arrives intact


@pytest.mark.vcr
@pytest.mark.default_cassette("generate_stream_gemma3_1b.yaml")
def test_stream_sync_gemma3() -> None:
    lines = recorded_lines("generate_stream_gemma3_1b.yaml")
    llm = Ollama(model="gemma3:1b", base_url="http://127.0.0.1:11434")
    chunks = list(llm.stream("Tell me a joke about OpenTelemetry"))
    assert [c for c in chunks if c] == [line["response"] for line in lines if line["response"]]


@pytest.mark.vcr
@pytest.mark.default_cassette("generate_llama3.yaml")
def test_non_streamed_generate() -> None:
    data = yaml.safe_load((CASSETTES / "generate_llama3.yaml").read_text())
    answer = json.loads(data["interactions"][0]["response"]["body"]["string"])
    llm = Ollama(model="llama3", base_url="http://127.0.0.1:11434", streaming=False)
    result = llm.generate(["Tell me a joke about OpenTelemetry"])
    generation = result.generations[0][0]
    assert generation.text == answer["response"]
    info = generation.generation_info or {}
    assert info["finish_reason"] == "stop"
    assert info["usage"]["completion_tokens"] == answer["eval_count"] == 63
    assert info["timings"]["load_ms"] == pytest.approx(answer["load_duration"] / 1e6)


@pytest.mark.vcr
@pytest.mark.default_cassette("show_model_not_found_404.yaml")
def test_show_unknown_model_is_model_not_found() -> None:
    llm = Ollama(model="llama3.2:3b", base_url="http://localhost:11434")
    with pytest.raises(ModelNotFoundError) as info:
        llm.show()
    message = str(info.value)
    assert "model 'llama3.2:3b' not found" in message
    assert "ollama pull llama3.2:3b" in message
    assert info.value.status_code == 404
    assert info.value.model == "llama3.2:3b"
    assert isinstance(info.value, LookupError)
