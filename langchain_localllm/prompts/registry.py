"""The registry of prompt formats: one decorated function per format.

A prompt format says how a model wants a single-turn instruction laid out (Llama-2's
``[INST] <<SYS>> ... <</SYS>> ... [/INST]``, ChatML's ``<|im_start|>`` turns, ...),
how to recognise it in the model's own chat template (markers) or in the model's
name (patterns), and which strings end the model's turn (stop sequences).

A new format is registered in one place:

.. code-block:: python

    from langchain_localllm.prompts import register_prompt_format

    @register_prompt_format(
        "vicuna", template_markers=("ASSISTANT:",), name_patterns=(r"vicuna",), stop=("USER:",)
    )
    def vicuna(system: str, user: str) -> str:
        return f"{system}\\n\\nUSER: {user}\\nASSISTANT:"
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from langchain_localllm.errors import InvalidParameterError

__all__ = ["FORMATS", "PromptFormat", "get_prompt_format", "register_prompt_format"]

Wrapper = Callable[[str, str], str]


@dataclass(frozen=True)
class PromptFormat:
    """A registered prompt format."""

    name: str
    """Registry key, e.g. ``"llama2"``."""
    wrap: Wrapper
    """``wrap(system, user) -> str``: one user turn (with an optional system message)
    laid out for the model, ending where the model's answer starts."""
    template_markers: tuple[tuple[str, ...], ...] = ()
    """Alternatives of markers: the format matches a chat template containing all the
    markers of any one alternative."""
    name_patterns: tuple[re.Pattern[str], ...] = ()
    """Regular expressions matched (case-insensitively) against the model's name."""
    stop: tuple[str, ...] = ()
    """Strings that end the model's turn in this format."""
    priority: int = 0
    """Higher is tried first, so specific formats win over general ones."""
    _order: int = field(default=0, compare=False)

    def render(self, user: str, system: str | None = None) -> str:
        """The format's text for ``user`` (and ``system``); ``{placeholders}`` are kept."""
        return self.wrap(system or "", user)


#: Registered formats by name.
FORMATS: dict[str, PromptFormat] = {}


def register_prompt_format(
    name: str,
    *,
    template_markers: tuple[str | tuple[str, ...], ...] = (),
    name_patterns: tuple[str, ...] = (),
    stop: tuple[str, ...] = (),
    priority: int = 0,
) -> Callable[[Wrapper], Wrapper]:
    """Register the decorated ``wrap(system, user) -> str`` function as format ``name``.

    Args:
        name: The format's name (``prompt_format(llm)`` returns it).
        template_markers: Strings that identify the format in a chat template (Jinja
            or Go). A tuple inside means all of its strings must be present.
        name_patterns: Regular expressions matched against the model's name.
        stop: Strings that end the model's answer in this format.
        priority: Detection order; higher first.
    """

    def decorator(wrap: Wrapper) -> Wrapper:
        markers = tuple((m,) if isinstance(m, str) else tuple(m) for m in template_markers)
        FORMATS[name] = PromptFormat(
            name=name,
            wrap=wrap,
            template_markers=markers,
            name_patterns=tuple(re.compile(p, re.IGNORECASE) for p in name_patterns),
            stop=tuple(stop),
            priority=priority,
            _order=len(FORMATS),
        )
        return wrap

    return decorator


def get_prompt_format(name: str) -> PromptFormat:
    """The registered format ``name``; a typed error lists the known names otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise InvalidParameterError(
            f"Unknown prompt format {name!r}. Known formats: {known}. "
            "Register new ones with @register_prompt_format.",
            format=name,
        ) from None


def formats_by_priority() -> list[PromptFormat]:
    """Registered formats, most specific first."""
    return sorted(FORMATS.values(), key=lambda f: (-f.priority, f._order))
