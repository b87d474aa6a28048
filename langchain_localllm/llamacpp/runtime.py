"""llama-cpp-python in one place: loading through the shared cache, llama.cpp's log, grammar checks.

Used by the LLM and the embeddings. llama.cpp's log goes through llama.cpp's own log
callback (``llama_log_set``): it is printed only as llama-cpp-python's ``verbose`` asks,
and can be captured for error messages, without redirecting the process's stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from langchain_localllm._core.generation_info import timings_info
from langchain_localllm._core.gguf_file import read_gguf
from langchain_localllm._core.model_cache import MODEL_CACHE, LoadedModel
from langchain_localllm._core.native_output import native_stderr
from langchain_localllm.errors import InvalidModelFileError, InvalidParameterError, MissingDependencyError

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
    """llama.cpp's log callback: prints like llama-cpp-python's own (as its ``verbose`` says)
    and hands each line to the captures open at that moment."""

    #: ggml log levels -> logging levels (5 continues the previous line).
    _LEVELS = {0: logging.CRITICAL, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.DEBUG}

    def __init__(self) -> None:
        self._captures: list[list[str]] = []
        self._lock = threading.Lock()
        self._callback: Any = None
        self._last_level = logging.DEBUG

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
        py_level = self._LEVELS.get(level, self._last_level)
        self._last_level = py_level
        if logging.getLogger("llama-cpp-python").level <= py_level:  # llama-cpp-python's verbose
            print(message, end="", flush=True, file=sys.stderr)

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


class CompletionCounters:
    """What llama-cpp-python's completion stream does not report: how many tokens were
    sampled for the answer (end-of-generation excluded) and llama.cpp's own timings.

    Use as a context manager around one ``create_completion`` while holding the model's
    lock: it resets llama.cpp's perf counters and wraps the instance's ``generate``.
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.count = 0
        self._llama_cpp = import_llama_cpp()

    def __enter__(self) -> CompletionCounters:
        llm, llama_cpp = self.llm, self._llama_cpp
        generate = type(llm).generate.__get__(llm)
        vocab = llm._model.vocab

        def spy(*args: Any, **kwargs: Any) -> Iterator[int]:
            for token in generate(*args, **kwargs):
                if not llama_cpp.llama_vocab_is_eog(vocab, token):
                    self.count += 1
                yield token

        llama_cpp.llama_perf_context_reset(llm.ctx)
        llm.generate = spy
        return self

    def __exit__(self, *exc_info: object) -> None:
        del self.llm.generate

    def timings(self) -> dict[str, Any]:
        """llama.cpp's prompt and generation timings of the completion (``timings`` of generation_info)."""
        perf = self._llama_cpp.llama_perf_context(self.llm.ctx)
        return timings_info(perf.n_p_eval, perf.t_p_eval_ms, perf.n_eval, perf.t_eval_ms)


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
        with LLAMA_LOG.capture() as log:
            try:
                return llama_cpp.Llama(model_path=path, **kwargs)
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
