"""What the gpt4all classes share: loading models through the shared cache, the generation
loop, and the tokenizer and special tokens read from the GGUF vocabulary.

Every use of the gpt4all package, and of its private ``LLModel`` API, is here. Nothing
here (nor anywhere under ``gpt4all/``) uses llama.cpp: the vocabulary is read from the
model file in pure Python.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base.timings import timings_info
from langchain_localllm._core.gguf.reader import read_gguf
from langchain_localllm._inprocess.model_cache import MODEL_CACHE, LoadedModel
from langchain_localllm._inprocess.native_output import native_stderr
from langchain_localllm.errors import (
    ContextLengthExceededError,
    InvalidModelFileError,
    LocalLLMError,
    MissingDependencyError,
    UnsupportedArchitectureError,
)
from langchain_localllm.gpt4all.architecture import gpt4all_version, unsupported_architecture
from langchain_localllm.gpt4all.stop_sequences import StopScanner
from langchain_localllm.gpt4all.tokenizer import gguf_tokenizer

__all__ = [
    "DEFAULT_MODEL_DIR",
    "eos_text",
    "generate_locked",
    "import_gpt4all",
    "load_gpt4all",
    "resolve_model_file",
    "token_ids",
]

#: Where the GPT4All desktop app and the gpt4all package keep models.
DEFAULT_MODEL_DIR = Path.home() / ".cache" / "gpt4all"


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


def resolve_model_file(model: str, model_path: str | os.PathLike[str] | None) -> Path:
    """``model`` as a file: a path as given, or a bare file name inside ``model_path``
    (default: gpt4all's own folder, ``~/.cache/gpt4all``)."""
    candidate = Path(model).expanduser()
    if candidate.is_absolute() or candidate.parent != Path(".") or candidate.exists():
        return candidate.resolve()
    return (Path(model_path).expanduser() if model_path else DEFAULT_MODEL_DIR) / candidate


def load_gpt4all(
    path: Path,
    *,
    n_ctx: int,
    device: str | None,
    ngl: int = 100,
    n_threads: int | None = None,
    allow_download: bool = False,
    verbose: bool = False,
) -> LoadedModel:
    """Load (once per process) a ``gpt4all.GPT4All`` for the file and load parameters.

    The file is checked first so a bad path gives a typed error. Once loaded, this is a
    dictionary lookup: it runs before every call into the model.
    """
    key = ("gpt4all", str(path), n_ctx, device, ngl, n_threads)
    loaded = MODEL_CACHE.peek(key)  # the hot path: every call into the model passes here
    if loaded is not None:
        return loaded
    if not (allow_download and not path.exists()):
        read_gguf(path)  # typed errors for missing, directory, GGML, truncated...

    def load() -> Any:
        gpt4all = import_gpt4all()
        try:
            with native_stderr(silence=not verbose):
                return gpt4all.GPT4All(
                    model_name=path.name,
                    model_path=str(path.parent),
                    allow_download=allow_download,
                    n_threads=n_threads,
                    device=device,
                    n_ctx=n_ctx,
                    ngl=ngl,
                    verbose=verbose,
                )
        except (ValueError, RuntimeError) as error:
            architecture = unsupported_architecture(str(error), path)
            if architecture is not None:
                raise UnsupportedArchitectureError(
                    f"gpt4all cannot run {path.name}: its architecture {architecture!r} is newer than "
                    f"this gpt4all ({gpt4all_version()}); gpt4all 2.8 predates it. Run the file with "
                    "LlamaCpp(model_path=...) instead (same arguments; `pip install "
                    "'langchain-localllm[llamacpp]'`).",
                    path=str(path),
                    architecture=architecture,
                ) from error
            raise InvalidModelFileError(
                f"gpt4all could not load {path}: {error}. The file may use an architecture this "
                "gpt4all version does not know (try LlamaCpp), or the device is unavailable "
                "(try device='cpu').",
                path=str(path),
            ) from error

    return MODEL_CACHE.get_or_load(key, load)


def token_ids(path: Path, text: str) -> list[int]:
    """Token ids of ``text`` by the model's own vocabulary, read from its GGUF file.

    gpt4all's API has no tokenizer, and loading llama.cpp for one would need another
    runtime: the vocabulary is read from the file (no weights) and applied in Python,
    the same as llama.cpp for SentencePiece vocabularies, close for byte-level BPE ones
    (see :mod:`langchain_localllm.gpt4all.tokenizer`). Special tokens written in the
    text count as one token; no BOS is added.
    """
    return gguf_tokenizer(path).encode(text)


def eos_text(path: Path) -> str:
    """The text of the model's end-of-sequence token, read from its GGUF vocabulary ("" if it
    has none): what chat templates close past assistant turns with."""
    return gguf_tokenizer(path).special_text("eos")


@dataclass
class _RunState:
    """What gpt4all's callbacks report during one generation."""

    halt: bool = False
    error: str = ""
    prompt_tokens: int = 0
    tokens: int = 0
    tail: str = ""
    """The last generated characters, as long as the longest stop sequence."""


def generate_locked(
    model: Any, prompt: str, args: dict[str, Any], stop: list[str], name: str
) -> Iterator[GenerationChunk]:
    """Stream one completion from a gpt4all model (its lock is held by the caller)."""
    scanner = StopScanner(stop)
    state = _RunState()
    longest = max(map(len, stop), default=0)

    def on_token(token_id: int, text: str) -> bool:
        if token_id == -1:  # gpt4all reports errors as a "token" with id -1
            state.error = text
            return False
        state.tokens += 1
        if longest:
            # gpt4all generates in a worker thread that runs ahead of the consumer: seeing the
            # stop sequence here ends generation after this token (which still reaches the
            # consumer, whose scanner cuts the text), not when the consumer gets there.
            window = state.tail + str(text)
            state.tail = window[-longest:]
            if any(s in window for s in stop):
                halt, state.halt = state.halt, True
                return not halt
        return not state.halt

    def on_prompt_token(_token_id: int) -> bool:
        state.prompt_tokens += 1
        return True

    llmodel = model.model
    llmodel._prompt_callback = on_prompt_token  # safe: the caller holds this model's lock
    started = time.perf_counter()
    first = None
    # What GPT4All.generate does without a chat session, plus special=True: prompts laid out
    # in a chat format hold special tokens (<|im_start|>, ...) that must not be split as text.
    sampling = {k: v for k, v in args.items() if k != "max_tokens"}
    pieces = llmodel.prompt_model_streaming(
        prompt, "%1", on_token, n_predict=args["max_tokens"], reset_context=True, special=True, **sampling
    )
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
