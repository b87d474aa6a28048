"""The registry of native tool-call syntaxes: one decorated parser per syntax.

A tool-call syntax says how a model writes a tool call in its own output (Hermes/Qwen's
``<tool_call>{...}</tool_call>``, Mistral's ``[TOOL_CALLS]``, DeepSeek's
``<｜tool▁calls▁begin｜>``, ...), how to recognise it in the model's chat template
(markers), which strings open a tool-call section in the output, and how to lay out a
call so a grammar can force it.

A new syntax is registered in one place; a second registration of a name is refused:

.. code-block:: python

    from langchain_localllm.prompts.tool_calls import register_tool_call_syntax, RawCall

    @register_tool_call_syntax("mytool", start=("<call>",), template_markers=("<call>",))
    def mytool(section: str, final: bool) -> SectionParse:
        ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_localllm.errors import InvalidParameterError

__all__ = [
    "SYNTAXES",
    "CallLayout",
    "RawCall",
    "SectionParse",
    "ToolCallSyntax",
    "detect_tool_call_syntax",
    "get_tool_call_syntax",
    "register_tool_call_syntax",
]


@dataclass
class RawCall:
    """One tool call as read from the model's output."""

    name: str | None
    """The called tool, or None when it could not be read."""
    args: dict[str, Any] | str
    """Parsed arguments (a JSON object), or the raw argument text when it did not parse."""
    id: str | None = None
    """The call id the model wrote (Mistral, Kimi), if any."""
    error: str | None = None
    """Why the call is invalid; None for a valid call."""


@dataclass
class SectionParse:
    """What a syntax read from a tool-call section (the output from its start marker on)."""

    calls: list[RawCall] = field(default_factory=list)
    """Calls in output order. Before the end of the output only complete calls, which the
    final parse must report identically."""
    text: str = ""
    """Text of the section that is not a call (kept as message content; final parse only)."""


@dataclass(frozen=True)
class CallLayout:
    """How one call is written, for grammars that force a call in the model's own syntax.

    ``call`` is a Python format string over ``{name}`` (the tool's name, JSON-escaped,
    without quotes) and ``{args}`` (a placeholder the grammar replaces by the arguments
    rule); literal braces are doubled.
    """

    call: str
    open: str = ""
    """Written once before the first call."""
    separator: str = ""
    """Written between parallel calls."""
    close: str = ""
    """Written once after the last call."""


Parser = Callable[[str, bool], SectionParse]


@dataclass(frozen=True)
class ToolCallSyntax:
    """A registered tool-call syntax."""

    name: str
    """Registry key, e.g. ``"hermes"``."""
    parse: Parser
    """``parse(section, final) -> SectionParse``; ``section`` starts at a start marker."""
    start: tuple[str, ...]
    """Strings that open a tool-call section anywhere in the output."""
    leading: tuple[str, ...] = ()
    """Strings that open a section only at the very start of the output (after blanks),
    such as Llama 3's bare JSON object."""
    implicit: bool = False
    """The whole output is a section (the prompt already opened it: Functionary v3.2)."""
    template_markers: tuple[tuple[str, ...], ...] = ()
    """Alternatives of markers: the syntax matches a chat template containing all the
    markers of any one alternative."""
    layout: CallLayout | None = None
    """How to force a call in this syntax; None to force plain JSON calls instead."""
    priority: int = 0
    """Higher is tried first, so specific syntaxes win over general ones."""
    _order: int = field(default=0, compare=False)


#: Registered syntaxes by name.
SYNTAXES: dict[str, ToolCallSyntax] = {}


def register_tool_call_syntax(
    name: str,
    *,
    start: tuple[str, ...] = (),
    leading: tuple[str, ...] = (),
    implicit: bool = False,
    template_markers: tuple[str | tuple[str, ...], ...] = (),
    layout: CallLayout | None = None,
    priority: int = 0,
) -> Callable[[Parser], Parser]:
    """Register the decorated ``parse(section, final)`` function as syntax ``name``.

    Raises:
        InvalidParameterError: ``name`` is already registered, or no way to open a
            section is given.
    """

    def decorator(parse: Parser) -> Parser:
        if name in SYNTAXES:
            raise InvalidParameterError(
                f"Tool-call syntax {name!r} is already registered; pick another name.", syntax=name
            )
        if not (start or leading or implicit):
            raise InvalidParameterError(
                f"Tool-call syntax {name!r} needs start or leading markers, or implicit=True.",
                syntax=name,
            )
        SYNTAXES[name] = ToolCallSyntax(
            name=name,
            parse=parse,
            start=tuple(start),
            leading=tuple(leading),
            implicit=implicit,
            template_markers=tuple((m,) if isinstance(m, str) else tuple(m) for m in template_markers),
            layout=layout,
            priority=priority,
            _order=len(SYNTAXES),
        )
        return parse

    return decorator


def get_tool_call_syntax(name: str) -> ToolCallSyntax:
    """The registered syntax ``name``; a typed error lists the known names otherwise."""
    try:
        return SYNTAXES[name]
    except KeyError:
        known = ", ".join(sorted(SYNTAXES))
        raise InvalidParameterError(
            f"Unknown tool-call syntax {name!r}. Known syntaxes: {known}. "
            "Register new ones with @register_tool_call_syntax.",
            syntax=name,
        ) from None


def detect_tool_call_syntax(chat_template: str | None) -> ToolCallSyntax | None:
    """The syntax whose markers the chat template contains (most specific first), or None."""
    if not chat_template:
        return None
    for syntax in sorted(SYNTAXES.values(), key=lambda s: (-s.priority, s._order)):
        if any(all(m in chat_template for m in alt) for alt in syntax.template_markers):
            return syntax
    return None
