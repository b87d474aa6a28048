"""A chat template's text that remembers where it came from.

The classes that read a model's chat template (from a GGUF file, Ollama's ``/api/show``,
llama-server's ``/props``) return it as a :class:`SourcedTemplate`: a ``str`` (use it as
one) whose ``source`` the renderer names in its errors, whichever code path renders it.
"""

from __future__ import annotations

__all__ = ["SourcedTemplate", "sourced"]


class SourcedTemplate(str):
    """A chat template's text (a ``str``) with ``source``: where it came from."""

    source: str
    """For errors: "GGUF file /models/x.gguf", "Ollama /api/show of model 'm' at http://..."."""

    def __new__(cls, text: str, source: str) -> SourcedTemplate:
        template = super().__new__(cls, text)
        template.source = source
        return template

    def __reduce__(self) -> tuple[object, ...]:
        return (SourcedTemplate, (str(self), self.source))


def sourced(template: str | None, source: str) -> str | None:
    """``template`` labelled with ``source`` (None stays None)."""
    return None if template is None else SourcedTemplate(template, source)
