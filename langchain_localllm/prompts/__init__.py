"""Prompt formats of local models, detected from the model itself.

``prompt_format(llm)`` names the format a model wants (``"llama2"``, ``"llama3"``,
``"chatml"``, ``"mistral"``, ``"phi3"``, ``"gemma"``, ``"alpaca"`` or ``"plain"``),
read from the model's own chat template, else its name. A model that reports no chat
template is a base model (``is_base_model``): ``"plain"``, and the chains give it
completion-style prompts (``prompts.completion``). The ``is_<format>_format``
predicates plug into ``ConditionalPromptSelector`` (this package's or
langchain-classic's):

.. code-block:: python

    from langchain_localllm import LlamaCpp
    from langchain_localllm.prompts import ConditionalPromptSelector, format_prompt, is_llama2_format

    llm = LlamaCpp(model_path="llama-2-7b-chat.Q4_K_M.gguf")
    selector = ConditionalPromptSelector(
        default_prompt=format_prompt("plain", "Question: {question}"),
        conditionals=[(is_llama2_format, format_prompt("llama2", "{question}", system="Be brief."))],
    )
    chain = selector.get_prompt(llm) | llm
"""

from __future__ import annotations

from langchain_localllm.prompts import formats as _formats  # noqa: F401  (registers the built-ins)
from langchain_localllm.prompts.chat_template import (
    ChatTemplateError,
    ChatTemplateLimitError,
    ChatTemplateLimits,
    SourcedTemplate,
    render_chat_template,
)
from langchain_localllm.prompts.detect import (
    clear_prompt_format_cache,
    format_from_chat_template,
    format_from_model_name,
    is_base_model,
    model_name_of,
    prompt_format,
)
from langchain_localllm.prompts.registry import (
    FORMATS,
    ChatFormat,
    get_chat_format,
    register_chat_format,
)
from langchain_localllm.prompts.selector import (
    ConditionalPromptSelector,
    format_predicate,
    format_prompt,
    format_prompt_selector,
    is_alpaca_format,
    is_chatml_format,
    is_gemma_format,
    is_llama2_format,
    is_llama3_format,
    is_mistral_format,
    is_phi3_format,
    is_plain_format,
)

__all__ = [
    "FORMATS",
    "ChatFormat",
    "ChatTemplateError",
    "ChatTemplateLimitError",
    "ChatTemplateLimits",
    "ConditionalPromptSelector",
    "SourcedTemplate",
    "clear_prompt_format_cache",
    "format_from_chat_template",
    "format_from_model_name",
    "format_predicate",
    "format_prompt",
    "format_prompt_selector",
    "get_chat_format",
    "is_alpaca_format",
    "is_base_model",
    "is_chatml_format",
    "is_gemma_format",
    "is_llama2_format",
    "is_llama3_format",
    "is_mistral_format",
    "is_phi3_format",
    "is_plain_format",
    "model_name_of",
    "prompt_format",
    "register_chat_format",
    "render_chat_template",
]
