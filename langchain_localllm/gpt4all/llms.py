"""GPT4All models in process, through the gpt4all package."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import GenerationChunk
from pydantic import model_validator

from langchain_localllm._core.base_llm import LocalLLM
from langchain_localllm._core.compat import Ignored
from langchain_localllm._core.derived import derived
from langchain_localllm._core.generation_info import timings_info
from langchain_localllm._core.gguf_file import read_gguf
from langchain_localllm._core.model_cache import LoadedModel
from langchain_localllm._core.stop_sequences import StopScanner
from langchain_localllm.errors import (
    ContextLengthExceededError,
    InvalidParameterError,
    LocalLLMError,
    UnsupportedParameterWarning,
)
from langchain_localllm.gpt4all.runtime import (
    DEFAULT_MODEL_DIR,
    import_gpt4all,
    load_gpt4all,
    resolve_model_file,
    token_ids,
)

__all__ = ["DEFAULT_MODEL_DIR", "GPT4All", "import_gpt4all"]

# Sampling arguments forwarded to ``gpt4all.GPT4All.generate`` (field name = argument name).
_SAMPLING = ("max_tokens", "temp", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "n_batch")


class GPT4All(LocalLLM):
    """GPT4All models running in this process, via the gpt4all package.

    A drop-in replacement for ``langchain_community.llms.GPT4All`` that really
    streams: tokens arrive as gpt4all produces them, stop sequences end
    generation at once (no partial stop string is ever emitted), ``max_tokens``
    is honoured, nothing is downloaded unless ``allow_download=True``, and
    instances of one model share one loaded copy behind a lock.

    Setup:
        ```bash
        pip install -U "langchain-localllm[gpt4all]"
        ```
        and a GGUF model file (e.g. from the GPT4All app's model folder).

    Key init args — model loading:
        model: str
            Path of the GGUF file, or its file name inside ``model_path``.
        model_path: str | None
            Folder holding the model (default: ``~/.cache/gpt4all``).
        n_ctx: int
            Context window (2048).
        device: str
            "cpu" (default), "gpu", "kompute", "cuda" or a GPU name.
        allow_download: bool
            Download a missing model from gpt4all.io (False: never).

    Key init args — generation:
        max_tokens, temp, top_k, top_p, min_p, repeat_penalty, repeat_last_n, n_batch, stop

    Instantiate:
        ```python
        from langchain_localllm import GPT4All

        llm = GPT4All(model="/models/orca-mini-3b-gguf2-q4_0.gguf", max_tokens=128)
        ```

    Invoke:
        ```python
        llm.invoke("The first man on the moon was")
        ```

    Stream:
        ```python
        for token in llm.stream("The first man on the moon was"):
            print(token, end="", flush=True)
        ```

    Async:
        ```python
        await llm.ainvoke("The first man on the moon was")
        async for token in llm.astream("The first man on the moon was"):
            print(token, end="", flush=True)
        ```

    gpt4all has no seed: passing one warns (``UnsupportedParameterWarning``);
    use ``temp=0`` for reproducible output.
    """

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

    streaming: bool = True
    """Kept for compatibility: this class always streams internally."""

    _peer_ignored: ClassVar[Mapping[str, Ignored]] = {
        "client": Ignored(None, "the model is loaded from model and shared through the model cache"),
        "backend": Ignored(None, "gpt4all detects the architecture from the file"),
        "n_parts": Ignored(-1, "gpt4all has no model parts"),
        "f16_kv": Ignored(False, "gpt4all chooses its KV cache type itself"),
        "logits_all": Ignored(False, "gpt4all does not return logits"),
        "vocab_only": Ignored(False, "gpt4all always loads the weights"),
        "use_mlock": Ignored(False, "gpt4all has no mlock setting"),
        "embedding": Ignored(False, "use GPT4AllEmbeddings for embeddings"),
        "echo": Ignored(False, "the answer never repeats the prompt"),
    }

    @model_validator(mode="after")
    def _compat(self) -> GPT4All:
        if self.seed not in (None, 0):  # 0: langchain-community's default, which did nothing either
            warnings.warn(
                "GPT4All: gpt4all has no seed parameter, so seed is ignored and sampling is not "
                "reproducible. Use temp=0 for deterministic output, or LlamaCpp(seed=...).",
                UnsupportedParameterWarning,
                stacklevel=2,
            )
        if self.n_predict is not None:
            self.max_tokens = self.n_predict
        return self

    # --- model ------------------------------------------------------------------------

    @derived("model", "model_path")
    def model_file(self) -> Path:
        """The resolved model file path."""
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
        return read_gguf(self.model_file).chat_template

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

    # --- generation --------------------------------------------------------------------

    def _call_args(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if "temperature" in kwargs:
            kwargs["temp"] = kwargs.pop("temperature")
        unknown = set(kwargs) - set(_SAMPLING)
        if unknown:
            raise InvalidParameterError(
                f"GPT4All: unknown call argument(s) {sorted(unknown)}; per call you can pass stop "
                f"and {', '.join(_SAMPLING)}.",
                parameter=sorted(unknown)[0],
            )
        return {name: kwargs.get(name, getattr(self, name)) for name in _SAMPLING}

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        args = self._call_args(kwargs)
        loaded = self.load()
        with loaded.lock:
            yield from _generate_locked(loaded.model, prompt, args, stop, self.model_name)

    # --- LangChain metadata --------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "gpt4all"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": str(self.model_file),
            "n_ctx": self.n_ctx,
            "device": self.device,
            **{name: getattr(self, name) for name in _SAMPLING},
            "stop": self.stop,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "gpt4all"
        params["ls_model_name"] = self.model_name
        params["ls_temperature"] = kwargs.get("temp", kwargs.get("temperature", self.temp))
        params["ls_max_tokens"] = kwargs.get("max_tokens", self.max_tokens)
        if stops := self._stop_sequences(stop):
            params["ls_stop"] = stops
        return params


@dataclass
class _RunState:
    """What gpt4all's callbacks report during one generation."""

    halt: bool = False
    error: str = ""
    prompt_tokens: int = 0
    tokens: int = 0


def _generate_locked(
    model: Any, prompt: str, args: dict[str, Any], stop: list[str], name: str
) -> Iterator[GenerationChunk]:
    """Stream one completion from a gpt4all model (its lock is held by the caller)."""
    scanner = StopScanner(stop)
    state = _RunState()

    def on_token(token_id: int, text: str) -> bool:
        if token_id == -1:  # gpt4all reports errors as a "token" with id -1
            state.error = text
            return False
        state.tokens += 1
        return not state.halt

    def on_prompt_token(_token_id: int) -> bool:
        state.prompt_tokens += 1
        return True

    llmodel = model.model
    llmodel._prompt_callback = on_prompt_token  # safe: the caller holds this model's lock
    started = time.perf_counter()
    first = None
    pieces = model.generate(prompt, streaming=True, callback=on_token, **args)
    try:
        for piece in pieces:
            first = first or time.perf_counter()
            text = scanner.feed(piece)
            if text:
                yield GenerationChunk(text=text)
            if scanner.stopped:
                break
    finally:
        state.halt = True
        for _ in pieces:  # let gpt4all's worker thread finish before the lock is released
            pass
        del llmodel._prompt_callback
    if state.error:
        raise _gpt4all_error(state.error, model, args)
    if tail := scanner.flush():
        yield GenerationChunk(text=tail)
    ended = time.perf_counter()
    completion, prompt_tokens = state.tokens, state.prompt_tokens
    first = first or ended
    finish = "length" if completion >= args["max_tokens"] and not scanner.stopped else "stop"
    prompt_ms, predicted_ms = (first - started) * 1000, (ended - first) * 1000
    yield GenerationChunk(
        text="",
        generation_info={
            "finish_reason": finish,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
            },
            "timings": timings_info(
                prompt_tokens, prompt_ms, completion, predicted_ms, predicted_rate_n=max(completion - 1, 0)
            ),
            "model": name,
        },
    )


def _gpt4all_error(message: str, model: Any, args: dict[str, Any]) -> LocalLLMError:
    n_ctx = getattr(model.model, "n_ctx", None)
    if "context window" in message:
        return ContextLengthExceededError(
            f"GPT4All: the prompt does not fit the context window (n_ctx={n_ctx}, "
            f"max_tokens={args['max_tokens']}); gpt4all said: {message!r}. Shorten the prompt or "
            "create the model with a larger n_ctx.",
            n_ctx=n_ctx,
            max_tokens=args["max_tokens"],
            prompt_tokens=None,
        )
    return LocalLLMError(f"GPT4All: gpt4all reported an error: {message}")
