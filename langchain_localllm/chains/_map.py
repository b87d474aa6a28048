"""Run one step over many inputs with bounded concurrency (threads or tasks), with progress."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from langchain_core.runnables.config import ContextThreadPoolExecutor

from langchain_localllm.errors import StreamInterruptedError

T = TypeVar("T")
R = TypeVar("R")


class Progress:
    """A tqdm bar on stderr, opened at the first step and grown as steps are planned.

    ``show=None`` shows it only when stderr is a terminal; False never.
    """

    def __init__(self, show: bool | None, desc: str) -> None:
        self.enabled = sys.stderr.isatty() if show is None else show
        self.desc = desc
        self.bar: Any = None
        self._lock = threading.Lock()

    def add(self, steps: int) -> None:
        """Plan ``steps`` more steps."""
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc=self.desc, file=sys.stderr, leave=False)
        else:
            self.bar.total += steps
            self.bar.refresh()

    def update(self, steps: int = 1) -> None:
        """Mark ``steps`` steps done (thread-safe)."""
        if self.bar is not None:
            with self._lock:
                self.bar.update(steps)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.close()


def map_bounded(
    fn: Callable[[T], R], items: Sequence[T], max_concurrency: int, done: Callable[[], None] | None = None
) -> list[R]:
    """``[fn(item) ...]`` in at most ``max_concurrency`` threads (context vars kept), in order."""

    def step(item: T) -> R:
        result = fn(item)
        if done is not None:
            done()
        return result

    if max_concurrency <= 1 or len(items) <= 1:
        return [step(item) for item in items]
    with ContextThreadPoolExecutor(max_workers=min(max_concurrency, len(items))) as pool:
        return list(pool.map(step, items))


async def amap_bounded(
    fn: Callable[[T], Coroutine[Any, Any, R]],
    items: Sequence[T],
    max_concurrency: int,
    done: Callable[[], None] | None = None,
) -> list[R]:
    """Async twin of :func:`map_bounded`: at most ``max_concurrency`` coroutines at once."""
    semaphore = asyncio.Semaphore(max(1, max_concurrency))

    async def step(item: T) -> R:
        async with semaphore:
            result = await fn(item)
        if done is not None:
            done()
        return result

    return list(await asyncio.gather(*(step(item) for item in items)))


# A map step whose answer stream was cut (its server stopped mid-answer) is run again when
# other servers can take it: the partial answer is dropped, so each input's answer is used
# exactly once. Only whole steps of a batch job are re-run, never a stream a user is reading.


def rerun_interrupted(fn: Callable[[T], R], attempts: int) -> Callable[[T], R]:
    """``fn``, run up to ``attempts`` times while it raises :class:`StreamInterruptedError`."""

    def run(item: T) -> R:
        for attempt in range(attempts):
            try:
                return fn(item)
            except StreamInterruptedError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    return run


def arerun_interrupted(
    fn: Callable[[T], Coroutine[Any, Any, R]], attempts: int
) -> Callable[[T], Coroutine[Any, Any, R]]:
    """Async :func:`rerun_interrupted`."""

    async def run(item: T) -> R:
        for attempt in range(attempts):
            try:
                return await fn(item)
            except StreamInterruptedError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    return run
