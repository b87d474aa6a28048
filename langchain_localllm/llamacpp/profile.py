"""``ChatLlamaCpp.profile``: read from the model file and the settings it is loaded with.

``max_input_tokens`` is the context llama.cpp loads the model with (``n_ctx`` as given,
rounded up to llama.cpp's multiple of 256; None: the file's own context length, at most
8192; 0: the file's own), read from the GGUF header without loading the weights;
``max_output_tokens`` is ``max_tokens`` (else the context). Forced tool calls and JSON
schemas are decoded under a grammar, so ``tool_choice`` and ``structured_output`` hold
for every model; ``reasoning_output`` is whether the chat template writes the reasoning
markers the answer is split at.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import ModelProfile

from langchain_localllm._core.base.profile import ProfileReader, inprocess_profile
from langchain_localllm._core.gguf.reader import read_gguf
from langchain_localllm.llamacpp.runtime import resolve_n_ctx

__all__ = ["LLAMACPP_PROFILE"]


def _read(chat: Any) -> ModelProfile:
    context = resolve_n_ctx(chat.model_path, chat.model_kwargs.get("n_ctx", chat.n_ctx))
    name = read_gguf(chat.model_path).name
    return inprocess_profile(chat, context=context, max_tokens=chat.max_tokens, constrained=True, name=name)


LLAMACPP_PROFILE = ProfileReader(
    inputs=("model_path", "n_ctx", "model_kwargs", "chat_format", "max_tokens"),
    read=_read,
)
"""The profile reader of ``ChatLlamaCpp``."""
