"""The settings the GPT4All classes share (``GPT4All``, ``ChatGPT4All``): model file,
loading and sampling fields, named as gpt4all names them, and the loaded model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_localllm._core.base.derived import DerivedState, derived
from langchain_localllm._core.base.peers import Ignored, PeerArguments
from langchain_localllm._core.gguf.reader import read_gguf
from langchain_localllm._inprocess.model_cache import LoadedModel
from langchain_localllm.errors import InvalidParameterError
from langchain_localllm.gpt4all.runtime import load_gpt4all, resolve_model_file, token_ids

__all__ = ["GPT4AllParams"]

# Sampling arguments forwarded to ``gpt4all.GPT4All.generate`` (field name = argument name).
_SAMPLING = ("max_tokens", "temp", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "n_batch")


class GPT4AllParams(PeerArguments, DerivedState):
    """Model-file, loading and sampling fields of the GPT4All classes, and the peer arguments
    they share (langchain-community's ``GPT4All``'s ``seed`` and ``n_predict``)."""

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

    streaming: bool = True
    """Kept for compatibility: this class always streams internally."""

    _peer_renamed: ClassVar[Mapping[str, str]] = {"n_predict": "max_tokens"}
    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {
        # 0: langchain-community's default, which did nothing either.
        "seed": Ignored(
            0,
            "gpt4all has no seed parameter, so sampling is not reproducible; use temp=0 for "
            "deterministic output, or LlamaCpp(seed=...)",
        ),
    }

    # --- model ------------------------------------------------------------------------

    @derived("model", "model_path")
    def model_file(self) -> Path:
        """The resolved model file path (recomputed when ``model`` or ``model_path`` change)."""
        return resolve_model_file(self.model, self.model_path)

    def load(self) -> LoadedModel:
        """Load the model now (it otherwise loads on first use); shared by equal instances."""
        return load_gpt4all(
            self.model_file,
            n_ctx=self.n_ctx,
            device=self.device,
            ngl=self.ngl,
            n_threads=self.n_threads,
            allow_download=self.allow_download,
            verbose=self.verbose,
        )

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
        from langchain_localllm.prompts.template_source import sourced

        return sourced(read_gguf(self.model_file).chat_template, f"GGUF file {self.model_file}")

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` by the model's own vocabulary (no BOS).

        gpt4all's API has no tokenizer: the vocabulary is read from the GGUF file and applied
        in Python (no weights loaded, no other runtime). For SentencePiece vocabularies
        (Llama 2, Mistral, Gemma...) the ids equal llama.cpp's; for byte-level BPE ones
        (Llama 3, Qwen...) the count may differ by a token here and there.
        """
        return token_ids(self.model_file, text)

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
