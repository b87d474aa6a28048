"""The settings the GPT4All classes share (``GPT4All``, ``ChatGPT4All``): model file,
loading and sampling fields, named as gpt4all names them, and the loaded model."""

from __future__ import annotations

import warnings
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, model_validator

from langchain_localllm._core.gguf_file import read_gguf
from langchain_localllm._core.model_cache import MODEL_CACHE, LoadedModel
from langchain_localllm._core.native_output import native_stderr
from langchain_localllm.errors import (
    InvalidModelFileError,
    InvalidParameterError,
    MissingDependencyError,
    UnsupportedParameterWarning,
)
from langchain_localllm.llamacpp.runtime import load_llama

#: Where the GPT4All desktop app and the gpt4all package keep models.
DEFAULT_MODEL_DIR = Path.home() / ".cache" / "gpt4all"

# Sampling arguments forwarded to ``gpt4all.GPT4All.generate`` (field name = argument name).
_SAMPLING = ("max_tokens", "temp", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "n_batch")


def import_gpt4all() -> Any:
    """Import gpt4all quietly (it prints CUDA probing to stderr), or say which extra installs it."""
    try:
        with native_stderr():
            import gpt4all
    except ImportError as error:
        raise MissingDependencyError(
            "gpt4all is not installed. Install it with `pip install 'langchain-localllm[gpt4all]'`.",
            package="gpt4all",
            extra="gpt4all",
        ) from error
    return gpt4all


class GPT4AllParams(BaseModel):
    """Model-file, loading and sampling fields of the GPT4All classes."""

    if TYPE_CHECKING:
        verbose: bool  # LangChain's field on the model classes

    model: str
    """Path of the GGUF model file, or its file name inside ``model_path``."""

    model_path: str | None = None
    """Folder that holds ``model`` when ``model`` is a bare file name."""

    allow_download: bool = False
    """Download a missing model from gpt4all.io. False (default): never contact the network."""

    device: str | None = "cpu"
    """Processing unit: "cpu", "gpu", "kompute", "cuda", "amd", "nvidia", "intel" or a GPU name."""

    n_ctx: int = 2048
    """Context window in tokens."""

    ngl: int = 100
    """Layers to offload when running on a GPU."""

    n_threads: int | None = None
    """CPU threads; None lets gpt4all choose."""

    max_tokens: int = 200
    """Most tokens to generate."""

    temp: float = 0.7
    """Sampling temperature; 0 is greedy."""

    top_k: int = 40
    """Sample from the k most likely tokens."""

    top_p: float = 0.4
    """Nucleus sampling probability mass."""

    min_p: float = 0.0
    """Drop tokens less likely than this fraction of the most likely one."""

    repeat_penalty: float = 1.18
    """Penalty for repeating recent tokens."""

    repeat_last_n: int = 64
    """How many recent tokens the repeat penalty looks at."""

    n_batch: int = 128
    """Prompt tokens processed per step (gpt4all's own default of 8 is slow)."""

    seed: int | None = None
    """Not supported by gpt4all: setting it warns. Use temp=0 for reproducible output."""

    n_predict: int | None = None
    """Old name of ``max_tokens``; when given it is used as ``max_tokens``."""

    backend: str | None = None
    """Kept for compatibility with old code; gpt4all detects the architecture itself."""

    streaming: bool = True
    """Kept for compatibility: this class always streams internally."""

    @model_validator(mode="after")
    def _compat(self) -> GPT4AllParams:
        if self.seed is not None:
            warnings.warn(
                f"{type(self).__name__}: gpt4all has no seed parameter, so seed is ignored and "
                "sampling is not reproducible. Use temp=0 for deterministic output, or LlamaCpp(seed=...).",
                UnsupportedParameterWarning,
                stacklevel=2,
            )
        if self.n_predict is not None:
            self.max_tokens = self.n_predict
        return self

    # --- model ------------------------------------------------------------------------

    @cached_property
    def model_file(self) -> Path:
        """The resolved model file path."""
        candidate = Path(self.model).expanduser()
        if candidate.is_absolute() or candidate.parent != Path(".") or candidate.exists():
            return candidate.resolve()
        return (Path(self.model_path).expanduser() if self.model_path else DEFAULT_MODEL_DIR) / candidate

    def load(self) -> LoadedModel:
        """Load the model now (it otherwise loads on first use); shared by equal instances."""
        path = self.model_file
        key = ("gpt4all", str(path), self.n_ctx, self.device, self.ngl, self.n_threads)
        loaded = MODEL_CACHE.peek(key)  # the hot path: every call into the model passes here
        if loaded is not None:
            return loaded
        if not (self.allow_download and not path.exists()):
            read_gguf(path)  # typed errors for missing, directory, GGML, truncated...
        return MODEL_CACHE.get_or_load(key, lambda: self._load(path))

    def _load(self, path: Path) -> Any:
        gpt4all = import_gpt4all()
        try:
            with native_stderr(silence=not self.verbose):
                return gpt4all.GPT4All(
                    model_name=path.name,
                    model_path=str(path.parent),
                    allow_download=self.allow_download,
                    n_threads=self.n_threads,
                    device=self.device,
                    n_ctx=self.n_ctx,
                    ngl=self.ngl,
                    verbose=self.verbose,
                )
        except (ValueError, RuntimeError) as error:
            raise InvalidModelFileError(
                f"gpt4all could not load {path}: {error}. The file may use an architecture this "
                "gpt4all version does not know (try LlamaCpp), or the device is unavailable "
                "(try device='cpu').",
                path=str(path),
            ) from error

    @property
    def client(self) -> Any:
        """The shared ``gpt4all.GPT4All`` (hold ``self.load().lock`` while calling it)."""
        return self.load().model

    @property
    def model_name(self) -> str:
        return self.model_file.stem

    def get_context_window(self) -> int:
        return self.n_ctx

    def chat_template(self) -> str | None:
        return read_gguf(self.model_file).chat_template

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` by the model's own vocabulary (no BOS).

        gpt4all's Python API has no tokenizer, so the GGUF's vocabulary is read with
        llama.cpp in vocab-only mode (no weights loaded; needs the ``llamacpp`` extra).
        """
        loaded = load_llama(self.model_file, vocab_only=True, verbose=self.verbose)
        with loaded.lock:
            return list(loaded.model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own vocabulary (see :meth:`get_token_ids`)."""
        return len(self.get_token_ids(text))

    def _call_args(self, kwargs: dict[str, Any], extra: tuple[str, ...] = ()) -> dict[str, Any]:
        """Sampling arguments for ``generate``; ``extra`` names per-call arguments the caller handles."""
        if "temperature" in kwargs:
            kwargs["temp"] = kwargs.pop("temperature")
        unknown = set(kwargs) - {*_SAMPLING, *extra}
        if unknown:
            raise InvalidParameterError(
                f"{type(self).__name__}: unknown call argument(s) {sorted(unknown)}; per call you can "
                f"pass stop and {', '.join((*_SAMPLING, *extra))}.",
                parameter=sorted(unknown)[0],
            )
        return {name: kwargs.get(name, getattr(self, name)) for name in _SAMPLING}

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": str(self.model_file),
            "n_ctx": self.n_ctx,
            "device": self.device,
            **{name: getattr(self, name) for name in _SAMPLING},
            "stop": getattr(self, "stop", None),
        }

    def _ls_sampling(self, stops: list[str], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The LangSmith parameters of a call: model name, temperature, max tokens, stops."""
        params: dict[str, Any] = {
            "ls_model_name": kwargs.get("model") or self.model_name,
            "ls_temperature": kwargs.get("temp", kwargs.get("temperature", self.temp)),
            "ls_max_tokens": kwargs.get("max_tokens", self.max_tokens),
        }
        if stops:
            params["ls_stop"] = stops
        return params
