"""Loading gpt4all models through the shared cache, and their tokenizer (used by LLM and embeddings).

Every use of the gpt4all package, and of its private ``LLModel`` API, is here or in the
generation loop of :mod:`langchain_localllm.gpt4all.llms`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_localllm._core.gguf_file import read_gguf
from langchain_localllm._core.gguf_tokenizer import gguf_tokenizer
from langchain_localllm._core.model_cache import MODEL_CACHE, LoadedModel
from langchain_localllm._core.native_output import native_stderr
from langchain_localllm.errors import (
    InvalidModelFileError,
    MissingDependencyError,
    UnsupportedArchitectureError,
)
from langchain_localllm.gpt4all.architecture import gpt4all_version, unsupported_architecture

__all__ = ["DEFAULT_MODEL_DIR", "import_gpt4all", "load_gpt4all", "resolve_model_file", "token_ids"]

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
    (see :mod:`langchain_localllm._core.gguf_tokenizer`). Special tokens written in the
    text count as one token; no BOS is added.
    """
    return gguf_tokenizer(path).encode(text)
