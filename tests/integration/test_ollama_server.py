"""``Ollama`` against the local Ollama API test server, which generates real tokens from the
tiny GGUF through llama-cpp-python (NDJSON streams, 404s, mid-stream errors, model management)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from langchain_localllm import Ollama
from langchain_localllm.errors import GenerationError, ModelNotFoundError
from langchain_localllm.prompts import get_chat_format
from tests.fixtures.runs import LLMEvents as Tokens
from tests.support.ollama_server import OllamaTestServer


@pytest.fixture
def llm(ollama_server: OllamaTestServer) -> Ollama:
    return Ollama(model="tiny", base_url=ollama_server.base_url, num_predict=8, temperature=0, seed=1)


def test_invoke_generates_real_tokens_with_usage(llm: Ollama, ollama_server: OllamaTestServer) -> None:
    result = llm.generate(["The moon"])
    generation = result.generations[0][0]
    info = generation.generation_info or {}
    assert generation.text
    assert info["finish_reason"] == "length"  # num_predict=8 reached
    assert info["usage"]["completion_tokens"] == 8
    assert info["usage"]["prompt_tokens"] > 3  # the Llama-2 template was applied
    assert info["timings"]["predicted_per_second"] > 0
    assert "context" not in info
    method, path, body = ollama_server.requests[-1]
    assert (method, path) == ("POST", "/api/generate")
    assert body["options"] == {"num_predict": 8, "temperature": 0, "seed": 1}


def test_greedy_generation_is_reproducible_sync_async_and_streamed(llm: Ollama) -> None:
    text = llm.invoke("The moon")
    assert llm.invoke("The moon") == text
    assert "".join(llm.stream("The moon")) == text
    assert asyncio.run(llm.ainvoke("The moon")) == text


async def test_astream_delivers_tokens_to_callbacks(llm: Ollama) -> None:
    handler = Tokens()
    chunks = [chunk async for chunk in llm.astream("The sun", config={"callbacks": [handler]})]
    assert len([c for c in chunks if c]) > 1
    assert handler.tokens == [c for c in chunks if c]


def test_batch(llm: Ollama) -> None:
    answers = llm.batch(["one", "two", "three"])
    assert len(answers) == 3
    assert all(isinstance(a, str) and a for a in answers)


def test_stop_sequence_ends_generation(llm: Ollama) -> None:
    full = llm.invoke("The moon", num_predict=24)
    words = full.split()
    assert len(words) >= 3
    stop_word = words[2]
    cut = llm.invoke("The moon", num_predict=24, stop=[stop_word])
    assert stop_word not in cut
    assert full.startswith(cut)


def test_raw_skips_the_template(llm: Ollama) -> None:
    templated = llm.generate(["Hi"]).generations[0][0].generation_info or {}
    raw = llm.generate(["Hi"], raw=True).generations[0][0].generation_info or {}
    assert raw["usage"]["prompt_tokens"] < templated["usage"]["prompt_tokens"]


def test_json_format_gives_json(llm: Ollama) -> None:
    text = llm.invoke(
        "Answer in JSON",
        format={"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
        num_predict=40,
    )
    assert isinstance(json.loads(text)["a"], int)


def test_unknown_model_is_model_not_found(ollama_server: OllamaTestServer) -> None:
    llm = Ollama(model="missing-model", base_url=ollama_server.base_url)
    with pytest.raises(ModelNotFoundError, match="ollama pull missing-model"):
        llm.invoke("x")
    with pytest.raises(ModelNotFoundError):
        llm.show()


async def test_unknown_model_async(ollama_server: OllamaTestServer) -> None:
    with pytest.raises(ModelNotFoundError):
        await Ollama(model="missing-model", base_url=ollama_server.base_url).ainvoke("x")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_error_line_mid_stream(llm: Ollama, ollama_server: OllamaTestServer, mode: str) -> None:
    handler = Tokens()
    ollama_server.inject_error(after_tokens=3, message="llama runner process has terminated: signal: killed")
    config: Any = {"callbacks": [handler]}
    with pytest.raises(GenerationError, match="runner process has terminated") as info:
        if mode == "sync":
            llm.invoke("The moon", config=config)
        else:
            asyncio.run(llm.ainvoke("The moon", config=config))
    assert len(handler.tokens) == 3
    assert info.value.partial_text == "".join(handler.tokens)


def test_final_chunk_fields_are_all_optional(llm: Ollama, ollama_server: OllamaTestServer) -> None:
    ollama_server.omit_final_fields = {
        "done_reason",
        "context",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    }
    try:
        result = llm.generate(["The moon"])
    finally:
        ollama_server.omit_final_fields = set()
    info = result.generations[0][0].generation_info or {}
    assert result.generations[0][0].text
    assert info.get("finish_reason") is None
    assert "usage" not in info
    assert result.llm_output is not None
    assert result.llm_output["token_usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_model_management(llm: Ollama, ollama_server: OllamaTestServer) -> None:
    names = [m["name"] for m in llm.list_models()]
    assert {"tiny:latest", "tiny-chatml:latest"} <= set(names)
    assert [m["name"] for m in asyncio.run(llm.alist_models())] == names
    assert llm.server_version() == "0.9.0"
    show = llm.show()
    assert show["details"]["family"] == "llama"
    # The emulator reports the template of the model's registered format (the GGUF's own).
    assert llm.chat_template() == get_chat_format("llama2").template
    assert llm.get_context_window() == 512  # num_ctx in the model's parameters
    assert Ollama(model="tiny", base_url=ollama_server.base_url, num_ctx=64).get_context_window() == 64


def test_show_is_cached_per_instance(llm: Ollama, ollama_server: OllamaTestServer) -> None:
    before = sum(1 for r in ollama_server.requests if r[1] == "/api/show")
    llm.show()
    llm.chat_template()
    llm.get_context_window()
    assert sum(1 for r in ollama_server.requests if r[1] == "/api/show") == before + 1


def test_get_num_tokens_uses_the_model_tokenizer(llm: Ollama) -> None:
    short, long = llm.get_num_tokens("moon"), llm.get_num_tokens("moon sun star sky night light dark")
    assert 1 <= short < long


def test_pull_with_progress(ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]) -> None:
    llm = Ollama(model="tiny-pullable", base_url=ollama_server.base_url, num_predict=4)
    status = llm.pull()
    assert status == {"status": "success"}
    assert "pulling" in capsys.readouterr().err  # the tqdm bar
    assert "tiny-pullable:latest" in [m["name"] for m in llm.list_models()]
    assert llm.invoke("hi")


def test_pull_unknown_model(ollama_server: OllamaTestServer) -> None:
    with pytest.raises(ModelNotFoundError, match="file does not exist"):
        Ollama(model="no-such-model", base_url=ollama_server.base_url).pull(progress=False)


def test_embed_endpoints_for_the_embeddings_engineer(ollama_server: OllamaTestServer) -> None:
    url = ollama_server.base_url
    answer = httpx.post(url + "/api/embed", json={"model": "tiny", "input": ["a", "b"]}, timeout=60).json()
    assert len(answer["embeddings"]) == 2
    norm = sum(x * x for x in answer["embeddings"][0]) ** 0.5
    assert norm == pytest.approx(1.0, abs=1e-5)
    assert answer["embeddings"][0] != answer["embeddings"][1]
    legacy = httpx.post(url + "/api/embeddings", json={"model": "tiny", "prompt": "a"}, timeout=60).json()
    assert len(legacy["embedding"]) == len(answer["embeddings"][0])
    again = httpx.post(url + "/api/embed", json={"model": "tiny", "input": "a"}, timeout=60).json()
    assert again["embeddings"][0] == pytest.approx(answer["embeddings"][0])


def _wait_for_generations(server: OllamaTestServer, count: int) -> list[tuple[str, int, bool]]:
    deadline = time.monotonic() + 30
    while len(server.generations) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.generations[count - 1 :]


def test_stopping_a_stream_early_stops_generation_on_the_server(ollama_server: OllamaTestServer) -> None:
    llm = Ollama(model="tiny", base_url=ollama_server.base_url, num_predict=200, temperature=0)
    before = len(ollama_server.generations)
    stream = llm.stream("The moon")
    first = next(iter(stream))
    stream.close()  # the response is closed: the server stops generating and frees the model
    ((_, tokens, finished),) = _wait_for_generations(ollama_server, before + 1)
    assert first
    assert not finished
    assert tokens < 100  # of the 200 asked for
    assert llm.invoke("The moon", num_predict=3)  # the model is free again


async def test_stopping_an_async_stream_early(ollama_server: OllamaTestServer) -> None:
    llm = Ollama(model="tiny", base_url=ollama_server.base_url, num_predict=200, temperature=0)
    before = len(ollama_server.generations)
    async for _ in llm.astream("The moon"):
        break
    ((_, tokens, finished),) = await asyncio.to_thread(_wait_for_generations, ollama_server, before + 1)
    assert not finished
    assert tokens < 100
    assert await llm.ainvoke("The moon", num_predict=3)


def test_one_instance_across_event_loops(llm: Ollama) -> None:
    # The async client is per event loop: the same instance works from several asyncio.run calls.
    assert asyncio.run(llm.ainvoke("a", num_predict=2)) == asyncio.run(llm.ainvoke("a", num_predict=2))


def test_command_line_server() -> None:
    import subprocess
    import sys

    from tests.fixtures.models import tiny_model
    from tests.support.llama_server import free_port

    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "tests.support.ollama_server",
        "--model",
        str(tiny_model("llama2")),
    ]
    process = subprocess.Popen(
        [*cmd, "--name", "cli-tiny", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()  # printed once the socket is listening
        assert f"127.0.0.1:{port}" in banner
        llm = Ollama(model="cli-tiny", base_url=f"http://127.0.0.1:{port}", num_predict=3)
        assert [m["name"] for m in llm.list_models()] == ["cli-tiny:latest"]
        assert llm.invoke("hi")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_ollama_client_administers_the_server(ollama_server: OllamaTestServer) -> None:
    from langchain_localllm import OllamaClient

    client = OllamaClient.from_url(ollama_server.base_url)
    assert client.version() == "0.9.0"
    assert "tiny:latest" in [m["name"] for m in client.list_models()]
    Ollama(model="tiny", base_url=ollama_server.base_url, num_predict=1).invoke("a")  # loads it
    assert "tiny:latest" in [m["name"] for m in client.running_models()]
    assert client.show("tiny")["details"]["family"] == "llama"
    with pytest.raises(ModelNotFoundError):
        client.show("no-such-model")
