"""Callback handlers on real HTTP streams: the Ollama test server and a real llama-server."""

from __future__ import annotations

import asyncio

import pytest

from langchain_localllm import Llamafile, Ollama
from langchain_localllm.callbacks import AsyncIteratorCallbackHandler, TimingsCallbackHandler
from langchain_localllm.errors import GenerationError
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaTestServer

PROMPT = "The first man on the moon was"


@pytest.fixture
def ollama(ollama_server: OllamaTestServer) -> Ollama:
    return Ollama(model="tiny", base_url=ollama_server.base_url, num_predict=8, temperature=0)


def test_timings_from_ollama_durations(ollama: Ollama) -> None:
    timings = TimingsCallbackHandler()
    text = ollama.invoke(PROMPT, config={"callbacks": [timings]})
    call = timings.last
    assert call is not None
    assert text
    assert call.source == "runtime"
    assert call.completion_tokens == 8
    assert call.prompt_tokens is not None
    assert call.prompt_tokens > 0
    assert call.ttft_ms is not None
    assert 0 < call.ttft_ms <= call.total_ms
    assert call.predicted_ms is not None
    assert 0 < call.predicted_ms <= call.total_ms
    assert call.tokens_per_second is not None
    assert call.tokens_per_second > 0


async def test_async_iterator_on_ollama_stream(ollama: Ollama) -> None:
    expected = [chunk async for chunk in ollama.astream(PROMPT) if chunk]
    handler = AsyncIteratorCallbackHandler()
    task = asyncio.create_task(ollama.ainvoke(PROMPT, config={"callbacks": [handler]}))
    assert [token async for token in handler.aiter(task)] == expected
    assert await task == "".join(expected)


async def test_async_iterator_ends_when_ollama_fails_mid_answer(
    ollama: Ollama, ollama_server: OllamaTestServer
) -> None:
    expected = [chunk async for chunk in ollama.astream(PROMPT) if chunk]
    ollama_server.inject_error(after_tokens=3)
    handler = AsyncIteratorCallbackHandler()
    task = asyncio.create_task(ollama.ainvoke(PROMPT, config={"callbacks": [handler]}))
    received: list[str] = []
    with pytest.raises(GenerationError, match="terminated"):
        async for token in handler.aiter():
            received.append(token)
    assert received == expected[:3]
    with pytest.raises(GenerationError) as raised:
        await task
    assert raised.value.partial_text == "".join(expected[:3])


@pytest.mark.llama_server
def test_timings_from_llama_server(llama_server: LlamaServer) -> None:
    llm = Llamafile(base_url=llama_server.base_url, n_predict=8, temperature=0)
    timings = TimingsCallbackHandler()
    llm.invoke(PROMPT, config={"callbacks": [timings]})
    call = timings.last
    assert call is not None
    assert call.source == "runtime"
    assert call.completion_tokens == 8
    assert call.ttft_ms is not None
    assert 0 < call.ttft_ms <= call.total_ms
    assert call.tokens_per_second is not None
    assert call.tokens_per_second > 0


@pytest.mark.llama_server
async def test_async_iterator_on_llama_server(llama_server: LlamaServer) -> None:
    llm = Llamafile(base_url=llama_server.base_url, n_predict=8, temperature=0)
    expected = [chunk async for chunk in llm.astream(PROMPT) if chunk]
    handler = AsyncIteratorCallbackHandler()
    task = asyncio.create_task(llm.ainvoke(PROMPT, config={"callbacks": [handler]}))
    assert [token async for token in handler.aiter(task)] == expected
    await task
