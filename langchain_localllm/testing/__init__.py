"""Helpers that make real, small models and servers for tests, demos and benchmarks.

Nothing here downloads anything: models are written with the ``gguf`` package.
"""

from langchain_localllm.testing.chat_templates import CHAT_TEMPLATES
from langchain_localllm.testing.tiny_model import PRESETS, TinyModelSpec, write_tiny_model

__all__ = ["CHAT_TEMPLATES", "PRESETS", "TinyModelSpec", "write_tiny_model"]
