"""The embedded default: a generated demo model used when no ``--model`` is given.

It is a real llama-architecture GGUF (so llama.cpp and gpt4all run it for real)
with random weights: it streams tokens at a realistic pace but writes gibberish.
It is written once, in a second, under ``~/.cache/langchain-localllm/models/``.
"""

from __future__ import annotations

from pathlib import Path

from langchain_localllm.demo_models.cache import model_cache_dir

DEMO_FILE_NAME = "localllm-demo-small-llama2.gguf"
DEMO_LABEL = (
    "no --model given: using the built-in demo model (random weights, so the text is gibberish; "
    "the streaming is real). Use --model PATH.gguf (or an Ollama model with --backend ollama) for "
    "real answers; `localllm models` lists the models on this machine."
)


def demo_model_path() -> Path:
    """Where the generated fallback demo model lives (it may not be written yet)."""
    return model_cache_dir() / DEMO_FILE_NAME


def ensure_demo_model() -> Path:
    """Write the demo model if it is missing and return its path."""
    from langchain_localllm.demo_models import write_tiny_model

    return write_tiny_model(demo_model_path(), size="small", chat_format="llama2", name="localllm-demo")
