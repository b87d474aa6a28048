"""Loading llama-cpp-python models through the shared cache (used by LLM and embeddings)."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from langchain_localllm._core.gguf_file import read_gguf
from langchain_localllm._core.model_cache import MODEL_CACHE, LoadedModel
from langchain_localllm._core.native_output import native_stderr
from langchain_localllm.errors import InvalidModelFileError, MissingDependencyError

#: Context length used when the caller gives none: the model's own, at most this.
DEFAULT_MAX_N_CTX = 8192


def import_llama_cpp() -> ModuleType:
    """Import llama_cpp, or say which extra installs it."""
    try:
        import llama_cpp
    except ImportError as error:
        raise MissingDependencyError(
            "llama-cpp-python is not installed. Install it with "
            "`pip install 'langchain-localllm[llamacpp]'` (it compiles llama.cpp, a few minutes).",
            package="llama-cpp-python",
            extra="llamacpp",
        ) from error
    return llama_cpp


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
        try:
            with native_stderr(silence=not kwargs.get("verbose", False)):
                return llama_cpp.Llama(model_path=path, **kwargs)
        except (ValueError, RuntimeError) as error:
            raise InvalidModelFileError(
                f"llama.cpp could not load {path} (architecture {info.architecture!r}): {error}. "
                "The file may need a newer llama-cpp-python (`pip install -U llama-cpp-python`), "
                "or the load parameters do not fit the model (run with verbose=True to see llama.cpp's log).",
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
