"""Calls take turns on a shared in-process model, one step at a time.

A generation is a series of steps (evaluate the prompt, then one token at a time). Its
state lives in the model (llama.cpp's KV cache) from one step to the next, but the model's
lock is held only while a step runs: a stream that its consumer keeps half read, in any
thread or task, never keeps another call waiting for good.

The model belongs to one :class:`Turn` at a time, its *owner*. Only the owner runs steps,
and the owner's steps take the lock without waiting for anything else (no per-token cost
beyond that lock). Another call takes the model from the owner when the owner is *parked*
(between two steps):

- at once when the owner's last step ran in the calling thread (that thread is busy with
  the new call, so the old stream cannot be being read: it was kept half read);
- after :attr:`ModelTurns.grace` seconds without a step otherwise (a stream whose reader
  paused, or one left half read in another thread or task). A stream being read keeps the
  model until it ends, so concurrent calls still run one after the other, without
  interleaving costs.

Taking the model *suspends* the parked owner: its state is saved (the runtime's
``suspend`` function) and put back before its next step, so a stream resumed later goes
on exactly where it stopped, as if it had not been interrupted; it then waits for its turn
like any other call. Waiting ends early when the call is cancelled
(:class:`~langchain_localllm._core.base.threads.CancelToken`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from langchain_localllm._core.base.threads import CancelToken

__all__ = ["Cancelled", "ModelTurns", "Turn"]

#: How often a waiting call looks at its cancel token while a step of another call runs.
_POLL = 0.05


class Cancelled(Exception):
    """The call's consumer cancelled it (raised in the worker; nobody is listening)."""


#: ``suspend()`` saves a parked call's state and returns the function that restores it.
Suspend = Callable[[], Callable[[], None]]


class ModelTurns:
    """Who may run steps on one loaded model (see the module docstring)."""

    grace: float = 0.25
    """Seconds a parked stream of another thread keeps the model before the next call takes it."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        """The model's lock: held by each step, and by short calls such as tokenizing."""
        self.owner: Turn | None = None
        """The call whose state is in the model (changed only under :attr:`lock`, or by the
        owner itself when it ends)."""
        self._changed = threading.Condition(threading.Lock())
        self._version = 0  # bumped when the model may have become free (wakes the waiters)

    def turn(
        self,
        suspend: Suspend,
        *,
        cancel: CancelToken | None = None,
        on_take: Callable[[Turn], None] | None = None,
    ) -> Turn:
        """A new call's claim (it takes the model at its first :meth:`Turn.enter`).

        ``suspend`` saves this call's state when another call takes the model from it;
        ``on_take(turn)`` runs under the lock each time the call becomes the owner (before
        the previous owner is suspended and this call's state restored).
        """
        return Turn(self, suspend, cancel, on_take)

    def _wake(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()


class Turn:
    """One call's claim on a model: ``enter()`` before each step, ``leave()`` after it,
    ``close()`` when the call ends."""

    def __init__(
        self,
        turns: ModelTurns,
        suspend: Suspend,
        cancel: CancelToken | None,
        on_take: Callable[[Turn], None] | None,
    ) -> None:
        self._turns = turns
        self._suspend = suspend
        self._on_take = on_take
        self._restore: Callable[[], None] | None = None
        self._thread = 0
        self._parked_at = 0.0
        self.cancel = cancel
        """The call's cancel token, if its consumer can cancel it."""
        self._remove_callback = cancel.on_cancel(turns._wake) if cancel is not None else None

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def enter(self) -> None:
        """Wait for the model (taking it from a parked owner as the module docstring says);
        return holding its lock, this call's state in the model. Raises :class:`Cancelled`."""
        turns = self._turns
        if turns.owner is self:
            self._lock()
            if turns.owner is self:  # others take the model only under the lock: still ours
                return
            turns.lock.release()
        self._take()

    def leave(self) -> None:
        """After a step: release the lock (the model stays this call's until someone takes it)."""
        self._parked_at = time.monotonic()
        self._turns.lock.release()

    def close(self) -> None:
        """The call ended: the model is free; never waits (safe from any thread, also from a
        finalizer running while this thread holds the lock)."""
        turns = self._turns
        self._restore = None
        if self._remove_callback is not None:
            self._remove_callback()
            self._remove_callback = None
        with turns._changed:
            if turns.owner is self:
                turns.owner = None
            turns._version += 1
            turns._changed.notify_all()

    # --- taking the model ------------------------------------------------------------

    def _take(self) -> None:
        turns = self._turns
        while True:
            self._check_cancelled()
            self._lock()
            with turns._changed:
                owner, version = turns.owner, turns._version
                wait = 0.0 if owner is None or owner is self else owner._keeps_model_for()
                if wait <= 0.0:
                    turns.owner = self
            if wait <= 0.0:
                try:
                    self._become_owner(owner)
                except BaseException:
                    with turns._changed:  # whoever comes next restores from what was saved
                        if turns.owner is self:
                            turns.owner = None
                    turns.lock.release()
                    raise
                return
            turns.lock.release()
            self._wait(version, wait)

    def _wait(self, version: int, timeout: float) -> None:
        """Sleep until the model may have become free, the timeout, or cancellation."""
        turns = self._turns
        with turns._changed:
            turns._changed.wait_for(lambda: turns._version != version or self.cancelled, timeout=timeout)

    def _become_owner(self, previous: Turn | None) -> None:
        """Under the lock, just made the owner: suspend the previous owner, restore our state."""
        self._thread = threading.get_ident()
        if self._on_take is not None:
            self._on_take(self)
        if previous is not None and previous is not self:
            previous._restore = previous._suspend()
        if self._restore is not None:
            restore, self._restore = self._restore, None
            restore()
        self._check_cancelled()

    def _keeps_model_for(self) -> float:
        """Seconds this (parked) owner keeps the model from a caller holding the lock: 0 when
        its last step ran in the caller's thread or it has been parked for the grace time."""
        if self._thread == threading.get_ident():
            return 0.0
        return self._turns.grace - (time.monotonic() - self._parked_at)

    def _lock(self) -> None:
        lock = self._turns.lock
        if self.cancel is None:
            lock.acquire()
            return
        while not lock.acquire(timeout=_POLL):
            self._check_cancelled()

    def _check_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled("the call was cancelled")
