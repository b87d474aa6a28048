"""aiter_in_thread: blocking token streams consumed from asyncio."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from langchain_localllm._core.base.threads import (
    READ_AHEAD,
    CancelToken,
    aiter_in_thread,
    current_cancel_token,
)


class Source:
    """An endless blocking generator that records what it produced and whether it was closed."""

    def __init__(self) -> None:
        self.produced = 0
        self.closed = threading.Event()
        self.threads: set[str] = set()

    def __call__(self) -> Iterator[int]:
        try:
            while True:
                self.threads.add(threading.current_thread().name)
                self.produced += 1
                yield self.produced
        finally:
            self.closed.set()


async def test_items_arrive_in_order_from_a_worker_thread() -> None:
    def finite() -> Iterator[int]:
        yield from range(50)

    assert [i async for i in aiter_in_thread(finite)] == list(range(50))


async def test_leaving_early_stops_the_producer_within_the_read_ahead() -> None:
    source = Source()
    stream = aiter_in_thread(source)
    taken = [i async for i, _ in zip_async(stream, range(3))]
    await stream.aclose()
    assert taken == [1, 2, 3]
    assert source.closed.is_set()  # closed (generation stopped, lock released) before aclose returned
    assert source.produced <= 3 + READ_AHEAD + 1
    assert threading.current_thread().name not in source.threads


async def test_errors_reach_the_consumer_after_the_items_before_them() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("boom")

    seen = []
    with pytest.raises(ValueError, match="boom"):
        async for item in aiter_in_thread(failing):
            seen.append(item)
    assert seen == [1]


async def test_cancellation_closes_the_producer() -> None:
    source = Source()

    async def consume() -> None:
        async for _ in aiter_in_thread(source):
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    while source.produced < 5:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The abandoned stream is finalised by the event loop; its producer then closes.
    assert await asyncio.to_thread(source.closed.wait, 30)


async def zip_async(stream, limit):  # type: ignore[no-untyped-def]
    for n in limit:
        yield await stream.__anext__(), n


async def test_a_factory_that_raises_reaches_the_consumer() -> None:
    # Regression: the factory was called outside the worker's try, so its error killed the
    # thread silently and the consumer waited forever.
    def factory() -> Iterator[int]:
        raise ValueError("bad arguments")

    async def consume() -> list[int]:
        return [item async for item in aiter_in_thread(factory)]

    with pytest.raises(ValueError, match="bad arguments"):
        await asyncio.wait_for(consume(), timeout=10)


async def test_the_worker_is_told_when_its_consumer_leaves() -> None:
    seen: list[CancelToken | None] = []
    told = threading.Event()

    def blocking() -> Iterator[int]:
        token = current_cancel_token()
        seen.append(token)
        assert token is not None
        token.on_cancel(told.set)
        yield 1
        told.wait(30)  # e.g. waiting for a busy model: ends when the consumer leaves
        yield 2

    stream = aiter_in_thread(blocking)
    assert await stream.__anext__() == 1
    await asyncio.wait_for(stream.aclose(), timeout=30)  # returns: the worker's wait ended
    assert told.is_set() and seen[0] is not None and seen[0].is_set()
    assert current_cancel_token() is None  # the caller's own context is untouched


def test_cancel_callbacks_run_once_unless_removed_and_late_ones_run_at_once() -> None:
    token = CancelToken()
    calls: list[str] = []
    token.on_cancel(lambda: calls.append("kept"))
    remove = token.on_cancel(lambda: calls.append("removed"))
    remove()
    token.cancel()
    token.cancel()
    token.on_cancel(lambda: calls.append("late"))
    assert calls == ["kept", "late"]
