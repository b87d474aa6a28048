"""Callback handlers on real token streams: llama.cpp in process (LlamaCpp, GPT4All)."""

from __future__ import annotations

import asyncio
import io

import pytest
from langchain_core.callbacks import CallbackManager

from langchain_localllm import GPT4All, LlamaCpp
from langchain_localllm.callbacks import (
    AsyncIteratorCallbackHandler,
    StreamingTerminalCallbackHandler,
    TimingsCallbackHandler,
    TqdmProgressCallbackHandler,
)
from langchain_localllm.errors import ContextLengthExceededError

PROMPT = "The first man on the moon was"


class TokenLog(io.StringIO):
    """Records each write separately."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.flushes = 0

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)

    def flush(self) -> None:
        self.flushes += 1


@pytest.fixture(scope="module")
def llm(tiny_model_path: object) -> LlamaCpp:
    return LlamaCpp(model_path=str(tiny_model_path), max_tokens=16, temperature=0, verbose=False)


def test_terminal_handler_gets_the_stream_in_order_via_callback_manager(tiny_model_path: object) -> None:
    log = TokenLog()
    with pytest.warns(DeprecationWarning, match="callbacks="):
        llm = LlamaCpp(
            model_path=str(tiny_model_path),
            max_tokens=16,
            temperature=0,
            verbose=False,
            callback_manager=CallbackManager([StreamingTerminalCallbackHandler(log, end="")]),  # type: ignore[call-arg]
        )
    streamed = [chunk for chunk in llm.stream(PROMPT) if chunk]
    text = llm.invoke(PROMPT)
    assert log.writes == [*streamed, *streamed]  # stream, then invoke: the same tokens, in order
    assert "".join(streamed) == text
    assert len(log.writes) > 1
    assert log.flushes == len(log.writes)


def test_timings_use_llama_cpp_own_numbers(llm: LlamaCpp) -> None:
    timings = TimingsCallbackHandler()
    llm.invoke(PROMPT, config={"callbacks": [timings]})
    call = timings.last
    assert call is not None
    assert call.source == "runtime"
    assert call.completion_tokens == 16  # max_tokens, random weights never stop early
    assert call.prompt_tokens == llm.get_num_tokens(PROMPT) + 1  # + BOS
    assert call.ttft_ms is not None
    assert 0 < call.ttft_ms <= call.total_ms
    assert call.prompt_ms is not None
    assert call.predicted_ms is not None
    assert call.prompt_ms + call.predicted_ms <= call.total_ms
    assert call.tokens_per_second is not None
    assert call.tokens_per_second > 0
    assert "eval time" in timings.summary()


def test_timings_aggregate_a_batch(llm: LlamaCpp) -> None:
    timings = TimingsCallbackHandler()
    llm.batch(list(prompts := (PROMPT, "Once upon a time", "Hello")), config={"callbacks": [timings]})
    totals = timings.totals
    assert totals.calls == 3
    assert totals.completion_tokens == 48
    assert totals.prompt_tokens == sum(llm.get_num_tokens(p) + 1 for p in prompts)
    assert totals.tokens_per_second is not None
    assert totals.tokens_per_second > 0
    assert timings.summary().splitlines()[0].endswith("3 calls")


def test_timings_on_gpt4all(tiny_model_path: object) -> None:
    timings = TimingsCallbackHandler()
    llm = GPT4All(model=str(tiny_model_path), max_tokens=8, temp=0)
    text = llm.invoke(PROMPT, config={"callbacks": [timings]})
    call = timings.last
    assert call is not None
    assert call.completion_tokens > 0
    assert text
    assert call.ttft_ms is not None
    assert 0 < call.ttft_ms <= call.total_ms
    assert call.tokens_per_second is not None
    assert call.tokens_per_second > 0


async def test_async_iterator_yields_the_real_stream(llm: LlamaCpp) -> None:
    expected = [chunk async for chunk in llm.astream(PROMPT) if chunk]
    handler = AsyncIteratorCallbackHandler()
    task = asyncio.create_task(llm.ainvoke(PROMPT, config={"callbacks": [handler]}))
    received = [token async for token in handler.aiter(task)]
    assert received == expected
    assert await task == "".join(expected)


async def test_async_iterator_ends_on_a_real_error(tiny_model_path: object) -> None:
    small = LlamaCpp(model_path=str(tiny_model_path), n_ctx=64, max_tokens=8, verbose=False)  # padded to 256
    handler = AsyncIteratorCallbackHandler()
    task = asyncio.create_task(small.ainvoke("moon " * 300, config={"callbacks": [handler]}))
    with pytest.raises(ContextLengthExceededError):
        async for _ in handler.aiter():
            pass
    with pytest.raises(ContextLengthExceededError):
        await task

    quiet = AsyncIteratorCallbackHandler(raise_errors=False)
    task = asyncio.create_task(small.ainvoke("moon " * 300, config={"callbacks": [quiet]}))
    assert [t async for t in quiet.aiter(task)] == []
    assert isinstance(quiet.error, ContextLengthExceededError)
    with pytest.raises(ContextLengthExceededError):
        await task


def test_progress_over_a_real_batch(llm: LlamaCpp) -> None:
    out = io.StringIO()
    with TqdmProgressCallbackHandler(desc="prompts", file=out) as progress:
        llm.batch(["a", "b", "c", "d"], config={"callbacks": [progress]})
    assert (progress.started, progress.completed, progress.failed) == (4, 4, 0)
    assert progress.tokens == 4 * 16
    assert "prompts" in out.getvalue()
    assert "4/4" in out.getvalue()
