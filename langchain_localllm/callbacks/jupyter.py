"""Stream tokens into one live output area of a Jupyter cell."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_localllm.callbacks._tokens import Token, token_text
from langchain_localllm.errors import MissingDependencyError


class JupyterStreamingCallbackHandler(BaseCallbackHandler):
    """Show the text being generated in a single output area that updates in place.

    Each LLM call gets one display (an IPython display handle) that is updated as
    tokens arrive, at most every ``min_interval`` seconds, and once more at the end:
    the cell shows one growing block of text instead of one line per token.

    Setup:
        Needs IPython (present in every Jupyter kernel). Outside a notebook it prints
        tokens to stdout like :class:`StreamingTerminalCallbackHandler`.

    Key init args:
        markdown: bool
            Render the text as Markdown (lists, code blocks...) instead of plain text.
        min_interval: float
            Minimum seconds between two updates of the output area.
        prefix: str
            Text shown before the generated text (e.g. ``"**Answer:** "``).

    Instantiate:
        .. code-block:: python

            from langchain_localllm import LlamaCpp
            from langchain_localllm.callbacks import JupyterStreamingCallbackHandler

            llm = LlamaCpp(model_path="model.gguf")
            handler = JupyterStreamingCallbackHandler(markdown=True)

    Invoke:
        .. code-block:: python

            llm.invoke("Write a haiku about the moon", config={"callbacks": [handler]})

    Async:
        .. code-block:: python

            await llm.ainvoke("Write a haiku about the moon", config={"callbacks": [handler]})
    """

    run_inline: bool = True
    """Updates happen in the event loop's thread for async runs."""

    def __init__(self, *, markdown: bool = False, min_interval: float = 0.1, prefix: str = "") -> None:
        try:
            from IPython.display import display  # noqa: F401
        except ImportError as error:
            raise MissingDependencyError(
                "JupyterStreamingCallbackHandler needs IPython: run it in a Jupyter kernel or "
                "`pip install ipython`.",
            ) from error
        self.markdown = markdown
        self.min_interval = min_interval
        self.prefix = prefix
        self.texts: dict[UUID, str] = {}
        """Text shown for each call (run id), kept after the call ends."""
        self.updates = 0
        """How many times an output area was updated (including the final updates)."""
        self._handles: dict[UUID, Any] = {}
        self._last: dict[UUID, float] = {}
        self._lock = threading.Lock()

    def _payload(self, text: str) -> dict[str, str]:
        shown = self.prefix + text
        if self.markdown:
            return {"text/markdown": shown, "text/plain": shown}
        return {"text/plain": shown}

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        **kw: Any,
    ) -> None:
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.display import display

        with self._lock:
            self.texts[run_id] = ""
            self._last[run_id] = float("-inf")  # the first token shows at once
            if InteractiveShell.initialized():
                self._handles[run_id] = display(self._payload(""), raw=True, display_id=True)
            else:  # plain Python: behave like the terminal handler
                self._handles[run_id] = None
                sys.stdout.write(self.prefix)

    def on_llm_new_token(self, token: Token, *, run_id: UUID, **kwargs: Any) -> None:
        token = token_text(token)
        now = time.monotonic()
        with self._lock:
            text = self.texts.get(run_id, "") + token
            self.texts[run_id] = text
            if run_id in self._handles and self._handles[run_id] is None:
                sys.stdout.write(token)
                sys.stdout.flush()
                return
            if now - self._last.get(run_id, float("-inf")) < self.min_interval:
                return
            self._last[run_id] = now
            self._update(run_id, text)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            text = self.texts.get(run_id, "")
            if not text:
                # Nothing streamed (e.g. the later prompts of a batch): show the result.
                text = "".join(g.text for gens in response.generations for g in gens)
                self.texts[run_id] = text
            if run_id in self._handles and self._handles[run_id] is None:
                sys.stdout.write("\n")
                sys.stdout.flush()
            self._update(run_id, text)
            self._handles.pop(run_id, None)
            self._last.pop(run_id, None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            text = self.texts.get(run_id, "") + f"\n[error: {error}]"
            self.texts[run_id] = text
            self._update(run_id, text)
            self._handles.pop(run_id, None)

    def _update(self, run_id: UUID, text: str) -> None:
        handle = self._handles.get(run_id)
        if handle is not None:
            handle.update(self._payload(text), raw=True)
            self.updates += 1
