"""Run a blocking iterator (an in-process model's token stream) without blocking asyncio,
and tell the code running in the worker thread when its consumer has gone."""

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


class CancelToken:
    """Set once when the consumer of a call stops listening (``task.cancel()``, ``aclose()``).

    Code running for the call reads it where it may block for long: waiting for a model
    another call is using, or inside a native prompt evaluation (through a callback
    registered with :meth:`on_cancel`, which runs in the thread that cancels).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Mark the call cancelled and run the registered callbacks (once)."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` at cancellation (now, if already cancelled); returns its remover.

        The callback must be quick and must not block: it runs in the canceller's thread,
        which may be the event loop's.
        """
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        callback()
        return lambda: None

    def _remove(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


_CANCEL: contextvars.ContextVar[CancelToken | None] = contextvars.ContextVar(
    "localllm_cancel_token", default=None
)


def current_cancel_token() -> CancelToken | None:
    """The token of the call this code runs for, when its consumer can cancel it (the
    async paths: :func:`aiter_in_thread`'s worker); None for a plain synchronous call."""
    return _CANCEL.get()


async def aiter_in_thread(
    make_iter: Callable[[], Iterator[T]], read_ahead: int = READ_AHEAD
) -> AsyncIterator[T]:
    """Yield the items of ``make_iter()``, produced in a worker thread.

    Items are handed over as they come, so the event loop stays free. The worker
    runs at most ``read_ahead`` items ahead of the consumer, so when the consumer
    stops early (``break``, ``aclose()``, cancellation, or simply dropping the
    iterator) generation stops within a few tokens: the worker closes the
    iterator, which ends generation and releases the model. Code in the worker sees
    the consumer leave through :func:`current_cancel_token` (a wait for a busy model
    and a running prompt evaluation end at once). Closing this iterator waits for the
    worker to finish.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    cancelled = CancelToken()
    credits = threading.Semaphore(read_ahead)

    def post(kind: int, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            cancelled.cancel()

    def produce() -> None:
        _CANCEL.set(cancelled)
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
        cancelled.cancel()
        if worker.is_alive():
            await asyncio.shield(asyncio.to_thread(worker.join))
