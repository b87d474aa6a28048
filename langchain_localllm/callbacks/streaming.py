"""Print tokens to a terminal as they arrive."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_localllm.callbacks._tokens import Token, token_text


class StreamingTerminalCallbackHandler(BaseCallbackHandler):
    """Write each token to a stream (stdout by default) and flush it at once.

    Setup:
        Nothing to install; works with every backend that streams.

    Key init args:
        stream: TextIO | None
            Where to write; ``None`` means the current ``sys.stdout`` at each call,
            so pytest's ``capsys`` and redirections see the output.
        end: str
            Written after each completed generation (a newline by default).

    Instantiate:
        .. code-block:: python

            from langchain_localllm import LlamaCpp
            from langchain_localllm.callbacks import StreamingTerminalCallbackHandler

            llm = LlamaCpp(model_path="model.gguf", callbacks=[StreamingTerminalCallbackHandler()])

    The classic form keeps working (the backends turn ``callback_manager`` into callbacks):

        .. code-block:: python

            from langchain_core.callbacks import CallbackManager

            llm = LlamaCpp(
                model_path="model.gguf",
                callback_manager=CallbackManager([StreamingTerminalCallbackHandler()]),
            )

    Invoke:
        .. code-block:: python

            llm.invoke("The first man on the moon was")  # tokens appear as they are generated

    Async:
        .. code-block:: python

            await llm.ainvoke("The first man on the moon was")  # same output, same order
    """

    run_inline: bool = True
    """Called in the event loop's thread for async runs: tokens keep their order."""

    def __init__(self, stream: TextIO | None = None, *, end: str = "\n") -> None:
        self.stream = stream
        self.end = end

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stdout

    def on_llm_new_token(self, token: Token, **kwargs: Any) -> None:
        token = token_text(token)
        out = self._out()
        out.write(token)
        out.flush()

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        if self.end:
            out = self._out()
            out.write(self.end)
            out.flush()
