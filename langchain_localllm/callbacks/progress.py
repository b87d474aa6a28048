"""A tqdm progress bar over the LLM calls of a batch or a multi-step chain."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_localllm.callbacks._tokens import Token, token_text


class TqdmProgressCallbackHandler(BaseCallbackHandler):
    """Advance a tqdm bar each time an LLM call ends; show streamed tokens as it runs.

    Each prompt of a ``batch`` and each LLM call of a chain (a map-reduce summary's
    map steps, a RAG chain's query rewriting and answer...) is one step. Without
    ``total`` the bar's total is the number of calls started so far, so a batch
    shows ``3/8`` as soon as it starts; give ``total`` when you know the number of
    steps of a chain in advance.

    Setup:
        Uses ``tqdm`` (a dependency of this package).

    Key init args:
        total: int | None
            Number of calls expected; ``None`` counts the calls as they start.
        desc: str
            Label of the bar.
        file: TextIO | None
            Where the bar is drawn (``sys.stderr`` by default).
        disable: bool
            Draw nothing (counting still happens).

    Instantiate:
        .. code-block:: python

            from langchain_localllm import LlamaCpp
            from langchain_localllm.callbacks import TqdmProgressCallbackHandler

            llm = LlamaCpp(model_path="model.gguf")

    Invoke:
        .. code-block:: python

            with TqdmProgressCallbackHandler(desc="questions") as progress:
                answers = llm.batch(questions, config={"callbacks": [progress]})
            # questions: 100%|██████████| 8/8 [00:04<00:00, tokens=512]

    Async:
        .. code-block:: python

            with TqdmProgressCallbackHandler(total=len(docs) + 1, desc="summary") as progress:
                await chain.ainvoke(docs, config={"callbacks": [progress]})
    """

    run_inline: bool = True

    def __init__(
        self,
        total: int | None = None,
        *,
        desc: str = "LLM calls",
        unit: str = "call",
        file: TextIO | None = None,
        leave: bool = True,
        disable: bool = False,
        **tqdm_kwargs: Any,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.file = file
        self.leave = leave
        self.disable = disable
        self.tqdm_kwargs = tqdm_kwargs
        self.started = 0
        """LLM calls started."""
        self.completed = 0
        """LLM calls ended (successfully or not)."""
        self.failed = 0
        """LLM calls that ended with an error."""
        self.tokens = 0
        """Tokens streamed over all calls."""
        self._bar: Any = None
        self._lock = threading.Lock()
        self._running: set[UUID] = set()

    @property
    def bar(self) -> Any:
        """The ``tqdm`` bar (created at the first call)."""
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.total,
                desc=self.desc,
                unit=self.unit,
                file=self.file or sys.stderr,
                leave=self.leave,
                disable=self.disable,
                **self.tqdm_kwargs,
            )
        return self._bar

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        **kw: Any,
    ) -> None:
        with self._lock:
            self._running.add(run_id)
            self.started += 1
            bar = self.bar
            if self.total is None:
                bar.total = max(self.started, bar.total or 0)
                bar.refresh()

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: Any,
        *,
        run_id: UUID,
        **kw: Any,
    ) -> None:
        self.on_llm_start(serialized, [], run_id=run_id)

    def on_llm_new_token(self, token: Token, **kwargs: Any) -> None:
        token = token_text(token)
        with self._lock:
            self.tokens += 1
            self.bar.set_postfix(tokens=self.tokens, refresh=False)

    def _finish(self, run_id: UUID, *, failed: bool) -> None:
        with self._lock:
            if run_id not in self._running:
                return
            self._running.discard(run_id)
            self.completed += 1
            if failed:
                self.failed += 1
                self.bar.set_postfix(tokens=self.tokens, failed=self.failed, refresh=False)
            self.bar.update(1)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, failed=False)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, failed=True)

    def close(self) -> None:
        """Close the bar (prints its final state)."""
        with self._lock:
            if self._bar is not None:
                self._bar.close()

    def __enter__(self) -> TqdmProgressCallbackHandler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
