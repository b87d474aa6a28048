"""``ChatGPT4All.profile``: read from the model file and the settings it is loaded with.

``max_input_tokens`` is ``n_ctx`` (gpt4all loads the model with exactly that);
``max_output_tokens`` is ``max_tokens``. gpt4all has no grammars, so a call cannot be
forced (``tool_choice``) nor an answer constrained to a schema (``structured_output``):
both are False, and asking for them is a typed error. Calls the model chooses to make are
parsed (``tool_calling``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import ModelProfile

from langchain_localllm._core.base.profile import ProfileReader, inprocess_profile
from langchain_localllm._core.gguf.reader import read_gguf

__all__ = ["GPT4ALL_PROFILE"]


def _read(chat: Any) -> ModelProfile:
    name = read_gguf(chat.model_file).name
    return inprocess_profile(
        chat, context=chat.n_ctx, max_tokens=chat.max_tokens, constrained=False, name=name
    )


GPT4ALL_PROFILE = ProfileReader(
    inputs=("model", "model_path", "n_ctx", "chat_format", "max_tokens"),
    read=_read,
)
"""The profile reader of ``ChatGPT4All``."""
