"""Run a blocking iterator (an in-process model's token stream) without blocking asyncio."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _DONE, _ERROR = 0, 1, 2


async def aiter_in_thread(make_iter: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Yield the items of ``make_iter()``, produced in a worker thread.

    Items are handed over as they come, so the event loop stays free. When the
    consumer stops early (``break``, ``aclose()``, cancellation), the worker closes
    the iterator at the next item, which stops generation and releases the model's
    lock, and this waits for that before returning.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    cancelled = threading.Event()

    def post(kind: int, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            cancelled.set()

    def produce() -> None:
        iterator = make_iter()
        try:
            for item in iterator:
                if cancelled.is_set():
                    break
                post(_ITEM, item)
        except BaseException as exc:  # handed to the consumer, re-raised there
            post(_ERROR, exc)
        else:
            post(_DONE, None)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(produce,), daemon=True, name="localllm-stream")
    worker.start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        cancelled.set()
        if worker.is_alive():
            await asyncio.shield(asyncio.to_thread(worker.join))
