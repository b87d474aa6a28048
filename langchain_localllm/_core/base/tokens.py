"""Counting tokens for any model or embeddings: its own tokenizer where it has one, else one estimate.

LangChain's default ``BaseLanguageModel.get_num_tokens`` fetches GPT-2's tokenizer from the
internet, which must never happen here, so it is never used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseLanguageModel

__all__ = ["approximate_tokens", "has_own_tokenizer", "token_counter", "unwrap_runnable"]


def unwrap_runnable(model: Any) -> Any:
    """The model inside ``model.bind(...)`` / ``with_config(...)`` wrappers (``RunnableBinding``)."""
    for _ in range(10):
        if not hasattr(model, "bound"):
            break
        model = model.bound
    return model


def approximate_tokens(text: str) -> int:
    """About three characters per token (English runs 3.5-4 with Llama and WordPiece
    vocabularies, so this errs on the safe side): for models without a tokenizer at hand."""
    return (len(text) + 2) // 3


def has_own_tokenizer(model: Any) -> bool:
    """Whether ``model`` counts tokens with its own tokenizer, locally and cheaply.

    A class says no with ``counts_tokens_locally = False`` (``Ollama``: counting there runs
    the model on the text); a LangChain model says yes by overriding ``get_num_tokens``
    or ``get_token_ids`` (or with ``custom_get_token_ids``); other objects (embeddings) by
    having a ``get_num_tokens`` method.
    """
    if getattr(model, "counts_tokens_locally", True) is False:
        return False
    if isinstance(model, BaseLanguageModel):
        cls = type(model)
        return (
            cls.get_num_tokens is not BaseLanguageModel.get_num_tokens
            or cls.get_token_ids is not BaseLanguageModel.get_token_ids
            or getattr(model, "custom_get_token_ids", None) is not None
        )
    return callable(getattr(model, "get_num_tokens", None))


def token_counter(model: Any) -> Callable[[str], int]:
    """``model.get_num_tokens`` when the model (or embeddings) has its own local tokenizer,
    else :func:`approximate_tokens`."""
    inner = unwrap_runnable(model)
    if has_own_tokenizer(inner):
        count: Callable[[str], int] = inner.get_num_tokens
        return count
    return approximate_tokens
