"""Completion-style prompts for base models: instructions and a worked example to continue.

A base (pretrained) model does not follow instructions or know turn markers: it
continues text. It answers well when the prompt is the start of a document in which
the answer comes next: a line saying what the document holds, one worked example,
then the new case with the answer's cue (``Answer:``) left open. The chains put such
a prompt first in their selectors, for models that report no chat template
(:func:`~langchain_localllm.prompts.detect.is_base_model`), and end the answer where
the example's pattern would start over (``stop``).

.. code-block:: python

    from langchain_localllm.prompts import format_prompt_selector
    from langchain_localllm.prompts.completion import CompletionPrompt, with_completion_prompt

    selector = with_completion_prompt(
        format_prompt_selector("Translate to French: {text}"),
        CompletionPrompt(
            intro="English sentences and their French translations.",
            example="English: Good morning.\\nFrench: Bonjour.",
            template="English: {text}\\nFrench:",
            stop=("\\n",),
        ),
    )
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.prompts import BasePromptTemplate, PromptTemplate

from langchain_localllm.prompts.detect import is_base_model
from langchain_localllm.prompts.selector import ConditionalPromptSelector

__all__ = [
    "CompletionPrompt",
    "completion_stop",
    "echoes_example",
    "is_completion_prompt",
    "with_completion_prompt",
]

_STOP_KEY = "completion_stop"
_EXAMPLE_KEY = "completion_example"


@dataclass(frozen=True)
class CompletionPrompt:
    """A prompt a base model continues: ``intro``, one worked ``example``, then ``template``."""

    intro: str
    """What the text is, in the words of a document ("Questions and their answers.")."""
    example: str
    """One complete worked case in the pattern of ``template`` (literal text, no variables)."""
    template: str
    """The new case, with ``{variables}``, ending with the answer's cue (``Answer:``)."""
    stop: tuple[str, ...] = ()
    """Strings where the pattern starts over: the answer ends there."""

    def prompt(self) -> PromptTemplate:
        """The ``PromptTemplate`` (the example's braces escaped); carries ``stop`` in its metadata."""
        literal = f"{self.intro}\n\n{self.example}\n\n".replace("{", "{{").replace("}", "}}")
        return PromptTemplate.from_template(
            literal + self.template, metadata={_STOP_KEY: list(self.stop), _EXAMPLE_KEY: self.example}
        )


def completion_stop(prompt: BasePromptTemplate) -> list[str]:
    """The stop strings a completion prompt carries (empty for other prompts)."""
    return list((prompt.metadata or {}).get(_STOP_KEY) or [])


def echoes_example(prompt: BasePromptTemplate, answer: str) -> bool:
    """True when ``answer`` repeats a line of ``prompt``'s worked example instead of answering.

    A small base model that loses the thread copies the example it was shown (measured on
    Gemma 3 270M with unusual text); such an answer carries no information about the input.
    """
    example = str((prompt.metadata or {}).get(_EXAMPLE_KEY) or "")
    head = " ".join(answer.split())[:40]
    return len(head) >= 20 and any(head in " ".join(line.split()) for line in example.splitlines())


def is_completion_prompt(prompt: BasePromptTemplate) -> bool:
    """True for prompts made by :meth:`CompletionPrompt.prompt`."""
    return _STOP_KEY in (prompt.metadata or {})


def with_completion_prompt(
    selector: ConditionalPromptSelector, completion: CompletionPrompt | BasePromptTemplate
) -> ConditionalPromptSelector:
    """``selector`` with ``completion`` tried first, for base models (:func:`is_base_model`)."""
    prompt: Any = completion.prompt() if isinstance(completion, CompletionPrompt) else completion
    return ConditionalPromptSelector(
        default_prompt=selector.default_prompt,
        conditionals=[(is_base_model, prompt), *selector.conditionals],
    )
