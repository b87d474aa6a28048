"""Concurrent calls of ``LlamaCpp``/``ChatLlamaCpp`` share the model's forward passes through
its batched engine (``llamacpp/sharing.py``), on the generated random-weight model (f32: the
batched kernels give its rows the greedy choices of one row alone, so answers must equal runs
alone token for token)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_localllm import ChatLlamaCpp, LlamaCpp
from langchain_localllm._inprocess.model_cache import MODEL_CACHE
from langchain_localllm.chains import extraction_chain, summarize_chain
from langchain_localllm.errors import ContextLengthExceededError, EngineClosedError
from langchain_localllm.llamacpp.sharing import engine_of
from tests.fixtures.models import tiny_model

PROMPTS = [
    "The first man on the moon was",
    "Once upon a time",
    "def fibonacci(n):",
    "Paris is the capital of",
    "The three laws of motion are",
    "My favourite colour is",
    "In 1492, Columbus",
    "The best way to learn is",
]


@tool
def set_level(level: Literal["low", "high"], count: int) -> str:
    """Set the level."""
    return level


class Setting(BaseModel):
    level: Literal["low", "high", "off"]
    count: int = Field(ge=0, le=10)


def fresh(model: Any) -> Any:
    """``model`` with a load of its own (other tests may have used the same file and settings,
    and the engine's statistics count from its creation)."""
    MODEL_CACHE.evict(model.load().key)
    return model


def _until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_batch_shares_the_passes_and_equals_runs_alone() -> None:
    llm = fresh(
        LlamaCpp(model_path=str(tiny_model()), n_ctx=2048, max_tokens=24, temperature=0, n_parallel=4)
    )
    alone = [llm.invoke(p) for p in PROMPTS]
    assert llm.load().attached == {}  # one call at a time never makes the engine
    assert len(set(alone)) == len(PROMPTS)  # distinct answers: a crossed output would show
    results = llm.generate(PROMPTS)  # what batch() runs: all prompts at once
    assert [g[0].text for g in results.generations] == alone
    for generation in results.generations:
        info = generation[0].generation_info or {}
        assert info["usage"]["completion_tokens"] == 24 and info["finish_reason"] == "length"
    stats = engine_of(llm.load(), 4).stats()
    assert stats.peak_active == 4 and stats.steps > 0 and stats.active == 0
    steps = stats.steps
    assert llm.batch(PROMPTS[:3]) == alone[:3]
    assert engine_of(llm.load(), 4).stats().steps > steps


def test_batch_fills_every_slot_beyond_the_thread_pools_default() -> None:
    """``Runnable.batch`` would run at most ``cpu_count + 4`` calls at once (6 on 2 cores):
    ``batch`` sizes its concurrency to the engine, so 8 slots take 8 calls at once."""
    llm = fresh(LlamaCpp(model_path=str(tiny_model()), n_ctx=512, max_tokens=24, temperature=0, n_parallel=8))
    chat = fresh(ChatLlamaCpp(model_path=str(tiny_model("chatml")), n_ctx=512, max_tokens=24, n_parallel=8))
    assert len(llm.batch(PROMPTS)) == len(PROMPTS) == 8
    assert engine_of(llm.load(), 8).stats().peak_active == 8
    assert len(chat.batch(PROMPTS)) == 8
    assert engine_of(chat.load(), 8).stats().peak_active == 8
    fresh(llm)
    assert len(llm.batch(PROMPTS, config={"max_concurrency": 3})) == 8  # a limit given is kept
    assert engine_of(llm.load(), 8).stats().peak_active == 3


async def test_abatch_errors_stay_per_request() -> None:
    llm = fresh(LlamaCpp(model_path=str(tiny_model()), n_ctx=512, max_tokens=16, temperature=0, n_parallel=2))
    alone = [await llm.ainvoke(p) for p in PROMPTS[:2]]
    too_long = "word " * 600
    answers = await llm.abatch([PROMPTS[0], too_long, PROMPTS[1]], return_exceptions=True)
    assert answers[0] == alone[0] and answers[2] == alone[1]
    assert isinstance(answers[1], ContextLengthExceededError)
    assert engine_of(llm.load(), 2).stats().peak_active == 2


async def test_concurrent_chat_calls_each_get_their_own_answer_and_grammar() -> None:
    chat = fresh(
        ChatLlamaCpp(
            model_path=str(tiny_model("chatml")), n_ctx=2048, max_tokens=120, temperature=0, n_parallel=4
        )
    )
    questions = PROMPTS[:4]
    structured = chat.with_structured_output(Setting)
    forced = chat.bind_tools([set_level], tool_choice="set_level")
    alone = [(await chat.ainvoke(q)).content for q in questions]
    alone_setting = await structured.ainvoke("Set it.")
    alone_call = (await forced.ainvoke("Go.")).tool_calls
    assert chat.load().attached == {}
    free = [chat.ainvoke(q) for q in questions]
    outputs = await asyncio.gather(*free, structured.ainvoke("Set it."), forced.ainvoke("Go."))
    assert len(set(alone)) == 4 and [m.content for m in outputs[:4]] == alone
    assert isinstance(outputs[4], Setting) and outputs[4] == alone_setting
    (call,) = outputs[5].tool_calls
    assert call["name"] == "set_level" and call["args"] == alone_call[0]["args"]
    set_level.args_schema.model_validate(call["args"])  # type: ignore[union-attr]
    assert engine_of(chat.load(), 4).stats().peak_active >= 2


async def test_a_cancelled_stream_frees_its_slot() -> None:
    llm = fresh(
        LlamaCpp(model_path=str(tiny_model()), n_ctx=1024, max_tokens=400, temperature=0, n_parallel=2)
    )
    kept = llm.stream(PROMPTS[0])  # kept half read: the model is busy, the next call shares
    next(kept)
    try:
        stream = llm.astream(PROMPTS[1])
        async for _ in stream:
            engine = engine_of(llm.load(), 2)
            assert engine.stats().active == 1
            break
        await stream.aclose()
        assert await asyncio.to_thread(_until, lambda: engine.stats().active == 0)
        assert engine.stats().kv_tokens == (0, 0)  # its KV cells freed too
    finally:
        kept.close()
    short = llm.bind(max_tokens=8)
    assert len(await short.abatch(PROMPTS[:2])) == 2  # the slots serve the next calls


def test_chains_run_n_parallel_steps_at_once_on_the_engine() -> None:
    ruth = (Path(__file__).parents[1] / "data" / "book_of_ruth_kjv.txt").read_text(encoding="utf-8")
    llm = fresh(LlamaCpp(model_path=str(tiny_model()), n_ctx=768, max_tokens=64, temperature=0, n_parallel=6))
    result = summarize_chain(llm, "map_reduce", return_intermediate_steps=True).invoke(ruth[:12000])
    assert len(result["intermediate_steps"]) >= 6
    # six map steps at once (the default, sized to n_parallel, not 4): the first runs alone,
    # the others find the model busy and share the passes
    assert engine_of(llm.load(), 6).stats().peak_active >= 5

    chat = fresh(
        ChatLlamaCpp(
            model_path=str(tiny_model("chatml")), n_ctx=1024, max_tokens=120, temperature=0, n_parallel=6
        )
    )
    results = extraction_chain(chat, Setting).invoke([f"Document {i}: set it." for i in range(6)])
    assert [r.error for r in results] == [None] * 6
    assert all(isinstance(r.records[0], Setting) for r in results)
    # structured answers keep their token budget on the engine: six at once there too
    assert engine_of(chat.load(), 6).stats().peak_active >= 5


def test_evicting_the_model_closes_its_engine() -> None:
    llm = fresh(LlamaCpp(model_path=str(tiny_model()), n_ctx=640, max_tokens=8, temperature=0, n_parallel=2))
    assert len(llm.batch(PROMPTS[:2])) == 2
    loaded = llm.load()
    engine = engine_of(loaded, 2)
    assert MODEL_CACHE.evict(loaded.key)
    assert loaded.attached == {}
    with pytest.raises(EngineClosedError):
        engine.submit(PROMPTS[0], max_tokens=4)
    assert len(llm.batch(PROMPTS[:2])) == 2  # reloaded, with a new engine
    assert engine_of(llm.load(), 2) is not engine
