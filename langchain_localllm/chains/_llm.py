"""What the chains need to know about an LLM: format, stop sequences, tokens, window."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable

from langchain_localllm._core.base.tokens import (
    approximate_tokens as approximate_tokens,
    token_counter as token_counter,
    unwrap_runnable as _unwrap,
)
from langchain_localllm.prompts import ConditionalPromptSelector, get_chat_format, prompt_format
from langchain_localllm.prompts.completion import completion_stop

#: Used when neither the caller nor the model says how big the context window is.
DEFAULT_CONTEXT_WINDOW = 2048
#: Room kept for an answer when neither the caller nor the model bounds its length.
DEFAULT_ANSWER_TOKENS = 256
#: Steps a chain runs at once on one server when the caller does not say.
DEFAULT_CONCURRENCY = 4


def is_chat_model(llm: Any) -> bool:
    """Chat models apply their own template to messages: prompts go to them unwrapped."""
    return isinstance(_unwrap(llm), BaseChatModel)


def select_prompt(selector: ConditionalPromptSelector, llm: Any) -> BasePromptTemplate:
    """The selector's prompt for ``llm``'s format; the plain default for chat models."""
    return selector.default_prompt if is_chat_model(llm) else selector.get_prompt(llm)


def text_model(llm: Runnable[Any, Any], prompt: BasePromptTemplate | None = None) -> Runnable[Any, str]:
    """``llm`` bound to its format's stop sequences, producing text (chat models too).

    A completion-style ``prompt`` (for base models) adds the strings where its pattern
    starts over (see ``langchain_localllm.prompts.completion``).
    """
    if is_chat_model(llm):
        stop: list[str] = []
    else:
        stop = list(get_chat_format(prompt_format(llm)).stop)
        stop += [s for s in completion_stop(prompt) if s not in stop] if prompt is not None else []
    bound: Runnable[Any, Any] = llm.bind(stop=stop) if stop and isinstance(llm, BaseLanguageModel) else llm
    return bound | StrOutputParser()


def context_window(llm: Any) -> int:
    """The model's context window: ``get_context_window()``, ``n_ctx`` or ``num_ctx``."""
    inner = _unwrap(llm)
    method = getattr(inner, "get_context_window", None)
    value = method() if callable(method) else None
    for attr in ("n_ctx", "num_ctx"):
        if not value:
            value = getattr(inner, attr, None)
    return value if isinstance(value, int) and value > 0 else DEFAULT_CONTEXT_WINDOW


def answer_tokens(llm: Any) -> int:
    """Room for one answer: the model's ``max_tokens``/``num_predict``/``n_predict`` if set."""
    inner = _unwrap(llm)
    for attr in ("max_tokens", "num_predict", "n_predict"):
        value = getattr(inner, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_ANSWER_TOKENS


def fleet_concurrency(llm: Any, per_server: int | None) -> tuple[int, int]:
    """(steps to run at once, servers behind ``llm``): ``per_server`` for one model, and for a
    fleet (``base_url=[...]``) its capacity, so that every server is kept busy. ``per_server``
    None: an in-process model's ``n_parallel`` (the calls its batched engine decodes together),
    else :data:`DEFAULT_CONCURRENCY`."""
    model = _unwrap(llm)
    if per_server is None:
        n_parallel = getattr(model, "n_parallel", None)
        per_server = n_parallel if isinstance(n_parallel, int) and n_parallel > 0 else DEFAULT_CONCURRENCY
    capacity = getattr(model, "fleet_capacity", None)
    if capacity is None:
        return per_server, 1
    urls = model.base_url
    return int(capacity(per_server)), 1 if isinstance(urls, str) else len(urls)
