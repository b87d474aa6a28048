"""Callback handlers for watching local models work.

* :class:`StreamingTerminalCallbackHandler`: tokens to the terminal, flushed one by one.
* :class:`TimingsCallbackHandler`: time to first token, tokens/s and token counts,
  per call and in total, printed like llama.cpp's timing summary.
* :class:`JupyterStreamingCallbackHandler`: one live, updating output area in a notebook.
* :class:`AsyncIteratorCallbackHandler`: ``async for token in handler.aiter(task)``.
* :class:`TqdmProgressCallbackHandler`: a progress bar over batches and chain steps.

All of them work with ``callbacks=[...]`` on a model, ``config={"callbacks": [...]}``
on a call, and the classic ``callback_manager=CallbackManager([...])``.
"""

from __future__ import annotations

from langchain_localllm.callbacks.async_iterator import AsyncIteratorCallbackHandler
from langchain_localllm.callbacks.jupyter import JupyterStreamingCallbackHandler
from langchain_localllm.callbacks.progress import TqdmProgressCallbackHandler
from langchain_localllm.callbacks.streaming import StreamingTerminalCallbackHandler
from langchain_localllm.callbacks.timings import CallTimings, TimingsCallbackHandler, TimingsTotals

__all__ = [
    "AsyncIteratorCallbackHandler",
    "CallTimings",
    "JupyterStreamingCallbackHandler",
    "StreamingTerminalCallbackHandler",
    "TimingsCallbackHandler",
    "TimingsTotals",
    "TqdmProgressCallbackHandler",
]
