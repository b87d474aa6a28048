"""Choose a prompt per model: format predicates and a ``ConditionalPromptSelector``.

``ConditionalPromptSelector`` lives in langchain-classic
(``langchain_classic.chains.prompt_selector``), not in langchain-core; this module
provides a compatible one so the package does not depend on langchain-classic. The
predicates work with both: they are plain ``llm -> bool`` callables.

.. code-block:: python

    from langchain_localllm.prompts import ConditionalPromptSelector, is_llama2_format

    selector = ConditionalPromptSelector(
        default_prompt=DEFAULT_PROMPT, conditionals=[(is_llama2_format, LLAMA2_PROMPT)]
    )
    prompt = selector.get_prompt(llm)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.prompts import BasePromptTemplate, PromptTemplate
from pydantic import BaseModel, Field

from langchain_localllm.prompts.detect import prompt_format
from langchain_localllm.prompts.registry import FORMATS, get_chat_format

__all__ = [
    "ConditionalPromptSelector",
    "format_predicate",
    "format_prompt",
    "format_prompt_selector",
    "is_alpaca_format",
    "is_chatml_format",
    "is_gemma_format",
    "is_llama2_format",
    "is_llama3_format",
    "is_mistral_format",
    "is_phi3_format",
    "is_plain_format",
]

Predicate = Callable[[Any], bool]


def format_predicate(name: str) -> Predicate:
    """``llm -> bool``: True when ``prompt_format(llm) == name``."""
    get_chat_format(name)  # fail early on a typo

    def predicate(llm: Any) -> bool:
        return prompt_format(llm) == name

    predicate.__name__ = predicate.__qualname__ = f"is_{name}_format"
    predicate.__doc__ = f"True when the model's prompt format is {name!r} (see ``prompt_format``)."
    return predicate


is_llama2_format = format_predicate("llama2")
is_llama3_format = format_predicate("llama3")
is_chatml_format = format_predicate("chatml")
is_mistral_format = format_predicate("mistral")
is_phi3_format = format_predicate("phi3")
is_gemma_format = format_predicate("gemma")
is_alpaca_format = format_predicate("alpaca")
is_plain_format = format_predicate("plain")


class ConditionalPromptSelector(BaseModel):
    """Pick the prompt of the first condition that holds for the model (classic-compatible).

    Same fields and ``get_prompt`` as langchain-classic's
    ``langchain_classic.chains.prompt_selector.ConditionalPromptSelector``.
    """

    default_prompt: BasePromptTemplate
    """Prompt used when no condition holds."""
    conditionals: list[tuple[Callable[[Any], bool], BasePromptTemplate]] = Field(default_factory=list)
    """``(condition, prompt)`` pairs tried in order; a condition takes the LLM."""

    def get_prompt(self, llm: Any) -> BasePromptTemplate:
        """The prompt of the first condition true for ``llm``, else ``default_prompt``."""
        for condition, prompt in self.conditionals:
            if condition(llm):
                return prompt
        return self.default_prompt


def format_prompt(name: str, user: str, system: str | None = None) -> PromptTemplate:
    """A ``PromptTemplate`` laying out ``user`` (and ``system``) in format ``name``.

    ``user`` and ``system`` are f-string templates: their ``{variables}`` become the
    prompt's input variables.
    """
    return PromptTemplate.from_template(get_chat_format(name).render(user, system))


def format_prompt_selector(user: str, system: str | None = None) -> ConditionalPromptSelector:
    """A selector with one prompt per registered format (plain text as the default)."""
    conditionals: list[tuple[Callable[[Any], bool], BasePromptTemplate]] = [
        (format_predicate(name), format_prompt(name, user, system)) for name in FORMATS if name != "plain"
    ]
    return ConditionalPromptSelector(
        default_prompt=format_prompt("plain", user, system), conditionals=conditionals
    )
