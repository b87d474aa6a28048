"""Consume streamed tokens with ``async for``."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_localllm.callbacks._tokens import Token, token_text


class AsyncIteratorCallbackHandler(AsyncCallbackHandler):
    """Hand tokens to an ``async for`` loop while a call runs in a task.

    ``aiter()`` yields each token once, in order, and ends when the call ends:

    * on completion, when the outermost run the handler saw (the LLM call, or the
      chain if the handler was passed in the chain's ``config``) has ended;
    * on error, after yielding the tokens that arrived before it. With
      ``raise_errors=True`` (the default) ``aiter()`` then re-raises the error, so
      a failed call never looks like a short answer; with ``raise_errors=False`` it
      ends quietly and the error is kept in :attr:`error`.

    Pass the task to ``aiter(task)`` to also end when the task finishes, whatever
    events arrived: this covers errors raised before any callback fired (a bad
    argument) and multi-step work where the handler only sees the LLM calls.

    Tokens that arrive before ``aiter()`` starts are buffered. After ``aiter()``
    ends the handler is ready for the next call. It is safe to use when the call
    runs in another thread (``asyncio.to_thread(llm.invoke, ...)``).

    Setup:
        Nothing to install.

    Key init args:
        raise_errors: bool
            Re-raise the call's error from ``aiter()`` (default) or end quietly.

    Instantiate:
        .. code-block:: python

            from langchain_localllm import LlamaCpp
            from langchain_localllm.callbacks import AsyncIteratorCallbackHandler

            llm = LlamaCpp(model_path="model.gguf")
            handler = AsyncIteratorCallbackHandler()

    Async:
        .. code-block:: python

            task = asyncio.create_task(llm.ainvoke("Tell me a story", config={"callbacks": [handler]}))
            async for token in handler.aiter(task):
                print(token, end="", flush=True)
            answer = await task
    """

    run_inline: bool = True

    def __init__(self, *, raise_errors: bool = True) -> None:
        self.raise_errors = raise_errors
        self.error: BaseException | None = None
        """The error of the last call, if it failed."""
        self._lock = threading.Lock()
        self._tokens: deque[str] = deque()
        self._runs: set[UUID] = set()
        self._top: set[UUID] = set()
        self._started = False
        self._done = False
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    @property
    def done(self) -> bool:
        """True once the outermost run has ended (until ``aiter()`` resets it)."""
        return self._done

    # --- events ----------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            loop, event = waiter
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def _start(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        with self._lock:
            if parent_run_id is None or parent_run_id not in self._runs:
                if not self._started:
                    self.error = None  # a new call begins
                self._top.add(run_id)
                self._started = True
                self._done = False
            self._runs.add(run_id)

    def _end(self, run_id: UUID, error: BaseException | None = None) -> None:
        with self._lock:
            self._runs.discard(run_id)
            if run_id in self._top:
                self._top.discard(run_id)
                if error is not None and self.error is None:
                    self.error = error
                if self._started and not self._top:
                    self._done = True
        self._wake()

    async def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id)

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kw: Any,
    ) -> None:
        self._start(run_id, parent_run_id)

    async def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id)

    async def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id)

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id)

    async def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    async def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    async def on_llm_new_token(self, token: Token, **kwargs: Any) -> None:
        token = token_text(token)
        if token:
            with self._lock:
                self._tokens.append(token)
            self._wake()

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    async def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    async def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    # --- consuming -------------------------------------------------------------------

    async def aiter(self, task: Awaitable[Any] | None = None) -> AsyncIterator[str]:
        """Yield tokens until the call ends (see the class docstring for errors).

        ``task``, optional, is the awaitable running the call (an ``asyncio.Task``);
        when given, the iterator also ends as soon as it finishes. It is not
        cancelled or awaited for its result: ``await`` it yourself afterwards.
        """
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        future = asyncio.ensure_future(task) if task is not None else None
        if future is not None:
            future.add_done_callback(lambda _: event.set())
        with self._lock:
            self._waiter = (loop, event)
        try:
            while True:
                event.clear()
                with self._lock:
                    tokens = list(self._tokens)
                    self._tokens.clear()
                    finished = self._done or (future is not None and future.done())
                for token in tokens:
                    yield token
                if finished and not tokens:
                    break
                if not tokens:
                    await event.wait()
            error = self.error
            if error is None and future is not None and future.done() and not future.cancelled():
                error = future.exception()
            if error is not None:
                self.error = error
                if self.raise_errors:
                    raise error
        finally:
            with self._lock:
                self._waiter = None
                self._done = False
                self._started = False
                self._top.clear()
                self._runs.clear()

    def __aiter__(self) -> AsyncIterator[str]:
        return self.aiter()
