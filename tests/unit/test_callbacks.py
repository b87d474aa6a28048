"""Callback handlers on a scripted LocalLLM (the real base class, a fake runtime).

The same handlers run against real llama.cpp streams in tests/integration/test_callbacks.py.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManager
from langchain_core.documents import Document
from langchain_core.outputs import GenerationChunk
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from langchain_localllm._core.base.llm import LocalLLM
from langchain_localllm.callbacks import (
    AsyncIteratorCallbackHandler,
    JupyterStreamingCallbackHandler,
    StreamingTerminalCallbackHandler,
    TimingsCallbackHandler,
    TqdmProgressCallbackHandler,
)
from langchain_localllm.callbacks.timings import runtime_timings
from langchain_localllm.errors import InvalidParameterError, StreamInterruptedError

TOKENS = ["The", " first", " man", " on", " the", " moon"]
LLAMA_INFO = {
    "finish_reason": "length",
    "usage": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13},
    "timings": {
        "prompt_n": 7,
        "prompt_ms": 14.0,
        "prompt_per_second": 500.0,
        "predicted_n": 5,
        "predicted_ms": 25.0,
        "predicted_per_second": 200.0,
    },
}


class ScriptedLLM(LocalLLM):
    """Streams ``tokens`` then a last chunk with ``info``; can fail after ``fail_at`` tokens."""

    tokens: list[str] = TOKENS
    info: dict[str, Any] | None = None
    fail_at: int | None = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def model_name(self) -> str:
        return "scripted"

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        for i, token in enumerate(self.tokens):
            if self.fail_at is not None and i == self.fail_at:
                raise StreamInterruptedError("The server closed the stream early.", url="http://127.0.0.1:1")
            yield GenerationChunk(text=token)
        yield GenerationChunk(text="", generation_info=self.info)


class RecordingStream(io.StringIO):
    """A text stream that records each write and whether a flush followed it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def write(self, s: str) -> int:
        self.events.append(f"write:{s}")
        return super().write(s)

    def flush(self) -> None:
        self.events.append("flush")
        super().flush()


# --- terminal handler ------------------------------------------------------------------


def test_terminal_handler_flushes_after_every_token() -> None:
    stream = RecordingStream()
    llm = ScriptedLLM(callbacks=[StreamingTerminalCallbackHandler(stream)])
    assert llm.invoke("x") == "".join(TOKENS)
    expected = [e for t in TOKENS for e in (f"write:{t}", "flush")] + ["write:\n", "flush"]
    assert stream.events == expected


def test_terminal_handler_through_classic_callback_manager(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(DeprecationWarning, match="callbacks="):
        llm = ScriptedLLM(callback_manager=CallbackManager([StreamingTerminalCallbackHandler()]))  # type: ignore[call-arg]
    llm.invoke("x")
    assert capsys.readouterr().out == "".join(TOKENS) + "\n"


async def test_terminal_handler_keeps_token_order_async(capsys: pytest.CaptureFixture[str]) -> None:
    llm = ScriptedLLM(tokens=[str(i) + "," for i in range(50)])
    await llm.ainvoke("x", config={"callbacks": [StreamingTerminalCallbackHandler(end="")]})
    assert capsys.readouterr().out == "".join(f"{i}," for i in range(50))


# --- timings ---------------------------------------------------------------------------


def test_runtime_timings_from_llama_cpp_generation_info() -> None:
    found = runtime_timings(LLAMA_INFO)
    assert found == {
        "prompt_ms": 14.0,
        "predicted_ms": 25.0,
        "prompt_eval_n": 7,
        "eval_n": 5,
        "prompt_tokens": 7,
        "completion_tokens": 6,
    }


def test_runtime_timings_from_ollama_durations() -> None:
    info = {
        "total_duration": 900_000_000,
        "load_duration": 500_000_000,
        "prompt_eval_count": 12,
        "prompt_eval_duration": 30_000_000,
        "eval_count": 40,
        "eval_duration": 200_000_000,
    }
    found = runtime_timings(info)
    assert found["prompt_ms"] == pytest.approx(30.0)
    assert found["predicted_ms"] == pytest.approx(200.0)
    assert found["load_ms"] == pytest.approx(500.0)
    assert (found["prompt_tokens"], found["completion_tokens"]) == (12, 40)


def test_runtime_timings_derives_a_duration_from_a_speed() -> None:
    found = runtime_timings({"timings": {"predicted_n": 10, "predicted_per_second": 50.0}})
    assert found["predicted_ms"] == pytest.approx(200.0)


def test_timings_prefers_the_runtime_numbers() -> None:
    timings = TimingsCallbackHandler()
    ScriptedLLM(info=LLAMA_INFO).invoke("x", config={"callbacks": [timings]})
    call = timings.last
    assert call is not None
    assert call.source == "runtime"
    assert (call.prompt_tokens, call.completion_tokens, call.total_tokens) == (7, 6, 13)
    assert call.tokens_per_second == pytest.approx(200.0)  # 5 decoded tokens in 25 ms
    assert call.prompt_tokens_per_second == pytest.approx(500.0)
    assert call.ttft_ms is not None
    assert 0 <= call.ttft_ms <= call.total_ms
    lines = timings.summary().splitlines()
    assert [line.split("=")[0].split(":", 1)[1].strip() for line in lines] == [
        "time to first token",
        "prompt eval time",
        "eval time",
        "total time",
    ]
    assert "25.00 ms /     5 runs" in lines[2]
    assert "200.00 tokens per second" in lines[2]
    assert lines[3].endswith("/    13 tokens")


def test_timings_measures_when_the_runtime_reports_nothing() -> None:
    timings = TimingsCallbackHandler()
    ScriptedLLM(info=None).invoke("x", config={"callbacks": [timings]})
    call = timings.last
    assert call is not None
    assert call.source == "measured"
    assert call.prompt_tokens is None
    assert call.completion_tokens == len(TOKENS)
    assert call.ttft_ms is not None
    assert 0 <= call.ttft_ms <= call.total_ms
    assert call.tokens_per_second is not None
    assert call.tokens_per_second > 0


def test_timings_aggregate_over_calls_and_batches() -> None:
    timings = TimingsCallbackHandler()
    llm = ScriptedLLM(info=LLAMA_INFO, callbacks=[timings])
    llm.invoke("a")
    llm.batch(["b", "c"])
    assert len(timings.calls) == 3
    totals = timings.totals
    assert (totals.calls, totals.prompt_tokens, totals.completion_tokens) == (3, 21, 18)
    assert totals.predicted_ms == pytest.approx(75.0)
    assert totals.tokens_per_second == pytest.approx(200.0)
    summary = timings.summary()
    assert summary.splitlines()[0].endswith("3 calls")
    assert "mean time to first token" in summary
    assert summary.splitlines()[-1].endswith("/    39 tokens")


def test_timings_count_errors_apart_and_print_each(capsys: pytest.CaptureFixture[str]) -> None:
    timings = TimingsCallbackHandler(print_each=True)
    with pytest.raises(StreamInterruptedError):
        ScriptedLLM(fail_at=2).invoke("x", config={"callbacks": [timings]})
    ScriptedLLM(info=LLAMA_INFO).invoke("x", config={"callbacks": [timings]})
    assert (timings.errors, len(timings.calls)) == (1, 1)
    assert "localllm_perf:" in capsys.readouterr().err
    timings.reset()
    assert timings.summary() == "localllm_perf: no completed calls"


# --- async iterator --------------------------------------------------------------------


async def test_aiter_yields_every_token_in_order_and_ends() -> None:
    handler = AsyncIteratorCallbackHandler()
    llm = ScriptedLLM()
    task = asyncio.create_task(llm.ainvoke("x", config={"callbacks": [handler]}))
    received = [token async for token in handler.aiter()]
    assert received == TOKENS
    assert await task == "".join(TOKENS)


async def test_aiter_reraises_the_error_after_the_tokens_before_it() -> None:
    handler = AsyncIteratorCallbackHandler()
    task = asyncio.create_task(ScriptedLLM(fail_at=3).ainvoke("x", config={"callbacks": [handler]}))
    received: list[str] = []
    with pytest.raises(StreamInterruptedError, match="closed the stream"):
        async for token in handler.aiter():
            received.append(token)
    assert received == TOKENS[:3]
    with pytest.raises(StreamInterruptedError):
        await task


async def test_aiter_can_end_quietly_on_error() -> None:
    handler = AsyncIteratorCallbackHandler(raise_errors=False)
    task = asyncio.create_task(ScriptedLLM(fail_at=1).ainvoke("x", config={"callbacks": [handler]}))
    assert [t async for t in handler.aiter()] == TOKENS[:1]
    assert isinstance(handler.error, StreamInterruptedError)
    assert handler.error.partial_text == TOKENS[0]
    with pytest.raises(StreamInterruptedError):
        await task


async def test_aiter_ends_when_the_task_fails_before_any_callback() -> None:
    handler = AsyncIteratorCallbackHandler()
    # An input LangChain rejects before the run starts: no callback ever fires.
    task = asyncio.create_task(ScriptedLLM().ainvoke(object(), config={"callbacks": [handler]}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid input type"):
        async for _ in handler.aiter(task):
            pass
    assert task.done()


async def test_aiter_reports_a_bad_argument_raised_inside_the_run() -> None:
    handler = AsyncIteratorCallbackHandler()
    task = asyncio.create_task(ScriptedLLM().ainvoke("x", config={"callbacks": [handler]}, temperature=-1))
    with pytest.raises(InvalidParameterError):
        async for _ in handler.aiter():
            pass
    with pytest.raises(InvalidParameterError):
        await task


async def test_aiter_waits_for_the_whole_chain() -> None:
    handler = AsyncIteratorCallbackHandler()
    first = ScriptedLLM(tokens=["a", "b"])
    second = ScriptedLLM(tokens=["c", "d"])
    chain = first | RunnableLambda(lambda text: text + "!") | second
    task = asyncio.create_task(chain.ainvoke("x", config={"callbacks": [handler]}))
    assert [t async for t in handler.aiter()] == ["a", "b", "c", "d"]
    assert await task == "cd"


class _Retriever(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content=f"about {query}")]


async def test_aiter_follows_a_chain_with_a_retriever_and_two_models() -> None:
    handler = AsyncIteratorCallbackHandler()
    chain = (
        _Retriever()
        | RunnableLambda(lambda docs: docs[0].page_content)
        | ScriptedLLM(tokens=["x", "y"])
        | ScriptedLLM(tokens=["z"])
    )
    task = asyncio.create_task(chain.ainvoke("moon", config={"callbacks": [handler]}))
    assert [t async for t in handler.aiter()] == ["x", "y", "z"]
    assert await task == "z"


async def test_aiter_is_reusable_and_works_with_calls_in_threads() -> None:
    handler = AsyncIteratorCallbackHandler()
    llm = ScriptedLLM(tokens=[f"t{i}" for i in range(30)])
    for _ in range(2):
        task = asyncio.create_task(asyncio.to_thread(llm.invoke, "x", config={"callbacks": [handler]}))
        assert [t async for t in handler.aiter(task)] == [f"t{i}" for i in range(30)]
        await task


# --- progress --------------------------------------------------------------------------


def test_progress_counts_each_prompt_of_a_batch() -> None:
    out = io.StringIO()
    progress = TqdmProgressCallbackHandler(desc="questions", file=out)
    ScriptedLLM().batch(["a", "b", "c"], config={"callbacks": [progress]})
    progress.close()
    assert (progress.started, progress.completed, progress.failed) == (3, 3, 0)
    assert progress.tokens == 3 * len(TOKENS)  # a batch streams every prompt
    assert progress.bar.n == 3
    assert "questions" in out.getvalue()
    assert "3/3" in out.getvalue()


def test_progress_counts_the_steps_of_a_chain_and_failures() -> None:
    out = io.StringIO()
    with TqdmProgressCallbackHandler(total=3, file=out) as progress:
        chain = ScriptedLLM() | ScriptedLLM() | ScriptedLLM(fail_at=0)
        with pytest.raises(StreamInterruptedError):
            chain.invoke("x", config={"callbacks": [progress]})
    assert (progress.completed, progress.failed) == (3, 1)
    assert "3/3" in out.getvalue()


# --- jupyter (outside a kernel; the kernel case is in the integration tests) -----------


def test_jupyter_handler_outside_a_notebook_prints_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    handler = JupyterStreamingCallbackHandler(prefix="> ")
    ScriptedLLM().invoke("x", config={"callbacks": [handler]})
    assert capsys.readouterr().out == "> " + "".join(TOKENS) + "\n"
    assert list(handler.texts.values()) == ["".join(TOKENS)]
