"""Time to first token, tokens per second and token counts, per call and in total."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_localllm.callbacks._tokens import Token, token_text

__all__ = ["CallTimings", "TimingsCallbackHandler", "TimingsTotals", "runtime_timings"]

_PREFIX = "localllm_perf"


@dataclass(frozen=True)
class CallTimings:
    """What one LLM call took. Times are milliseconds, ``None`` when unknown."""

    prompt_tokens: int | None
    """Prompt tokens, from the runtime's usage report."""
    completion_tokens: int
    """Generated tokens: the runtime's count, else the number of streamed tokens."""
    ttft_ms: float | None
    """Wall time from the call's start to its first streamed token (``None`` if nothing streamed)."""
    total_ms: float
    """Wall time from the call's start to its end, as seen by the caller."""
    prompt_ms: float | None
    """Prompt processing time reported by the runtime."""
    predicted_ms: float | None
    """Generation time: the runtime's when reported, else measured from the first token."""
    load_ms: float | None = None
    """Model load time reported by the runtime (Ollama's ``load_duration``)."""
    prompt_eval_tokens: int | None = None
    """Prompt tokens the runtime actually evaluated in ``prompt_ms`` (fewer than
    ``prompt_tokens`` when a cached prefix was reused)."""
    eval_tokens: int | None = None
    """Tokens decoded in ``predicted_ms`` (llama.cpp counts the first sampled token
    under the prompt time)."""
    source: str = "measured"
    """``"runtime"`` when the runtime reported its own timings, else ``"measured"``."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return (self.prompt_tokens or 0) + self.completion_tokens

    @property
    def prompt_tokens_per_second(self) -> float | None:
        """Prompt processing speed, when the runtime reported it."""
        n = self.prompt_eval_tokens if self.prompt_eval_tokens is not None else self.prompt_tokens
        if self.prompt_ms and n:
            return n / self.prompt_ms * 1000.0
        return None

    @property
    def tokens_per_second(self) -> float | None:
        """Generation speed in tokens per second (of generation time, else of total time)."""
        n = self.eval_tokens if self.eval_tokens is not None else self.completion_tokens
        if self.predicted_ms and n:
            return n / self.predicted_ms * 1000.0
        if self.total_ms and self.completion_tokens:
            return self.completion_tokens / self.total_ms * 1000.0
        return None

    def summary(self, prefix: str = _PREFIX) -> str:
        """Lines in the style of llama.cpp's ``llama_perf_context_print``."""
        return _format(
            prefix,
            ttft_ms=self.ttft_ms,
            load_ms=self.load_ms,
            prompt_ms=self.prompt_ms,
            prompt_tokens=self.prompt_tokens,
            prompt_eval_tokens=self.prompt_eval_tokens,
            predicted_ms=self.predicted_ms,
            completion_tokens=self.completion_tokens,
            eval_tokens=self.eval_tokens,
            total_ms=self.total_ms,
        )


@dataclass(frozen=True)
class TimingsTotals:
    """All calls recorded by a :class:`TimingsCallbackHandler`, summed."""

    calls: int
    """Number of completed calls."""
    prompt_tokens: int
    """Sum of prompt tokens."""
    completion_tokens: int
    """Sum of generated tokens."""
    total_ms: float
    """Sum of the calls' wall times."""
    prompt_ms: float | None
    """Sum of the runtime's prompt times (``None`` if no call reported one)."""
    predicted_ms: float | None
    """Sum of generation times."""
    mean_ttft_ms: float | None
    """Mean time to first token over the calls that streamed."""
    prompt_eval_tokens: int | None = None
    """Sum of prompt tokens evaluated in ``prompt_ms``."""
    eval_tokens: int | None = None
    """Sum of tokens decoded in ``predicted_ms``."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def tokens_per_second(self) -> float | None:
        """Generated tokens per second of generation time, over all calls."""
        n = self.eval_tokens if self.eval_tokens is not None else self.completion_tokens
        if self.predicted_ms and n:
            return n / self.predicted_ms * 1000.0
        return None

    def summary(self, prefix: str = _PREFIX) -> str:
        """Lines in the style of llama.cpp's timing summary, for all calls."""
        head = f"{prefix}: {self.calls:>17} {'call' if self.calls == 1 else 'calls'}"
        body = _format(
            prefix,
            ttft_ms=self.mean_ttft_ms,
            ttft_label="mean time to first token",
            load_ms=None,
            prompt_ms=self.prompt_ms,
            prompt_tokens=self.prompt_tokens,
            prompt_eval_tokens=self.prompt_eval_tokens,
            predicted_ms=self.predicted_ms,
            completion_tokens=self.completion_tokens,
            eval_tokens=self.eval_tokens,
            total_ms=self.total_ms,
        )
        return f"{head}\n{body}"


class TimingsCallbackHandler(BaseCallbackHandler):
    """Record time to first token, tokens/s and token counts of every LLM call.

    The runtime's own numbers are used when the backend reports them in the last
    chunk's ``generation_info`` (``timings`` with ``prompt_ms``/``predicted_ms``...
    from llama.cpp and llama-server, Ollama's ``*_duration`` fields, and ``usage``
    for token counts). Otherwise times are measured around the callbacks: time to
    first token is always measured, since it is what the caller waits for.

    Setup:
        Nothing to install.

    Key init args:
        print_each: bool
            Print each call's summary when it ends.
        file: TextIO | None
            Where summaries are printed (``sys.stderr`` at call time by default).

    Instantiate:
        .. code-block:: python

            from langchain_localllm import LlamaCpp
            from langchain_localllm.callbacks import TimingsCallbackHandler

            timings = TimingsCallbackHandler()
            llm = LlamaCpp(model_path="model.gguf", callbacks=[timings])

    Invoke:
        .. code-block:: python

            llm.invoke("The first man on the moon was")
            timings.last.ttft_ms, timings.last.tokens_per_second
            print(timings.summary())

        .. code-block:: none

            localllm_perf:                    1 call
            localllm_perf: mean time to first token =      21.42 ms
            localllm_perf:         prompt eval time = 12.8 ms /  9 tokens (1.42 ms per token, 703.12 tokens/s)
            localllm_perf:                eval time = 310.1 ms / 63 runs (4.92 ms per token, 203.15 tokens/s)
            localllm_perf:               total time =     331.90 ms /    72 tokens

        (shortened here: the real output aligns the figures in columns like llama.cpp's)

    Stream / Async:
        The same handler works for ``stream``, ``astream``, ``ainvoke`` and ``batch``.
        In a ``batch``, LangChain reports every prompt's tokens on the first
        prompt's run, so only that call has a time to first token.
    """

    run_inline: bool = True
    """Timestamps are taken in the event loop's thread for async runs."""

    def __init__(self, *, print_each: bool = False, file: TextIO | None = None) -> None:
        self.print_each = print_each
        self.file = file
        self.calls: list[CallTimings] = []
        """Completed calls, in the order they ended."""
        self.errors = 0
        """Number of calls that ended with an error (not in ``calls``)."""
        self._lock = threading.Lock()
        self._started: dict[UUID, float] = {}
        self._first: dict[UUID, float] = {}
        self._tokens: dict[UUID, int] = {}

    # --- callbacks -------------------------------------------------------------------

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        **kw: Any,
    ) -> None:
        with self._lock:
            self._started[run_id] = time.perf_counter()
            self._tokens[run_id] = 0

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: Any,
        *,
        run_id: UUID,
        **kw: Any,
    ) -> None:
        self.on_llm_start(serialized, [], run_id=run_id)

    def on_llm_new_token(self, token: Token, *, run_id: UUID, **kwargs: Any) -> None:
        token = token_text(token)
        now = time.perf_counter()
        with self._lock:
            self._first.setdefault(run_id, now)
            self._tokens[run_id] = self._tokens.get(run_id, 0) + 1

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        end = time.perf_counter()
        with self._lock:
            start = self._started.pop(run_id, end)
            first = self._first.pop(run_id, None)
            streamed = self._tokens.pop(run_id, 0)
        info: dict[str, Any] = {}
        for generations in response.generations:
            for generation in generations:
                info.update(generation.generation_info or {})
        call = _call_timings(info, start=start, first=first, end=end, streamed=streamed)
        with self._lock:
            self.calls.append(call)
        if self.print_each:
            print(call.summary(), file=self.file or sys.stderr, flush=True)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._started.pop(run_id, None)
            self._first.pop(run_id, None)
            self._tokens.pop(run_id, None)
            self.errors += 1

    # --- results ---------------------------------------------------------------------

    @property
    def last(self) -> CallTimings | None:
        """The most recently completed call."""
        return self.calls[-1] if self.calls else None

    @property
    def totals(self) -> TimingsTotals:
        """All completed calls aggregated."""
        calls = list(self.calls)
        ttfts = [c.ttft_ms for c in calls if c.ttft_ms is not None]
        prompt_ms = [c.prompt_ms for c in calls if c.prompt_ms is not None]
        predicted = [c.predicted_ms for c in calls if c.predicted_ms is not None]
        return TimingsTotals(
            calls=len(calls),
            prompt_tokens=sum(c.prompt_tokens or 0 for c in calls),
            completion_tokens=sum(c.completion_tokens for c in calls),
            total_ms=sum(c.total_ms for c in calls),
            prompt_ms=sum(prompt_ms) if prompt_ms else None,
            predicted_ms=sum(predicted) if predicted else None,
            mean_ttft_ms=sum(ttfts) / len(ttfts) if ttfts else None,
            prompt_eval_tokens=_sum_known([c.prompt_eval_tokens for c in calls if c.prompt_ms is not None]),
            eval_tokens=_sum_known([c.eval_tokens for c in calls if c.predicted_ms is not None]),
        )

    def summary(self) -> str:
        """The summary (llama.cpp style) of the one call, or of all calls aggregated."""
        if not self.calls:
            return f"{_PREFIX}: no completed calls"
        if len(self.calls) == 1:
            return self.calls[0].summary()
        return self.totals.summary()

    def print_summary(self, file: TextIO | None = None) -> None:
        """Print :meth:`summary` (to stderr by default)."""
        print(self.summary(), file=file or self.file or sys.stderr, flush=True)

    def reset(self) -> None:
        """Forget the recorded calls."""
        with self._lock:
            self.calls.clear()
            self.errors = 0


# --- helpers ---------------------------------------------------------------------------


def _sum_known(values: list[int | None]) -> int | None:
    """The sum, or None if any value is unknown (then counts fall back to usage)."""
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def runtime_timings(info: Mapping[str, Any]) -> dict[str, float]:
    """The runtime's own timings found in a ``generation_info``, in milliseconds and counts.

    Understands ``timings`` (llama.cpp / llama-server: ``prompt_ms``, ``predicted_ms``,
    ``prompt_n``, ``predicted_n``...), Ollama's nanosecond durations (top level or
    under ``timings``) and ``usage`` (``prompt_tokens``, ``completion_tokens``).
    Returns keys among ``prompt_ms``, ``predicted_ms``, ``load_ms``, ``prompt_eval_n``,
    ``eval_n`` (tokens counted in those times), ``prompt_tokens`` and ``completion_tokens``.
    """
    out: dict[str, float] = {}
    sources = [info, info.get("timings") or {}]
    for source in sources:
        if not isinstance(source, Mapping):
            continue
        for key, name, scale in (
            ("prompt_ms", "prompt_ms", 1.0),
            ("predicted_ms", "predicted_ms", 1.0),
            ("load_ms", "load_ms", 1.0),
            ("prompt_eval_duration", "prompt_ms", 1e-6),
            ("eval_duration", "predicted_ms", 1e-6),
            ("load_duration", "load_ms", 1e-6),
            ("prompt_n", "prompt_eval_n", 1.0),
            ("predicted_n", "eval_n", 1.0),
            ("prompt_eval_count", "prompt_eval_n", 1.0),
            ("eval_count", "eval_n", 1.0),
        ):
            value = _num(source.get(key))
            if value is not None and name not in out:
                out[name] = value * scale
        # A speed without a duration: derive the duration from the count.
        for speed, ms, count in (
            ("predicted_per_second", "predicted_ms", "predicted_n"),
            ("prompt_per_second", "prompt_ms", "prompt_n"),
        ):
            rate, n = _num(source.get(speed)), _num(source.get(count))
            if ms not in out and rate and n:
                out[ms] = n / rate * 1000.0
    usage = info.get("usage")
    if isinstance(usage, Mapping):
        for key in ("prompt_tokens", "completion_tokens"):
            value = _num(usage.get(key))
            if value is not None:
                out[key] = value  # the usage report is authoritative for counts
    for count, fallback in (("prompt_tokens", "prompt_eval_n"), ("completion_tokens", "eval_n")):
        if count not in out and fallback in out:
            out[count] = out[fallback]
    return out


def _call_timings(
    info: Mapping[str, Any], *, start: float, first: float | None, end: float, streamed: int
) -> CallTimings:
    runtime = runtime_timings(info)
    completion = int(runtime.get("completion_tokens", streamed))
    prompt_tokens = runtime.get("prompt_tokens")
    predicted_ms = runtime.get("predicted_ms")
    source = "runtime" if predicted_ms is not None else "measured"
    if predicted_ms is None and first is not None and end > first and streamed > 1:
        # Measured decode time covers the tokens after the first one.
        predicted_ms = (end - first) * 1000.0 * completion / (streamed - 1)
    return CallTimings(
        prompt_tokens=int(prompt_tokens) if prompt_tokens is not None else None,
        completion_tokens=completion,
        ttft_ms=(first - start) * 1000.0 if first is not None else None,
        total_ms=(end - start) * 1000.0,
        prompt_ms=runtime.get("prompt_ms"),
        predicted_ms=predicted_ms,
        load_ms=runtime.get("load_ms"),
        prompt_eval_tokens=_int(runtime.get("prompt_eval_n")),
        eval_tokens=_int(runtime.get("eval_n")) if source == "runtime" else None,
        source=source,
    )


def _int(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _rates(ms: float | None, n: int | None) -> str:
    if ms and n:
        return f" ({ms / n:8.2f} ms per token, {n / ms * 1000.0:8.2f} tokens per second)"
    return ""


def _format(
    prefix: str,
    *,
    ttft_ms: float | None,
    load_ms: float | None,
    prompt_ms: float | None,
    prompt_tokens: int | None,
    prompt_eval_tokens: int | None,
    predicted_ms: float | None,
    completion_tokens: int,
    eval_tokens: int | None,
    total_ms: float,
    ttft_label: str = "time to first token",
) -> str:
    width = 24
    lines = []
    if load_ms is not None:
        lines.append(f"{prefix}: {'load time':>{width}} = {load_ms:10.2f} ms")
    if ttft_ms is not None:
        lines.append(f"{prefix}: {ttft_label:>{width}} = {ttft_ms:10.2f} ms")
    if prompt_ms is not None:
        n_prompt = prompt_eval_tokens if prompt_eval_tokens is not None else prompt_tokens or 0
        lines.append(
            f"{prefix}: {'prompt eval time':>{width}} = {prompt_ms:10.2f} ms / {n_prompt:5d} tokens"
            + _rates(prompt_ms, n_prompt)
        )
    elif prompt_tokens is not None:
        lines.append(f"{prefix}: {'prompt tokens':>{width}} = {prompt_tokens:10d}")
    if predicted_ms is not None:
        runs = eval_tokens if eval_tokens is not None else completion_tokens
        lines.append(
            f"{prefix}: {'eval time':>{width}} = {predicted_ms:10.2f} ms / {runs:5d} runs  "
            + _rates(predicted_ms, runs)
        )
    else:
        lines.append(f"{prefix}: {'completion tokens':>{width}} = {completion_tokens:10d}")
    total_tokens = (prompt_tokens or 0) + completion_tokens
    lines.append(f"{prefix}: {'total time':>{width}} = {total_ms:10.2f} ms / {total_tokens:5d} tokens")
    return "\n".join(lines)
