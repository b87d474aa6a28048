"""Run a blocking iterator (an in-process model's token stream) without blocking asyncio."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _DONE, _ERROR = 0, 1, 2


#: How many items the worker may produce ahead of the consumer.
READ_AHEAD = 4


async def aiter_in_thread(
    make_iter: Callable[[], Iterator[T]], read_ahead: int = READ_AHEAD
) -> AsyncIterator[T]:
    """Yield the items of ``make_iter()``, produced in a worker thread.

    Items are handed over as they come, so the event loop stays free. The worker
    runs at most ``read_ahead`` items ahead of the consumer, so when the consumer
    stops early (``break``, ``aclose()``, cancellation, or simply dropping the
    iterator) generation stops within a few tokens: the worker closes the
    iterator, which ends generation and releases the model's lock. Closing this
    iterator waits for that.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    cancelled = threading.Event()
    credits = threading.Semaphore(read_ahead)

    def post(kind: int, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            cancelled.set()

    def produce() -> None:
        iterator: Iterator[T] | None = None
        try:
            iterator = make_iter()  # a factory that raises is reported like a failing iterator
            for item in iterator:
                while not credits.acquire(timeout=0.05):
                    if cancelled.is_set():
                        return
                if cancelled.is_set():
                    return
                post(_ITEM, item)
        except BaseException as exc:  # handed to the consumer, re-raised there
            post(_ERROR, exc)
        else:
            post(_DONE, None)
        finally:
            close = getattr(iterator, "close", None) if iterator is not None else None
            if close is not None:
                close()

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(produce,), daemon=True, name="localllm-stream")
    worker.start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == _ITEM:
                credits.release()
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        cancelled.set()
        if worker.is_alive():
            await asyncio.shield(asyncio.to_thread(worker.join))
