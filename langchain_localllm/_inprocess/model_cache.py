"""One process-wide cache of loaded in-process models, each with its own lock.

Instances of ``LlamaCpp``, ``GPT4All`` and their embeddings classes that name the
same file with the same load parameters share one loaded model: constructing
them is cheap and the model loads once, on first use. The lock serialises calls
into the runtime, which is not safe to call from two threads at once; a generation
holds it one step at a time (:mod:`~langchain_localllm._inprocess.turns`).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_localllm._inprocess.turns import ModelTurns


@dataclass
class LoadedModel:
    """A model loaded by a runtime, and the lock that every call into it holds."""

    key: Hashable
    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    turns: ModelTurns = field(init=False, repr=False)
    """Which generation's state the model holds between its steps (they share :attr:`lock`)."""

    attached: dict[Hashable, Any] = field(default_factory=dict, repr=False)
    """Helpers living as long as the model (llama.cpp's batched engines, by ``n_parallel``):
    made on first use by :meth:`attach`, closed when the model leaves the cache."""
    generations: int = 0
    """Generations running on the model now (counted by the runtime that routes them)."""
    _attach_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.turns = ModelTurns(self.lock)

    def attach(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The helper kept under ``key``, made by ``make()`` the first time (once, under a lock)."""
        with self._attach_lock:
            helper = self.attached.get(key)
            if helper is None:
                helper = self.attached[key] = make()
            return helper

    @contextlib.contextmanager
    def generating(self) -> Iterator[int]:
        """Count one generation while the block runs; yields how many others were running."""
        with self._attach_lock:
            others = self.generations
            self.generations += 1
        try:
            yield others
        finally:
            with self._attach_lock:
                self.generations -= 1

    def close_attached(self) -> None:
        """Close every helper (``close()``; errors ignored), e.g. when the model is evicted."""
        with self._attach_lock:
            helpers, self.attached = list(self.attached.values()), {}
        for helper in helpers:
            close = getattr(helper, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()


class ModelCache:
    """Loaded models by key (runtime, resolved path, load parameters)."""

    def __init__(self) -> None:
        self._models: dict[Hashable, LoadedModel] = {}
        self._guard = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}
        self.loads = 0
        """How many times a model was actually loaded (for tests and benchmarks)."""

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> LoadedModel:
        """Return the cached model for ``key``, loading it with ``load()`` at most once."""
        with self._guard:
            loaded = self._models.get(key)
            if loaded is not None:
                return loaded
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # two first users of one model wait for one load
            with self._guard:
                loaded = self._models.get(key)
            if loaded is None:
                loaded = LoadedModel(key=key, model=load())
                with self._guard:
                    self._models[key] = loaded
                    self.loads += 1
                    self._loading.pop(key, None)
            return loaded

    def peek(self, key: Hashable) -> LoadedModel | None:
        """The cached model for ``key`` if loaded, without loading it."""
        with self._guard:
            return self._models.get(key)

    def evict(self, key: Hashable) -> bool:
        """Forget one model (it is freed once no instance uses it). True if it was cached."""
        with self._guard:
            loaded = self._models.pop(key, None)
        if loaded is None:
            return False
        loaded.close_attached()
        return True

    def clear(self) -> int:
        """Forget every model; returns how many there were."""
        with self._guard:
            models = list(self._models.values())
            self._models.clear()
        for loaded in models:
            loaded.close_attached()
        return len(models)

    def __len__(self) -> int:
        with self._guard:
            return len(self._models)


MODEL_CACHE = ModelCache()
"""The process-wide cache used by every in-process backend."""


@atexit.register
def _free_models_before_shutdown() -> None:
    # Native runtimes free their models in __del__; at interpreter teardown their
    # modules may already be gone, which prints tracebacks. Free them while all is alive.
    with MODEL_CACHE._guard:
        loaded_models = list(MODEL_CACHE._models.values())
        MODEL_CACHE._models.clear()
    for loaded in loaded_models:  # helpers first: they use the model
        loaded.close_attached()
    for model in (loaded.model for loaded in loaded_models):
        close = getattr(model, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


def clear_model_cache() -> int:
    """Free every cached in-process model; returns how many were cached."""
    return MODEL_CACHE.clear()
