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
from collections.abc import Callable, Hashable
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

    def __post_init__(self) -> None:
        self.turns = ModelTurns(self.lock)


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
            return self._models.pop(key, None) is not None

    def clear(self) -> int:
        """Forget every model; returns how many there were."""
        with self._guard:
            count = len(self._models)
            self._models.clear()
            return count

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
        models = [loaded.model for loaded in MODEL_CACHE._models.values()]
        MODEL_CACHE._models.clear()
    for model in models:
        close = getattr(model, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


def clear_model_cache() -> int:
    """Free every cached in-process model; returns how many were cached."""
    return MODEL_CACHE.clear()
