"""A kept, half-read stream never blocks the next call; cancelled calls end at once.

On the real llama.cpp runtime with generated models. Every scenario runs under a deadline
(in a thread joined with a timeout), so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from langchain_core.messages import AIMessageChunk

from langchain_localllm import ChatLlamaCpp, LlamaCpp
from tests.fixtures.models import tiny_model

T = TypeVar("T")
DEADLINE = 120
PROMPT = "The first man on the moon was"
OTHER = "Something else entirely:"


def bounded(fn: Callable[[], T], timeout: float = DEADLINE) -> T:
    """``fn()`` in a thread; fails (instead of hanging) when it does not end in time."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as error:  # re-raised in the test's thread
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True, name="bounded-scenario")
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the scenario did not end within {timeout} s"
    if "error" in result:
        raise result["error"]
    return result["value"]  # type: ignore[no-any-return]


@pytest.fixture
def llm(tiny_model_path: Path) -> LlamaCpp:
    return LlamaCpp(model_path=str(tiny_model_path), max_tokens=40, temperature=0.9, seed=5)


@pytest.fixture
def reference(llm: LlamaCpp) -> dict[str, str]:
    """What each prompt gives when nothing interrupts it."""
    return {PROMPT: llm.invoke(PROMPT), OTHER: llm.invoke(OTHER)}


def test_a_kept_stream_lets_the_next_call_run_in_the_same_thread(
    llm: LlamaCpp, reference: dict[str, str]
) -> None:
    def scenario() -> tuple[str, str]:
        kept = llm.stream(PROMPT)
        head = [next(kept), next(kept), next(kept)]
        other = llm.invoke(OTHER)  # used to wait forever on the model's lock
        return other, "".join(head) + "".join(kept)

    other, resumed = bounded(scenario)
    assert other == reference[OTHER]
    assert resumed == reference[PROMPT]  # the kept stream went on exactly where it stopped


def test_a_kept_stream_lets_another_thread_call(llm: LlamaCpp, reference: dict[str, str]) -> None:
    kept = llm.stream(PROMPT)
    head = [next(kept), next(kept)]
    assert bounded(lambda: llm.invoke(OTHER)) == reference[OTHER]
    assert "".join(head) + "".join(kept) == reference[PROMPT]
    assert not llm.load().lock.locked()


def test_a_kept_async_stream_lets_the_next_ainvoke_run(llm: LlamaCpp, reference: dict[str, str]) -> None:
    async def scenario() -> tuple[str, str]:
        kept = llm.astream(PROMPT)
        head = [await kept.__anext__()]
        other = await asyncio.wait_for(llm.ainvoke(OTHER), DEADLINE)
        rest = [token async for token in kept]
        return other, "".join(head + rest)

    other, resumed = bounded(lambda: asyncio.run(scenario()))
    assert other == reference[OTHER]
    assert resumed == reference[PROMPT]


def test_a_kept_chat_stream_lets_the_next_chat_call_run(tiny_model_path: Path) -> None:
    chat = ChatLlamaCpp(model_path=str(tiny_model_path), max_tokens=30, temperature=0.9, seed=3)
    expected = {q: chat.invoke(q).content for q in ("Tell me about the moon", "And the sun?")}

    def scenario() -> tuple[Any, str]:
        kept = chat.stream("Tell me about the moon")
        chunks: list[AIMessageChunk] = [next(kept), next(kept)]
        other = chat.invoke("And the sun?").content
        chunks.extend(kept)
        return other, "".join(str(c.content) for c in chunks)

    other, resumed = bounded(scenario)
    assert other == expected["And the sun?"]
    assert resumed == expected["Tell me about the moon"]


def test_cancelling_an_ainvoke_waiting_for_the_model_ends_it(
    llm: LlamaCpp, reference: dict[str, str]
) -> None:
    turns = llm.load().turns
    turns.grace = 3600.0  # the kept stream keeps the model: the ainvoke below has to wait
    # (with n_parallel=1: otherwise it finds the model busy and shares it on the batched engine)
    one_at_a_time = llm.model_copy(update={"n_parallel": 1})
    try:

        async def scenario() -> bool:
            task = asyncio.create_task(one_at_a_time.ainvoke(OTHER))
            await asyncio.sleep(0.3)
            waited = not task.done()
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=DEADLINE)
            return waited and task in done and task.cancelled()

        kept = llm.stream(PROMPT)
        head = next(kept)
        assert bounded(lambda: asyncio.run(scenario()))
        assert head + "".join(kept) == reference[PROMPT]  # the cancelled call took nothing from it
    finally:
        turns.grace = type(turns).grace


@pytest.fixture(scope="module")
def long_prompt_llm() -> LlamaCpp:
    """A ~25M-parameter model with a long context: its prompt evaluation takes seconds."""
    path = tiny_model("llama2", size="bench", context_length=8192)
    return LlamaCpp(model_path=str(path), n_ctx=8192, max_tokens=4, temperature=0)


def test_cancelling_during_prompt_evaluation_stops_the_evaluation(long_prompt_llm: LlamaCpp) -> None:
    llm = long_prompt_llm
    prompt = "moon " * 6000
    prompt_tokens = llm.get_num_tokens(prompt)
    loaded = llm.load()
    expected = llm.invoke("The moon is")

    async def scenario() -> bool:
        task = asyncio.create_task(llm.ainvoke(prompt))
        while not (loaded.turns.owner is not None and loaded.lock.locked()):  # evaluating
            await asyncio.sleep(0.005)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=DEADLINE)
        return task in done and task.cancelled()

    started = time.monotonic()
    assert bounded(lambda: asyncio.run(scenario()))
    evaluated = llm.client.n_tokens
    assert evaluated < prompt_tokens, f"the whole prompt was evaluated ({time.monotonic() - started:.1f} s)"
    assert llm.invoke("The moon is") == expected  # the model is left usable
