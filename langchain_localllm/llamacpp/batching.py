"""Continuous batching over one loaded llama.cpp model: many sequences share each forward pass.

llama-cpp-python's ``Llama`` decodes one sequence at a time. :class:`BatchedEngine` drives
llama.cpp's multi-sequence batches through llama-cpp-python's low-level API instead:

* Up to ``n_parallel`` sequences are decoded together, **one** ``llama_decode`` per step:
  every generating sequence adds its last sampled token, and the oldest request still
  reading its prompt adds a piece of it. Requests join between steps (continuous batching);
  a finished, failed or cancelled sequence frees its slot and its KV cells at once, and the
  next waiting request takes the slot at the next step.
* Long prompts are read in pieces: while other sequences are generating, a prompt adds at
  most ``step_tokens`` tokens to a step, so it holds up the other streams by one piece's
  compute per step, not by the whole prompt. With nobody generating, it adds up to
  ``n_batch`` tokens (as ``create_completion`` reads a prompt).
* Each sequence has its own sampler chain (the chain llama-cpp-python builds: repeat
  penalty, optional GBNF grammar, then greedy at temperature 0, else top-k, typical, top-p,
  min-p, temperature and a draw with the sequence's seed), its own stop strings and
  ``max_tokens``, and streams its text through its own thread-safe channel (a sync and an
  async iterator, :class:`SequenceStream`). It reports ``finish_reason``, usage and timings.
* One background thread owns the llama.cpp context; callers only submit and read.

KV memory is bounded: the engine creates its **own** llama.cpp context on the loaded
model's weights (llama-cpp-python's ``Llama`` has no ``n_seq_max`` argument and its own
context holds one sequence), with ``n_ctx`` cells in all and ``n_seq_max = n_parallel``
separate KV streams (``kv_unified=False``, as llama-server with ``--parallel N``). Each
sequence owns ``n_ctx / n_parallel`` cells (llama.cpp rounds that up to a multiple of 256):
its prompt plus ``max_tokens`` must fit there, else :class:`ContextLengthExceededError` for
that request alone, at submission. The engine's KV cache comes on top of the ``Llama``'s
own (the weights are shared).

Correctness: sequences never share KV cells, a sampler chain or a channel, so answers
cannot cross. At temperature 0 an answer equals the same prompt run alone
(``create_completion`` on a fresh ``Llama``) wherever llama.cpp computes the same logits for
it; that depends on how its tokens are cut into llama.cpp's micro-batches, not on what the
other sequences say:

* A prompt is read in a micro-batch of its own: the batch is laid out so that llama.cpp's
  equal split of multi-stream batches (consecutive sequence ids, as many tokens each) never
  slices it. A prompt read in other pieces than ``create_completion``'s gets other logits in
  the last bits (Gemma 3 270M amplifies them to ~1 logit) -- here, a prompt longer than
  ``step_tokens`` that arrives while others generate. (llama-cpp-python's own prefix reuse
  does the same: its answer to a prompt depends on the call before.)
* Generating sequences share a micro-batch, and the CPU backend's matrix kernels for several
  rows (from 4 rows with its repacked Q4_K weights, from 8 rows without repacking) sum some
  rows in another order than the one-row kernels.

Measured on a 2-core AVX-512 CPU: on the generated f32 model, batched rows differ by at
most 1e-3 logits and greedy answers equal runs alone. On Gemma 3 270M Q4_K_M, up to 3 rows
are bit-identical; from 4 rows, some move by up to ~2 logits: of 16 prompts x 48 greedy
tokens, 8 answers (4 at once) and 9 (8 at once) equal runs alone, the others part where the
alone run's two best tokens were within 0.3 logits, and go on as fluent continuations of
their own prompt.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import ctypes
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_localllm._core.base.timings import timings_info
from langchain_localllm.errors import (
    BatchDecodeError,
    ContextLengthExceededError,
    EngineClosedError,
    InvalidParameterError,
    LocalLLMError,
)
from langchain_localllm.gpt4all.stop_sequences import StopScanner
from langchain_localllm.llamacpp.runtime import check_grammar, import_llama_cpp

if TYPE_CHECKING:
    from langchain_localllm.llamacpp.budgeted import BudgetGate, Verdict

__all__ = ["DEFAULT_N_PARALLEL", "BatchedEngine", "EngineStats", "SequenceResult", "SequenceStream"]

#: Sequences decoded together by default. Measured end to end (benchmarks/batched_decoding.py,
#: Gemma 3 270M, 2 CPU cores, 96 tokens each): 2 at once gain nothing on 2 cores (0.92x, as
#: llama-server --parallel 2: 0.93x), 4 gain 1.31x (llama-server 1.41x), 8 gain 1.97x
#: (llama-server 1.79x). Each slot holds a whole ``n_ctx`` of KV cells, so 8 would double the
#: engine's memory for what a 2-core machine rarely runs at once (llama.cpp#3749 reports far larger
#: gains from more slots on a GPU).
DEFAULT_N_PARALLEL = 4
#: Most prompt tokens a step reads while some sequence is generating.
DEFAULT_STEP_TOKENS = 128


@dataclass(frozen=True)
class SamplingSettings:
    """One sequence's generation settings, named as ``Llama.create_completion`` names them,
    with its defaults (but ``max_tokens``: 256, as the LLM classes)."""

    max_tokens: int | None = 256
    """Most tokens to generate; None or <= 0: until the sequence's share of the context is full."""
    temperature: float = 0.8
    """0 is greedy; below 0, a plain seeded draw (as llama-cpp-python)."""
    top_k: int = 40
    """Sample from the k most likely tokens (0: all)."""
    top_p: float = 0.95
    """Keep the smallest set of tokens with this total probability."""
    min_p: float = 0.05
    """Drop tokens less likely than this fraction of the most likely one."""
    repeat_penalty: float = 1.0
    """Penalty for the last ``last_n_tokens_size`` generated tokens (1.0: none)."""
    seed: int | None = None
    """Seed of this sequence's draw; None: a random one."""
    stop: tuple[str, ...] = ()
    """Strings that end the answer (not included in it)."""
    grammar: str | None = None
    """A GBNF grammar (start rule ``root``) the answer must follow."""
    gate: BudgetGate | None = None
    """A token budget's check (``llamacpp.budgeted``, :meth:`TokenBudget.gate`, with
    ``grammar`` the budget's full grammar and ``max_tokens`` its budget): each sampled token is
    offered to it before it is evaluated, and passed on, held (it ends inside a character) or
    dropped for a narrowed grammar, under which the sequence resamples at once."""


_SETTING_NAMES = tuple(f.name for f in fields(SamplingSettings))


@dataclass(frozen=True)
class SequenceResult:
    """How one sequence ended: its whole text, why it stopped, usage and timings."""

    text: str
    """The answer (stop strings excluded)."""
    finish_reason: str
    """"stop" (end of generation or a stop string), "length" (max_tokens) or "cancelled"."""
    prompt_tokens: int
    """Tokens of the prompt."""
    completion_tokens: int
    """Tokens sampled for the answer (end-of-generation excluded)."""
    timings: dict[str, Any]
    """Prompt and generation time of this sequence (wall time of the steps it took part in)."""
    first_token_seconds: float | None
    """Seconds from submission to the first sampled token (None: none was sampled)."""
    completion_ids: tuple[int, ...] = ()
    """The answer's token ids (end-of-generation excluded)."""
    model: str = ""
    """The model file's name without extension."""

    @property
    def usage(self) -> dict[str, int]:
        """``prompt_tokens``, ``completion_tokens``, ``total_tokens``."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    @property
    def generation_info(self) -> dict[str, Any]:
        """The ``generation_info`` of the in-process LLM classes (finish_reason, usage, timings, model)."""
        return {
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "timings": self.timings,
            "model": self.model,
        }


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine, taken by its decode thread after each step."""

    steps: int = 0
    """``llama_decode`` calls so far."""
    decoded_tokens: int = 0
    """Tokens decoded so far, prompts included."""
    active: int = 0
    """Sequences holding a slot."""
    waiting: int = 0
    """Requests waiting for a slot."""
    peak_active: int = 0
    """Most sequences ever decoded in one step."""
    kv_tokens: tuple[int, ...] = ()
    """Cells in use per slot, as llama.cpp reports them (``llama_memory_seq_pos_max`` + 1)."""


_PIECE, _END = 0, 1


class _Channel:
    """Items handed from the decode thread to one consumer, sync or async."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._items: collections.deque[tuple[int, Any]] = collections.deque()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def put(self, kind: int, value: Any) -> None:
        with self._lock:
            self._items.append((kind, value))
            self._ready.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
                loop.call_soon_threadsafe(_wake, future)

    def get(self) -> tuple[int, Any]:
        with self._lock:
            while not self._items:
                self._ready.wait()
            return self._items.popleft()

    async def aget(self) -> tuple[int, Any]:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            await future


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class SequenceStream:
    """One submitted request: iterate it (``for`` or ``async for``) for the text as it is
    generated, or call :meth:`result` for the whole answer.

    Read it once, from one consumer. Leaving the iteration early (``break``, ``close()``,
    a cancelled task) cancels the sequence, which frees its slot at the next step.
    """

    def __init__(
        self, engine: BatchedEngine, tokens: list[int], settings: SamplingSettings, max_tokens: int
    ) -> None:
        self.tokens = tokens
        """The prompt's token ids."""
        self.settings = settings
        """The sequence's generation settings."""
        self.max_tokens = max_tokens
        """Most tokens to generate (``settings.max_tokens`` resolved against the context)."""
        self._engine = engine
        self._channel = _Channel()
        self._cancelled = threading.Event()
        self._finished = threading.Event()
        self._read_end = False
        self._result: SequenceResult | None = None
        self._error: BaseException | None = None
        self.submitted_at = time.perf_counter()
        """When the request was submitted (``time.perf_counter()``)."""

    # --- consumer side ----------------------------------------------------------------

    def __iter__(self) -> Iterator[str]:
        try:
            while not self._read_end:
                kind, value = self._channel.get()
                if kind == _PIECE:
                    yield value
                else:
                    self._read_end = True
            self._raise_error()
        finally:
            if not self._finished.is_set():
                self.cancel()

    async def _aiter(self) -> AsyncIterator[str]:
        try:
            while not self._read_end:
                kind, value = await self._channel.aget()
                if kind == _PIECE:
                    yield value
                else:
                    self._read_end = True
            self._raise_error()
        finally:
            if not self._finished.is_set():
                self.cancel()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._aiter()

    def result(self) -> SequenceResult:
        """Wait for the end; the whole answer. Raises the sequence's error, if it failed."""
        for _ in self:
            pass
        assert self._result is not None
        return self._result

    async def aresult(self) -> SequenceResult:
        """:meth:`result` without blocking the event loop."""
        async for _ in self:
            pass
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        """Stop generating; the slot is freed at the next step. The text so far stays readable
        and :meth:`result` reports ``finish_reason="cancelled"``."""
        if not self._finished.is_set():
            self._cancelled.set()
            self._engine._wake()

    @property
    def done(self) -> bool:
        """True once the sequence has ended (finished, failed or cancelled)."""
        return self._finished.is_set()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # --- decode-thread side -------------------------------------------------------------

    def _emit(self, text: str) -> None:
        self._channel.put(_PIECE, text)

    def _finish(self, result: SequenceResult | None, error: BaseException | None = None) -> None:
        self._result, self._error = result, error
        self._finished.set()
        self._channel.put(_END, None)


class _Running:
    """The decode thread's state of one sequence holding a slot."""

    def __init__(self, stream: SequenceStream, slot: int, chain: Any, order: int) -> None:
        self.stream = stream
        self.slot = slot
        self.chain = chain
        self.order = order
        """Admission order: the oldest prompt gets its chunk first."""
        self.fed = 0
        """Prompt tokens already in the KV cache."""
        self.next_token: int | None = None
        """The last sampled token, to be decoded at the next step."""
        self.batch_index = -1
        """Where this sequence's logits are in the current batch (-1: none)."""
        self.ids: list[int] = []
        """The answer's tokens (passed on by the sequence's gate, if it has one)."""
        self.held: list[int] = []
        """Tokens sampled and decoded that the gate holds back (a character split over tokens)."""
        self.parts: list[str] = []
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self.scanner = StopScanner(stream.settings.stop)
        self.started: float | None = None
        self.first_token: float | None = None

    @property
    def completion(self) -> int:
        return len(self.ids)

    @property
    def position(self) -> int:
        """The position of :attr:`next_token` in the sequence."""
        return self.fed + len(self.ids) + len(self.held) - 1

    def emit(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.stream._emit(text)

    def timings(self, now: float) -> dict[str, Any]:
        start = self.started if self.started is not None else now
        first = self.first_token if self.first_token is not None else now
        # the first sampled token is timed with the prompt: generation times the rest
        return timings_info(
            self.fed,
            (first - start) * 1000.0,
            self.completion,
            (now - first) * 1000.0,
            predicted_rate_n=max(self.completion - 1, 0),
        )


class BatchedEngine:
    """Continuous batching of completions over one loaded ``llama_cpp.Llama``.

    Args:
        llm: The loaded model. The engine uses its weights, vocabulary and context settings
            (threads, rope, cache types) but decodes in a context of its own, so the
            ``Llama`` itself stays usable (behind its own lock) while the engine runs.
        n_parallel: Most sequences decoded together; more requests wait for a free slot.
        n_ctx: KV cells of the engine's context, shared out equally between the slots
            (default: the ``Llama``'s ``n_ctx``).
        step_tokens: Most prompt tokens a step reads while some sequence is generating (bounds
            how long a long prompt holds up the other streams at each step).
        step_lock: A lock held while each step computes: the loaded model's lock, so that the
            engine's steps and those of a call decoding alone on the ``Llama`` take turns
            instead of sharing the CPU cores (None: none).

    >>> engine = BatchedEngine(llama_cpp.Llama("model.gguf", n_ctx=4096))  # doctest: +SKIP
    >>> streams = [engine.submit(q, max_tokens=96, temperature=0) for q in questions]  # doctest: +SKIP
    >>> answers = [s.result().text for s in streams]  # doctest: +SKIP
    """

    def __init__(
        self,
        llm: Any,
        *,
        n_parallel: int = DEFAULT_N_PARALLEL,
        n_ctx: int | None = None,
        step_tokens: int = DEFAULT_STEP_TOKENS,
        step_lock: threading.Lock | None = None,
    ) -> None:
        llama_cpp = import_llama_cpp()
        max_seq = int(llama_cpp.llama_max_parallel_sequences())
        if not 1 <= n_parallel <= max_seq:
            raise InvalidParameterError(
                f"BatchedEngine: n_parallel={n_parallel}; it must be between 1 and {max_seq} "
                "(llama.cpp's limit of parallel sequences).",
                parameter="n_parallel",
            )
        if step_tokens < 1:
            raise InvalidParameterError(
                f"BatchedEngine: step_tokens={step_tokens}; a step must read at least 1 prompt token.",
                parameter="step_tokens",
            )
        self._llama_cpp = llama_cpp
        self._llm = llm  # kept: the context must not outlive the model's weights
        self.n_parallel = n_parallel
        self.model_name = Path(llm.model_path).stem
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        params.n_ctx = n_ctx or llm.n_ctx()
        params.n_seq_max = n_parallel
        params.kv_unified = False
        params.embeddings = False
        self.n_batch = int(params.n_batch)
        """Most prompt tokens of a step while nobody is generating: the ``Llama``'s, so that a
        prompt is read in the same pieces as ``create_completion`` reads it."""
        params.n_batch = max(self.n_batch, step_tokens + n_parallel)  # most tokens of any step
        self.step_tokens = step_tokens
        self._step_lock = step_lock
        ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not ctx:
            raise InvalidParameterError(
                f"BatchedEngine: llama.cpp could not create a context of {params.n_ctx} cells for "
                f"{n_parallel} sequences on {self.model_name} (out of memory?). Lower n_ctx or n_parallel.",
                parameter="n_ctx",
            )
        self._ctx = ctx
        adapter = getattr(llm, "_lora_adapter", None)
        if adapter is not None:  # the Llama's LoRA adapter applies to this context too
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(llm.lora_scale)
            if llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales):
                llama_cpp.llama_free(ctx)
                raise InvalidParameterError(
                    f"BatchedEngine: llama.cpp could not apply the LoRA adapter {llm.lora_path} "
                    "to the engine's context.",
                    parameter="lora_path",
                )
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = int(llama_cpp.llama_n_ctx(ctx))
        """KV cells in all (llama.cpp rounds each slot's share up to a multiple of 256)."""
        self.n_ctx_per_sequence = int(llama_cpp.llama_n_ctx_seq(ctx))
        """KV cells of one slot: a sequence's prompt plus its answer must fit here."""
        self._vocab = llm._model.vocab
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._penalty_last_n = int(getattr(llm, "last_n_tokens_size", 64))
        self._batch = llama_cpp.llama_batch_init(int(params.n_batch), 0, 1)
        self._piece = ctypes.create_string_buffer(256)

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._waiting: collections.deque[SequenceStream] = collections.deque()
        self._chains: dict[int, Any] = {}  # id(stream) -> sampler chain, until a slot takes it
        self._slots: list[_Running | None] = [None] * n_parallel
        self._admitted = 0
        self._closed = False
        self._failure: BaseException | None = None
        self._stats = EngineStats(kv_tokens=(0,) * n_parallel)
        self._thread = threading.Thread(target=self._run, name=f"llama-batch-{self.model_name}", daemon=True)
        self._thread.start()

    # --- callers ----------------------------------------------------------------------------

    def submit(self, prompt: str | Sequence[int], **settings: Any) -> SequenceStream:
        """Queue one completion; returns its stream at once (generation starts at a free slot).

        ``prompt`` is text (tokenized with BOS, special tokens parsed, as the LLM classes do)
        or token ids. ``settings`` are :class:`SamplingSettings`' fields.

        Raises:
            InvalidParameterError: an unknown setting, an empty prompt or a bad grammar.
            ContextLengthExceededError: the prompt plus ``max_tokens`` does not fit one
                sequence's share of the context (:attr:`n_ctx_per_sequence`).
            EngineClosedError: the engine was closed.
        """
        unknown = sorted(set(settings) - set(_SETTING_NAMES))
        if unknown:
            raise InvalidParameterError(
                f"BatchedEngine.submit: unknown setting(s) {unknown}; "
                f"the settings are {', '.join(_SETTING_NAMES)}.",
                parameter=unknown[0],
            )
        if isinstance(settings.get("stop"), str):
            settings["stop"] = (settings["stop"],)
        settings["stop"] = tuple(settings.get("stop") or ())
        config = SamplingSettings(**settings)
        tokens = (
            self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
            if isinstance(prompt, str)
            else [int(t) for t in prompt]
        )
        if not tokens:
            raise InvalidParameterError("BatchedEngine.submit: the prompt is empty.", parameter="prompt")
        room = self.n_ctx_per_sequence - len(tokens)
        max_tokens = config.max_tokens if config.max_tokens and config.max_tokens > 0 else room
        if max_tokens > room or room <= 0:
            raise ContextLengthExceededError(
                f"The prompt has {len(tokens)} tokens and max_tokens={config.max_tokens} asks for "
                f"{max_tokens} more, but one sequence of this batched engine holds "
                f"{self.n_ctx_per_sequence} (n_ctx={self.n_ctx} shared by n_parallel={self.n_parallel}). "
                "Shorten the prompt, lower max_tokens, or give the engine a larger n_ctx or a "
                "smaller n_parallel.",
                prompt_tokens=len(tokens),
                n_ctx=self.n_ctx_per_sequence,
                max_tokens=config.max_tokens,
            )
        stream = SequenceStream(self, tokens, config, max_tokens)
        chain = self._sampler_chain(stream.settings)
        with self._lock:
            if self._closed or self._failure is not None:
                self._llama_cpp.llama_sampler_free(chain)
                raise self._closed_error("")
            self._chains[id(stream)] = chain
            self._waiting.append(stream)
            self._work.notify()
        return stream

    def stats(self) -> EngineStats:
        """What the decode thread reported after its last step."""
        with self._lock:
            return replace(self._stats, waiting=len(self._waiting))

    def close(self) -> None:
        """Stop the decode thread and free the context; unfinished requests get
        :class:`EngineClosedError` (their text so far in ``partial_text``)."""
        with self._lock:
            if self._ctx is None:
                return
            self._closed = True
            self._work.notify()
        self._thread.join()
        ctx, self._ctx = self._ctx, None
        self._llama_cpp.llama_batch_free(self._batch)
        self._llama_cpp.llama_free(ctx)

    def __enter__(self) -> BatchedEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _wake(self) -> None:
        with self._lock:
            self._work.notify()

    def _closed_error(self, partial: str) -> LocalLLMError:
        if self._failure is not None:
            return EngineClosedError(
                f"BatchedEngine for {self.model_name} stopped after an internal error: {self._failure!r}.",
                partial_text=partial,
            )
        return EngineClosedError(
            f"BatchedEngine for {self.model_name} was closed; create a new engine to generate.",
            partial_text=partial,
        )

    def _sampler_chain(self, settings: SamplingSettings, narrowed: str | None = None) -> Any:
        """The sampler chain llama-cpp-python's ``Llama._init_sampler`` builds for these settings
        (or, once a gate ``narrowed`` the grammar, the one ``Llama.generate`` restarts with:
        the penalty's window and the seeded draw start afresh, as they do alone)."""
        llama_cpp = self._llama_cpp
        grammar = settings.grammar if narrowed is None else narrowed
        if narrowed is None and grammar is not None:
            check_grammar(self._llm, grammar)  # a bad grammar: a typed error, here
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

        def add(sampler: Any) -> None:
            llama_cpp.llama_sampler_chain_add(chain, sampler)

        add(
            llama_cpp.llama_sampler_init_penalties(
                self._n_vocab, self._penalty_last_n, settings.repeat_penalty, 0.0, 0.0
            )
        )
        if grammar is not None:
            add(llama_cpp.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root"))
        seed = llama_cpp.LLAMA_DEFAULT_SEED if settings.seed is None else settings.seed & 0xFFFFFFFF
        if settings.temperature < 0:
            add(llama_cpp.llama_sampler_init_dist(seed))
        elif settings.temperature == 0:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            add(llama_cpp.llama_sampler_init_top_k(settings.top_k))
            add(llama_cpp.llama_sampler_init_typical(1.0, 1))
            add(llama_cpp.llama_sampler_init_top_p(settings.top_p, 1))
            add(llama_cpp.llama_sampler_init_min_p(settings.min_p, 1))
            add(llama_cpp.llama_sampler_init_temp(settings.temperature))
            add(llama_cpp.llama_sampler_init_dist(seed))
        return chain

    # --- the decode thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._admit():
                self._step()
        except BaseException as error:  # reported to every request; the engine stops
            self._failure = error
        finally:
            with self._lock:
                self._closed = True
                waiting, self._waiting = list(self._waiting), collections.deque()
            for running in self._slots:
                if running is not None:
                    self._release(running, None, self._closed_error("".join(running.parts)))
            for stream in waiting:
                self._llama_cpp.llama_sampler_free(self._chains.pop(id(stream)))
                stream._finish(None, self._closed_error(""))

    def _admit(self) -> bool:
        """Drop cancelled requests, give free slots to waiting ones; wait while idle.
        False when the engine is closing."""
        now = time.perf_counter()
        for running in self._slots:
            if running is not None and running.stream._cancelled.is_set():
                self._finish(running, "cancelled", now)
        with self._lock:
            while True:
                if self._closed:
                    return False
                for stream in [s for s in self._waiting if s._cancelled.is_set()]:
                    self._waiting.remove(stream)
                    self._llama_cpp.llama_sampler_free(self._chains.pop(id(stream)))
                    stream._finish(SequenceResult("", "cancelled", len(stream.tokens), 0, {}, None))
                for slot, running in enumerate(self._slots):
                    if running is None and self._waiting:
                        stream = self._waiting.popleft()
                        self._admitted += 1
                        chain = self._chains.pop(id(stream))
                        self._slots[slot] = _Running(stream, slot, chain, self._admitted)
                if any(self._slots):
                    return True
                self._publish_stats_locked(0, 0)
                self._work.wait()

    def _step(self) -> None:
        """One ``llama_decode``: the last sampled token of every generating sequence and a chunk
        of the oldest unread prompt; then one token sampled for each sequence that has logits."""
        llama_cpp, batch = self._llama_cpp, self._batch
        active = [r for r in self._slots if r is not None]
        generating = sorted((r for r in active if r.next_token is not None), key=lambda r: r.slot)
        reading = min((r for r in active if r.next_token is None), key=lambda r: r.order, default=None)
        # llama.cpp cuts a batch over separate KV streams into ubatches of consecutive sequence
        # ids with equally many tokens each; the prompt goes between the generating sequences
        # above and below its slot, so that it is never cut into such slices (a prompt read in
        # other pieces than create_completion's gets other logits, see the module docstring).
        order = [r for r in generating if reading is None or r.slot > reading.slot]
        if reading is not None:
            order += [reading, *(r for r in generating if r.slot < reading.slot)]
        take = 0
        n = 0
        for running in order:
            if running.next_token is None:  # the prompt being read
                prompt = running.stream.tokens
                take = min(self.step_tokens if generating else self.n_batch, len(prompt) - running.fed)
                todo = prompt[running.fed : running.fed + take]
                start, last = running.fed, running.fed + take == len(prompt)
            else:
                todo, start, last = [running.next_token], running.position, True
            for i, token in enumerate(todo):
                batch.token[n] = token
                batch.pos[n] = start + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = running.slot
                batch.logits[n] = False
                n += 1
            running.batch_index = n - 1 if last else -1
            if last:
                batch.logits[n - 1] = True
        batch.n_tokens = n
        began = time.perf_counter()
        if reading is not None and reading.started is None:
            reading.started = began
        with self._step_lock if self._step_lock is not None else contextlib.nullcontext():
            code = llama_cpp.llama_decode(self._ctx, batch)
        if code != 0:
            for running in order:
                error = BatchDecodeError(
                    f"llama.cpp could not decode a batch of {n} tokens (llama_decode returned {code}).",
                    partial_text="".join(running.parts),
                    code=code,
                )
                self._release(running, None, error)
            self._publish_stats(n, len(order))
            return
        if reading is not None:
            reading.fed += take
        for running in order:
            if running.batch_index >= 0:
                self._sample(running)
        self._publish_stats(n, len(order))

    def _sample(self, running: _Running) -> None:
        """Sample the sequence's next token from its logits in the batch just decoded; with a
        gate, offer it first (a dropped token is resampled under the narrowed grammar)."""
        sample = self._llama_cpp.llama_sampler_sample
        token = sample(running.chain, self._ctx, running.batch_index)
        gate = running.stream.settings.gate
        if gate is None:
            self._accept(running, token, time.perf_counter())
            return
        try:
            verdict = gate.offer(token)
            while verdict.narrowed is not None:  # at most twice: the grammar narrows, then is cut
                if not self._narrow(running, verdict):
                    return  # held tokens taken back: resample after decoding the last kept one
                token = sample(running.chain, self._ctx, running.batch_index)
                verdict = gate.offer(token)
        except Exception as error:  # the gate's error is this sequence's alone
            self._release(running, None, error)
            return
        now = time.perf_counter()
        if verdict.passed or verdict.end:
            self._accept(running, token, now, verdict.passed, verdict.end)
        else:  # held: decoded at the next step, passed on with the token that completes it
            if running.first_token is None:
                running.first_token = now
            running.held.append(token)
            running.next_token = token

    def _narrow(self, running: _Running, verdict: Verdict) -> bool:
        """The gate dropped the sampled token: a sampler chain for the narrowed grammar. True:
        resample from the logits at hand; False: the held tokens were taken out of the KV
        cells, and the last kept token decodes again at the next step, for fresh logits."""
        chain = self._sampler_chain(running.stream.settings, verdict.narrowed)
        self._llama_cpp.llama_sampler_free(running.chain)
        running.chain = chain
        if not running.held:
            return True
        running.held.clear()
        if running.ids:
            start, running.next_token = running.fed + len(running.ids) - 1, running.ids[-1]
        else:  # nothing passed yet: read the prompt's last token again
            running.fed -= 1
            start, running.next_token = running.fed, None
        self._llama_cpp.llama_memory_seq_rm(self._memory, running.slot, start, -1)
        return False

    def _accept(
        self,
        running: _Running,
        token: int,
        now: float,
        passed: Sequence[int] | None = None,
        end: bool = False,
    ) -> None:
        """Take one sampled token: stream its text (with the held tokens it completes:
        ``passed``, from the gate; ``end``: the gate wrote the rest), or end the sequence."""
        if running.first_token is None:
            running.first_token = now
        if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
            running.emit(running.scanner.feed(running.decoder.decode(b"", final=True)))
            running.emit(running.scanner.flush())
            self._finish(running, "stop", now)
            return
        running.held.clear()
        for answer_token in passed or (token,):
            running.ids.append(answer_token)
            running.emit(running.scanner.feed(running.decoder.decode(self._token_bytes(answer_token))))
        if end:
            running.emit(running.scanner.feed(running.decoder.decode(b"", final=True)))
            running.emit(running.scanner.flush())
            self._finish(running, "stop", now)
        elif running.scanner.stopped:
            self._finish(running, "stop", now)
        elif running.completion >= running.stream.max_tokens:
            running.emit(running.scanner.feed(running.decoder.decode(b"", final=True)))
            running.emit(running.scanner.flush())
            self._finish(running, "stop" if running.scanner.stopped else "length", now)
        else:
            running.next_token = token

    def _token_bytes(self, token: int) -> bytes:
        llama_cpp, buffer = self._llama_cpp, self._piece
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        if n < 0:  # longer than the buffer: grow it once to the size llama.cpp asked for
            self._piece = buffer = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:n]

    def _finish(self, running: _Running, reason: str, now: float) -> None:
        result = SequenceResult(
            text="".join(running.parts),
            finish_reason=reason,
            prompt_tokens=len(running.stream.tokens),
            completion_tokens=running.completion,
            timings=running.timings(now),
            first_token_seconds=(
                running.first_token - running.stream.submitted_at if running.first_token is not None else None
            ),
            completion_ids=tuple(running.ids),
            model=self.model_name,
        )
        self._release(running, result)

    def _release(
        self, running: _Running, result: SequenceResult | None, error: BaseException | None = None
    ) -> None:
        """Free the sequence's slot, KV cells and sampler chain; hand the end to its consumer."""
        self._slots[running.slot] = None
        self._llama_cpp.llama_memory_seq_rm(self._memory, running.slot, -1, -1)
        self._llama_cpp.llama_sampler_free(running.chain)
        running.stream._finish(result, error)

    def _publish_stats(self, decoded: int, active: int) -> None:
        with self._lock:
            self._publish_stats_locked(decoded, active)

    def _publish_stats_locked(self, decoded: int, active: int) -> None:
        stats = self._stats
        seq_pos_max = self._llama_cpp.llama_memory_seq_pos_max
        self._stats = EngineStats(
            steps=stats.steps + (1 if decoded else 0),
            decoded_tokens=stats.decoded_tokens + decoded,
            active=sum(r is not None for r in self._slots),
            peak_active=max(stats.peak_active, active),
            kv_tokens=tuple(int(seq_pos_max(self._memory, s)) + 1 for s in range(self.n_parallel)),
        )
