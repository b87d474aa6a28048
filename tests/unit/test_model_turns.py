"""Calls taking turns on one model: a parked stream never keeps the next call waiting for good.

The model here is a plain list (its "state"), written by each step; ``suspend`` saves a copy
and returns what writes it back, as the llama.cpp runtime does with its KV cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from langchain_localllm._core.base.threads import CancelToken
from langchain_localllm._inprocess.turns import Cancelled, ModelTurns

DEADLINE = 30


class Model:
    """A model whose state is the list of tokens its current sequence holds."""

    def __init__(self, grace: float = 0.05) -> None:
        self.turns = ModelTurns(threading.Lock())
        self.turns.grace = grace
        self.state: list[str] = []
        self.in_step = 0

    def generate(self, name: str, n: int, cancel: CancelToken | None = None) -> Iterator[str]:
        """``n`` tokens ``name0, name1, ...``; each step checks that the state is this call's."""

        def suspend() -> Callable[[], None]:
            saved = list(self.state)
            return lambda: self.state.__setitem__(slice(None), saved)

        turn = self.turns.turn(suspend, cancel=cancel)
        try:
            for i in range(n):
                turn.enter()
                try:
                    self.in_step += 1
                    assert self.in_step == 1, "two steps ran at once"
                    if i == 0:
                        self.state[:] = []
                    assert self.state == [f"{name}{k}" for k in range(i)], f"{name} lost its state"
                    self.state.append(f"{name}{i}")
                    self.in_step -= 1
                finally:
                    turn.leave()
                yield f"{name}{i}"
        finally:
            turn.close()


def bounded(fn: Callable[[], object], timeout: float = DEADLINE) -> object:
    """Run ``fn`` in a thread; fail (instead of hanging) if it does not end in time."""
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as error:  # re-raised in the test's thread
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout} s"
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result.get("value")


def test_a_half_read_stream_gives_way_at_once_in_its_own_thread_and_resumes_intact() -> None:
    model = Model(grace=3600)  # no waiting at all: the same thread cannot be reading it

    def scenario() -> tuple[list[str], list[str]]:
        kept = model.generate("a", 6)
        head = [next(kept), next(kept)]
        other = list(model.generate("b", 4))
        return head + list(kept), other

    assert bounded(scenario) == (["a0", "a1", "a2", "a3", "a4", "a5"], ["b0", "b1", "b2", "b3"])


def test_a_stream_left_half_read_in_another_thread_gives_way_after_the_grace() -> None:
    model = Model(grace=0.05)
    kept = model.generate("a", 5)
    head = [next(kept)]
    assert bounded(lambda: list(model.generate("b", 3))) == ["b0", "b1", "b2"]
    assert head + list(kept) == ["a0", "a1", "a2", "a3", "a4"]  # then resumed, as if never left


def test_a_stream_being_read_keeps_the_model_until_it_ends() -> None:
    model = Model(grace=3600)
    order: list[str] = []
    started = threading.Event()

    def reader() -> None:
        for token in model.generate("a", 30):
            order.append(token)
            started.set()
            time.sleep(0.002)

    thread = threading.Thread(target=reader)
    thread.start()
    assert started.wait(DEADLINE)
    order.extend(bounded(lambda: list(model.generate("b", 2))))  # type: ignore[arg-type]
    thread.join(DEADLINE)
    assert order == [f"a{i}" for i in range(30)] + ["b0", "b1"]  # no interleaving while read


def test_cancelling_a_waiting_call_ends_its_wait() -> None:
    model = Model(grace=3600)
    kept = model.generate("a", 3)
    next(kept)
    token = CancelToken()
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        list(model.generate("b", 3, cancel=token))

    threading.Timer(0.1, token.cancel).start()
    with pytest.raises(Cancelled):
        bounded(waiter)
    assert waiting.is_set()
    assert list(kept) == ["a1", "a2"]  # the cancelled call took nothing from the kept stream


def test_closing_a_stream_never_waits_for_the_lock() -> None:
    model = Model()
    first = model.generate("a", 3)
    next(first)
    second = model.generate("b", 3)
    next(second)  # same thread: took the model from `first`
    model.turns.lock.acquire()  # as if a step of another call were running in this thread
    try:
        bounded(first.close, timeout=5)  # e.g. a finalizer running inside that step
    finally:
        model.turns.lock.release()
    assert list(second) == ["b1", "b2"]
