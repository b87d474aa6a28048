"""Which path a completion takes on a loaded llama.cpp model: alone, or shared with others.

:func:`complete` is what ``LlamaCpp`` and ``ChatLlamaCpp`` call for every completion. The rule:

* A call **alone** on the model runs :func:`~langchain_localllm.llamacpp.runtime.stream_completion`
  on the ``Llama`` itself, exactly as before (same speed, same per-conversation state cache).
* A call that **finds another generation running** on the model, or that belongs to a batch
  (``batch``/``abatch`` with more than one input, marked by :func:`batched`), joins the model's
  :class:`~langchain_localllm.llamacpp.batching.BatchedEngine`: up to ``n_parallel`` sequences
  share each forward pass. Calls of one ``asyncio.gather`` or of several threads thus share the
  passes from the second call on; the first goes on alone, its steps taking turns with the
  engine's under the model's lock (the CPU is not split between two contexts).
* Still alone, whatever the load: ``n_parallel=1``, a ``suffix`` (fill-in-the-middle), and a
  call without a ``max_tokens`` bound (``max_tokens=None``): it waits for the model instead.

One engine per loaded model and ``n_parallel``, made on first use and kept with the
:class:`~langchain_localllm._inprocess.model_cache.LoadedModel` (closed when the model is evicted or
the cache cleared). Each of its sequences has the ``Llama``'s whole ``n_ctx``, so a call fits
the engine exactly when it fits alone (the chains size their chunks to that window): its KV
cache holds ``n_parallel * n_ctx`` cells, on top of the ``Llama``'s own ``n_ctx`` (the
weights are shared). A prompt too long for ``n_ctx`` is a ContextLengthExceededError of its
call alone. Streaming, callbacks, usage, timings, grammars, stop strings and
cancellation stay per sequence; an error of one sequence (its prompt too long) is its own.
Structured output keeps its token budget on the engine too: the budget's check
(:class:`~langchain_localllm.llamacpp.budgeted.BudgetGate`) goes with the sequence, which
resamples under the narrowed grammar as it does alone.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

from langchain_localllm._core.base.threads import current_cancel_token
from langchain_localllm._inprocess.model_cache import LoadedModel
from langchain_localllm._inprocess.turns import Cancelled
from langchain_localllm.llamacpp.runtime import CompletionSettings, Piece, stream_completion

if TYPE_CHECKING:
    from langchain_localllm.llamacpp.batching import BatchedEngine

__all__ = ["batched", "complete", "engine_of"]

_IN_BATCH: contextvars.ContextVar[bool] = contextvars.ContextVar("localllm_llamacpp_batch", default=False)


@contextlib.contextmanager
def batched(inputs: int) -> Iterator[None]:
    """Mark the calls made in the block (and in the threads and tasks it starts, which copy
    the context) as one batch of ``inputs`` calls: with more than one, they use the engine."""
    token = _IN_BATCH.set(inputs > 1 or _IN_BATCH.get())
    try:
        yield
    finally:
        _IN_BATCH.reset(token)


def engine_of(loaded: LoadedModel, n_parallel: int) -> BatchedEngine:
    """The model's engine for ``n_parallel`` sequences (made on first use, kept with the model)."""
    from langchain_localllm.llamacpp.batching import BatchedEngine

    return loaded.attach(
        ("batched_engine", n_parallel),
        lambda: BatchedEngine(
            loaded.model,
            n_parallel=n_parallel,
            n_ctx=n_parallel * loaded.model.n_ctx(),  # each sequence the window it has alone
            step_lock=loaded.lock,
        ),
    )


def complete(
    loaded: LoadedModel, tokens: list[int], settings: CompletionSettings, n_parallel: int
) -> Iterator[Piece]:
    """Stream one completion, alone or on the engine (see the module docstring); the pieces
    and the final ``("", info)`` of :func:`stream_completion` either way."""
    with loaded.generating() as others:
        shared = n_parallel > 1 and (others > 0 or _IN_BATCH.get())
        engine = engine_of(loaded, n_parallel) if shared and _bounded(settings) else None
        if engine is not None and len(tokens) + settings.max_tokens <= engine.n_ctx_per_sequence:
            yield from _on_engine(loaded, engine, tokens, settings)
        else:
            yield from stream_completion(loaded, tokens, settings)


def _bounded(settings: CompletionSettings) -> bool:
    """The engine can run it: a bounded answer and no suffix to fill in."""
    return settings.suffix is None and settings.max_tokens > 0


def _on_engine(
    loaded: LoadedModel, engine: BatchedEngine, tokens: list[int], settings: CompletionSettings
) -> Iterator[Piece]:
    max_tokens, stop, grammar, gate = settings.max_tokens, tuple(settings.stop), settings.grammar, None
    budget = settings.budget
    if budget is not None:  # the typed error before any token; the grammar ends the answer
        max_tokens, grammar = budget.prepare(loaded.model, len(tokens), settings.max_tokens)
        stop, gate = (), budget.gate(loaded.model)
    stream = engine.submit(
        tokens,
        max_tokens=max_tokens,
        stop=stop,
        grammar=grammar[0] if grammar is not None else None,
        gate=gate,
        **settings.sampling,
    )
    cancel = current_cancel_token()
    remove = cancel.on_cancel(stream.cancel) if cancel is not None else None
    try:
        for text in stream:
            yield text, None
    finally:
        if remove is not None:
            remove()
    result = stream.result()
    if result.finish_reason == "cancelled":
        raise Cancelled("the call was cancelled while it shared the model")
    info = result.generation_info
    if budget is not None:
        budget.finish(info)  # its finish reason ("stop": a whole document) and budget_narrowed
    yield "", info
