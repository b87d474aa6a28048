"""llama-cpp-python in one place: what ``LlamaCpp``, ``ChatLlamaCpp`` and ``LlamaCppEmbeddings``
share. Loading through the shared cache, llama.cpp's log, grammar checks, and the generation
loop, :func:`stream_completion`: prompt tokens and :class:`CompletionSettings` in, text
pieces and the finish information out.

llama.cpp's log goes through llama.cpp's own log callback (``llama_log_set``): it is
printed exactly when the model's ``verbose`` asks, and can be captured for error
messages, without redirecting the process's stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from langchain_localllm._core.base.threads import current_cancel_token
from langchain_localllm._core.base.timings import timings_info
from langchain_localllm._core.gguf.reader import read_gguf
from langchain_localllm._inprocess.model_cache import MODEL_CACHE, LoadedModel
from langchain_localllm._inprocess.native_output import native_stderr
from langchain_localllm._inprocess.turns import Cancelled, Turn
from langchain_localllm.errors import (
    ContextLengthExceededError,
    InvalidModelFileError,
    InvalidParameterError,
    MissingDependencyError,
)

if TYPE_CHECKING:
    from langchain_localllm.llamacpp.budgeted import TokenBudget

#: Context length used when the caller gives none: the model's own, at most this.
DEFAULT_MAX_N_CTX = 8192


def import_llama_cpp() -> ModuleType:
    """Import llama_cpp, its log routed through :class:`LlamaLog`; or say which extra installs it."""
    try:
        import llama_cpp
    except ImportError as error:
        raise MissingDependencyError(
            "llama-cpp-python is not installed. Install it with "
            "`pip install 'langchain-localllm[llamacpp]'` (it compiles llama.cpp, a few minutes).",
            package="llama-cpp-python",
            extra="llamacpp",
        ) from error
    LLAMA_LOG.install(llama_cpp)
    return llama_cpp


class LlamaLog:
    """llama.cpp's log callback: prints a line when the model it comes from is ``verbose``,
    and hands each line to the captures open at that moment.

    Which model a line comes from is known by thread: loading a model, and each call's
    turn on a model, set the thread's verbosity (:meth:`verbosity`, :meth:`set_thread_verbose`).
    A line logged outside them (llama.cpp used directly) follows llama-cpp-python's
    ``verbose`` (the level of its ``llama-cpp-python`` logger).
    """

    #: ggml's log levels (``enum ggml_log_level`` in ggml.h: NONE, DEBUG, INFO, WARN, ERROR;
    #: 5 continues the previous line) -> logging levels. llama-cpp-python's own callback
    #: still numbers them as an older ggml did (INFO=1, WARN=2, ERROR=3, DEBUG=4), so it
    #: prints llama.cpp's warnings at verbose=False (Gemma 3's "using full-size SWA cache"
    #: on every load) and hides its errors: that callback is replaced by this one.
    _LEVELS = {0: logging.CRITICAL, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
    _CONTINUE = 5

    def __init__(self) -> None:
        self._captures: list[list[str]] = []
        self._lock = threading.Lock()
        self._callback: Any = None
        self._local = threading.local()
        self._printed_last = False

    def install(self, llama_cpp: Any) -> None:
        """Make this the log callback of llama.cpp (once per process)."""
        if self._callback is not None:
            return
        with self._lock:
            if self._callback is None:
                callback = llama_cpp.llama_log_callback(self._on_log)
                llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
                self._callback = callback  # kept alive: llama.cpp holds a raw pointer to it

    def _on_log(self, level: int, text: bytes, _user_data: Any) -> None:
        message = text.decode("utf-8", errors="replace")
        for capture in list(self._captures):
            capture.append(message)
        if level == self._CONTINUE:
            show = self._printed_last
        else:
            verbose = getattr(self._local, "verbose", None)
            if verbose is None:  # not one of our calls: llama-cpp-python's verbose decides
                threshold = logging.getLogger("llama-cpp-python").level
                verbose = threshold <= self._LEVELS.get(level, logging.ERROR)
            show = self._printed_last = verbose
        if show:
            print(message, end="", flush=True, file=sys.stderr)

    def set_thread_verbose(self, verbose: bool | None) -> None:
        """Print (True) or not (False) what llama.cpp logs from this thread from now on;
        None: as llama-cpp-python's ``verbose`` says."""
        self._local.verbose = verbose

    @contextlib.contextmanager
    def verbosity(self, verbose: bool) -> Iterator[None]:
        """Print llama.cpp's log from this thread exactly when ``verbose`` while the block runs."""
        before = getattr(self._local, "verbose", None)
        self._local.verbose = verbose
        try:
            yield
        finally:
            self._local.verbose = before

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Collect what llama.cpp logs while the block runs (from any thread)."""
        lines: list[str] = []
        with self._lock:
            self._captures.append(lines)
        try:
            yield lines
        finally:
            with self._lock:
                self._captures.remove(lines)


LLAMA_LOG = LlamaLog()
"""The process's llama.cpp log callback."""


def check_grammar(model: Any, gbnf: str) -> None:
    """Parse ``gbnf`` with llama.cpp for ``model``'s vocabulary, so a bad grammar is a typed error.

    llama.cpp's grammar parser writes the reason of a syntax error with ``fprintf(stderr)``,
    not through its log callback, so this one call has its stderr captured: it takes
    microseconds and runs once per grammar and model.
    """
    llama_cpp = import_llama_cpp()
    key = (id(model), gbnf)
    if key in _CHECKED:
        return
    with native_stderr(silence=not model.verbose) as err, LLAMA_LOG.capture() as log:
        sampler = llama_cpp.llama_sampler_init_grammar(model._model.vocab, gbnf.encode("utf-8"), b"root")
    if not sampler:
        detail = " ".join((err.text + "".join(log)).split())
        raise InvalidParameterError(
            f"LlamaCpp: llama.cpp could not parse the grammar{': ' + detail if detail else ''}. "
            "See llama.cpp's GBNF guide (grammars/README.md; the start rule must be named `root`), "
            "or pass a JSON schema instead.",
            parameter="grammar",
        )
    llama_cpp.llama_sampler_free(sampler)
    if len(_CHECKED) > 256:
        _CHECKED.clear()
    _CHECKED.add(key)


_CHECKED: set[tuple[int, str]] = set()


def resolve_n_ctx(model_path: str | os.PathLike[str], n_ctx: int | None) -> int:
    """The context length to load with: the caller's, else the model file's.

    ``0`` means the model's full training context; ``None`` the same, capped at
    :data:`DEFAULT_MAX_N_CTX` so a 128k-context model does not allocate a
    many-GB KV cache by default.
    """
    if n_ctx:
        # llama.cpp pads the context to a multiple of 256 anyway; asking for exactly that
        # keeps llama-cpp-python's own buffers the same size (it breaks below 256).
        return -(-n_ctx // _CTX_PAD) * _CTX_PAD
    trained = read_gguf(model_path).context_length or 512
    return trained if n_ctx == 0 else min(trained, DEFAULT_MAX_N_CTX)


_CTX_PAD = 256


def load_llama(model_path: str | os.PathLike[str], **load_kwargs: Any) -> LoadedModel:
    """Load (once per process) a ``llama_cpp.Llama`` for the file and load parameters.

    ``load_kwargs`` go to ``llama_cpp.Llama``; ``None`` values are dropped so that
    llama.cpp takes them from the model file (rope settings, ...). The file is
    checked first so a bad path gives a typed error, not a native failure. Once
    loaded, this is a dictionary lookup: it runs before every call into the model.
    """
    path = os.path.abspath(os.path.expanduser(model_path))
    kwargs = {k: v for k, v in load_kwargs.items() if v is not None}
    key = ("llama_cpp", path, tuple(sorted((k, _hashable(v)) for k, v in kwargs.items())))
    loaded = MODEL_CACHE.peek(key)
    if loaded is not None:
        return loaded
    info = read_gguf(path)

    def load() -> Any:
        llama_cpp = import_llama_cpp()
        with LLAMA_LOG.capture() as log, LLAMA_LOG.verbosity(bool(kwargs.get("verbose", True))):
            try:
                return _quiet_llama_class(llama_cpp)(model_path=path, **kwargs)
            except (ValueError, RuntimeError) as error:
                said = [line.strip() for line in log if "error" in line.lower() or "failed" in line.lower()]
                detail = f" llama.cpp said: {' / '.join(said[-3:])}." if said else ""
                raise InvalidModelFileError(
                    f"llama.cpp could not load {path} (architecture {info.architecture!r}): {error}.{detail} "
                    "The file may need a newer llama-cpp-python (`pip install -U llama-cpp-python`), "
                    "or the load parameters do not fit the model (verbose=True shows llama.cpp's log).",
                    path=path,
                ) from error

    return MODEL_CACHE.get_or_load(key, load)


@functools.cache
def _quiet_llama_class(llama_cpp: ModuleType) -> type:
    """``llama_cpp.Llama`` whose ``close`` (which its ``__del__`` and the cache's exit hook
    run) logs as its ``verbose`` says: freeing a model logs its buffers."""

    class Llama(llama_cpp.Llama):  # type: ignore[name-defined]
        def close(self) -> None:
            with LLAMA_LOG.verbosity(bool(getattr(self, "verbose", True))):
                super().close()

    return Llama


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


class LlamaModelUser:
    """``load()``, ``client`` and ``model_name`` for classes with ``model_path`` and ``_load_kwargs``.

    Shared by :class:`~langchain_localllm.LlamaCpp` and
    :class:`~langchain_localllm.LlamaCppEmbeddings`: both go through the process-wide cache.
    """

    if TYPE_CHECKING:
        model_path: str

        @property
        def _load_kwargs(self) -> dict[str, Any]: ...

    def load(self) -> LoadedModel:
        """Load the model now (it otherwise loads on first use); shared by equal instances."""
        return load_llama(self.model_path, **self._load_kwargs)

    @property
    def client(self) -> Any:
        """The shared ``llama_cpp.Llama`` (hold ``self.load().lock`` while calling it)."""
        return self.load().model

    @property
    def model_name(self) -> str:
        """The model file's name without extension."""
        return Path(self.model_path).stem


def use_state_cache(model: Any, capacity_bytes: int) -> None:
    """Keep the model's state after each completion, keyed by its tokens (llama-cpp-python's
    ``LlamaRAMCache``), so a prompt that extends a saved conversation resumes from it.

    Only sets Python attributes (a completion reads ``model.cache`` at its start and end):
    needs no lock.

    The cache is the loaded model's: every class using the model benefits. Its memory is
    bounded by the largest ``capacity_bytes`` asked for (oldest states dropped first).
    """
    if capacity_bytes <= 0:
        return
    cache = getattr(model, "cache", None)
    if cache is None:
        model.set_cache(import_llama_cpp().LlamaRAMCache(capacity_bytes=capacity_bytes))
    elif getattr(cache, "capacity_bytes", capacity_bytes) < capacity_bytes:
        cache.capacity_bytes = capacity_bytes


# --- the generation loop -------------------------------------------------------------------

#: A grammar as the settings carry it: its GBNF source and llama-cpp-python's compiled grammar.
Grammar = tuple[str, Any]


@dataclass(frozen=True)
class CompletionSettings:
    """Everything one completion needs besides its prompt tokens."""

    sampling: Mapping[str, Any]
    """Sampling arguments as ``Llama.create_completion`` names them (``temperature``,
    ``top_p``, ``top_k``, ``min_p``, ``repeat_penalty``, ``seed``)."""
    max_tokens: int = -1
    """Most tokens to generate; -1: until the context is full."""
    stop: Sequence[str] = ()
    """Generation ends at the first of these strings (not returned)."""
    grammar: Grammar | None = None
    """A grammar the answer must follow."""
    suffix: str | None = None
    """Text that follows the completion (fill-in-the-middle models)."""
    budget: TokenBudget | None = None
    """Budget-aware decoding (``llamacpp.budgeted``): the answer follows its grammar and is
    valid within ``max_tokens`` (or what the context leaves), or a typed error is raised
    before any token. It replaces ``grammar`` and ``stop``; one per call."""


#: What :func:`stream_completion` yields: ``(text, None)`` pieces, then ``("", info)`` with
#: ``finish_reason``, ``usage`` (prompt/completion/total tokens), ``timings`` and ``model``.
Piece = tuple[str, "dict[str, Any] | None"]


def stream_completion(
    loaded: LoadedModel, tokens: list[int], settings: CompletionSettings
) -> Iterator[Piece]:
    """Stream one completion of ``tokens`` (BOS included when the model wants one).

    The model's lock is held only while a step runs (the prompt's evaluation, then each
    token): a stream kept half read lets other calls use the model, and goes on where it
    stopped when read again (``_core.model_turns``). A call cancelled by its consumer stops
    at once, also in the middle of evaluating a long prompt (llama.cpp's abort callback).
    Nothing is added per token but taking and releasing that lock.
    """
    llm = loaded.model
    if settings.grammar is not None and settings.budget is None:
        check_grammar(llm, settings.grammar[0])  # reads only the vocabulary, like tokenizing
    n_ctx = llm.n_ctx()
    prompt_tokens = len(tokens)
    if prompt_tokens >= n_ctx:
        raise ContextLengthExceededError(
            f"The prompt has {prompt_tokens} tokens but the context window (n_ctx) is {n_ctx}, "
            f"with max_tokens={settings.max_tokens} asked for the answer. Shorten the prompt, or load the "
            "model with a larger n_ctx (0 uses the model's full context length).",
            prompt_tokens=prompt_tokens,
            n_ctx=n_ctx,
            max_tokens=settings.max_tokens,
        )
    max_tokens, stop, grammar = settings.max_tokens, list(settings.stop), settings.grammar
    budget = settings.budget
    if budget is not None:  # the typed error before any token; the grammar ends the answer
        max_tokens, grammar = budget.prepare(llm, prompt_tokens, settings.max_tokens)
        stop = []
    completion = _Completion(llm, budget)
    turn = loaded.turns.turn(completion.suspend, cancel=current_cancel_token(), on_take=completion.on_take)
    parts: Generator[dict[str, Any], None, None] | None = None
    finish_reason = "length"
    try:
        turn.enter()
        try:
            completion.start()
            parts = llm.create_completion(
                tokens,
                stream=True,
                max_tokens=max_tokens,
                stop=stop,
                grammar=grammar[1] if grammar is not None else None,
                suffix=settings.suffix,
                **settings.sampling,
            )
            part = completion.step(parts, turn)
        finally:
            llm.__dict__.pop("generate", None)  # create_completion holds the counting generator now
            turn.leave()
        while part is not None:
            choice = part["choices"][0]
            if choice["text"]:
                yield choice["text"], None
            finish_reason = choice.get("finish_reason") or finish_reason
            turn.enter()
            try:
                part = completion.step(parts, turn)
            finally:
                turn.leave()
    finally:
        if parts is not None:
            parts.close()  # runs no native code: safe without the lock
        turn.close()
        completion.close()
    count = completion.count
    info: dict[str, Any] = {
        "finish_reason": finish_reason,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": count,
            "total_tokens": prompt_tokens + count,
        },
        "timings": completion.timings,
        "model": Path(llm.model_path).stem,
    }
    if budget is not None:
        budget.finish(info)  # its finish reason ("stop": a whole document) and budget_narrowed
    yield "", info


class _Completion:
    """One completion's bookkeeping on a ``llama_cpp.Llama``: what llama-cpp-python's stream
    does not report (the tokens sampled for the answer, end-of-generation excluded, and
    llama.cpp's timings), and its state while another call has the model."""

    def __init__(self, llm: Any, budget: TokenBudget | None = None) -> None:
        self.llm = llm
        self.budget = budget
        self.count = 0
        self.timings: dict[str, Any] = {}
        self._llama_cpp = import_llama_cpp()
        # llama.cpp's counters before the last suspension: prompt ms, prompt tokens, generation ms, tokens
        self._perf = [0.0, 0.0, 0.0, 0.0]
        self._abort = _AbortSwitch.of(llm, self._llama_cpp)
        self._remove_trip: Callable[[], None] | None = None

    def start(self) -> None:
        """Before the first step: reset llama.cpp's counters, count what ``generate`` yields."""
        llm, llama_cpp = self.llm, self._llama_cpp
        generate = type(llm).generate.__get__(llm)
        if self.budget is not None:  # tokens pass only once they fit the budget
            generate = self.budget.wrap(llm, generate)
        vocab = llm._model.vocab

        def counting(*args: Any, **kwargs: Any) -> Iterator[int]:
            for token in generate(*args, **kwargs):
                if not llama_cpp.llama_vocab_is_eog(vocab, token):
                    self.count += 1
                yield token

        llama_cpp.llama_perf_context_reset(llm.ctx)
        llm.generate = counting  # create_completion calls it in its first step

    def step(self, parts: Iterator[dict[str, Any]], turn: Turn) -> dict[str, Any] | None:
        """The next part of the completion (None at its end); the caller holds the model."""
        try:
            part = next(parts, None)
        except RuntimeError as error:  # llama_decode returned 2: aborted by the cancel token
            if turn.cancelled:
                raise Cancelled("the call was cancelled during evaluation") from error
            raise
        if part is None:
            self.timings = self._read_timings()
        return part

    def on_take(self, turn: Turn) -> None:
        """Each time the call gets the model: its verbosity and cancellation apply."""
        LLAMA_LOG.set_thread_verbose(bool(self.llm.verbose))
        if turn.cancel is not None and self._remove_trip is None:
            self._remove_trip = turn.cancel.on_cancel(lambda: self._abort.trip(turn))
        self._abort.arm(turn if turn.cancel is not None else None)

    def suspend(self) -> Callable[[], None]:
        """Another call takes the model: save this call's state; return what restores it."""
        llm, llama_cpp = self.llm, self._llama_cpp
        perf = llama_cpp.llama_perf_context(llm.ctx)
        self._perf = [
            self._perf[0] + perf.t_p_eval_ms,
            self._perf[1] + perf.n_p_eval,
            self._perf[2] + perf.t_eval_ms,
            self._perf[3] + perf.n_eval,
        ]
        size = llama_cpp.llama_state_get_size(llm.ctx)
        state = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(llm.ctx, state, size)
        n_tokens = llm.n_tokens
        input_ids = llm.input_ids[:n_tokens].copy()
        scores = llm.scores[:n_tokens].copy() if llm._logits_all else None
        sampler, seed, mu = llm._sampler, llm._seed, llm._mirostat_mu

        def restore() -> None:
            if llama_cpp.llama_state_set_data(llm.ctx, state, written) != written:
                raise RuntimeError("llama.cpp could not restore a suspended completion's state")
            llm.input_ids[:n_tokens] = input_ids
            if scores is not None:
                llm.scores[:n_tokens] = scores
            llm.n_tokens = n_tokens
            llm._requires_eval = True
            llm._sampler, llm._seed, llm._mirostat_mu = sampler, seed, mu
            llama_cpp.llama_perf_context_reset(llm.ctx)

        return restore

    def close(self) -> None:
        if self._remove_trip is not None:
            self._remove_trip()
        LLAMA_LOG.set_thread_verbose(None)

    def _read_timings(self) -> dict[str, Any]:
        perf = self._llama_cpp.llama_perf_context(self.llm.ctx)
        prompt_ms, prompt_n, eval_ms, eval_n = self._perf
        return timings_info(
            int(prompt_n + perf.n_p_eval),
            prompt_ms + perf.t_p_eval_ms,
            int(eval_n + perf.n_eval),
            eval_ms + perf.t_eval_ms,
        )


class _AbortSwitch:
    """llama.cpp's abort callback for one context, read in native code.

    ggml calls the callback after every node of every graph it computes (hundreds per
    token), from its compute thread: a Python callback would take the GIL each time.
    This one is libc's ``strlen`` over a two-byte buffer ``[flag, NUL]``, which returns
    exactly 0 or 1, the ``bool`` llama.cpp expects: the flag is read natively, at the cost
    of a few nanoseconds. It is installed only while a cancellable call has the model; a
    synchronous call computes without it.
    """

    def __init__(self, llama_cpp: Any, ctx: Any) -> None:
        self._llama_cpp = llama_cpp
        self._ctx = ctx
        self._flag = ctypes.create_string_buffer(2)
        self._callback = llama_cpp.ggml_abort_callback(_strlen_address())
        self._off = llama_cpp.ggml_abort_callback()  # NULL: no callback
        self._lock = threading.Lock()
        self._armed_for: Turn | None = None
        self._installed = False

    @classmethod
    def of(cls, llm: Any, llama_cpp: Any) -> _AbortSwitch:
        """The switch of ``llm``'s context (made once, lives as long as the model)."""
        switch = llm.__dict__.get("_localllm_abort")
        if switch is None:
            switch = llm._localllm_abort = cls(llama_cpp, llm.ctx)
        return switch

    def arm(self, turn: Turn | None) -> None:
        """Under the model's lock: abort for ``turn``'s cancellation from now on (None: never)."""
        with self._lock:
            self._armed_for = turn
            self._flag[0] = b"\x01" if turn is not None and turn.cancelled else b"\x00"
        if (turn is not None) != self._installed:
            self._installed = turn is not None
            callback = self._callback if self._installed else self._off
            data = ctypes.cast(self._flag, ctypes.c_void_p) if self._installed else None
            self._llama_cpp.llama_set_abort_callback(self._ctx, callback, data)

    def trip(self, turn: Turn) -> None:
        """``turn`` was cancelled: stop its computation if it is the one armed."""
        with self._lock:
            if self._armed_for is turn:
                self._flag[0] = b"\x01"


def _strlen_address() -> int:
    libc = ctypes.cdll.msvcrt if os.name == "nt" else ctypes.CDLL(None)
    return int(ctypes.cast(libc.strlen, ctypes.c_void_p).value or 0)
