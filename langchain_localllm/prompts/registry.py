"""The one registry of chat formats.

A chat format owns everything the package knows about one way of laying out a
conversation for a model:

- ``template``: a Jinja chat template over a whole message list (system, user,
  assistant and tool messages, multi-turn), the same text that is written into
  generated GGUF files as ``tokenizer.chat_template``;
- ``stop``: strings that end the model's turn;
- ``template_markers``: strings that identify the format in a model's own template;
- ``name_patterns``: regular expressions that identify it in a model's name;
- ``reasoning``: the markers around the model's thinking (``<think>``/``</think>``);
- ``tool_calls``: how the model writes tool calls (filled in by the tool-calling code).

The single-turn layout the chains use (``fmt.render(user, system)``) is derived from
the template. API:

.. code-block:: python

    from langchain_localllm.prompts import register_chat_format, get_chat_format

    register_chat_format(
        "vicuna",
        "{% for m in messages %}{{ m['role'].upper() }}: {{ m['content'] }}\\n{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}",
        template_markers=("ASSISTANT:",),
        name_patterns=(r"vicuna",),
        stop=("USER:",),
    )
    fmt = get_chat_format("vicuna")
    fmt.render_messages([{"role": "user", "content": "Hi"}])  # 'USER: Hi\\nASSISTANT:'
    fmt.render("{question}", system="Be brief.")                 # single-turn, {placeholders} kept

``register_chat_format`` also works as a decorator on a function returning the
template. Registering a name twice raises ``InvalidParameterError`` unless
``overwrite=True``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

from langchain_localllm.errors import (
    ChatTemplateError,
    ChatTemplateLimitError,
    InvalidMessagesError,
    InvalidParameterError,
)
from langchain_localllm.prompts.chat_template import render_chat_template

__all__ = [
    "FORMATS",
    "ChatFormat",
    "formats_by_priority",
    "get_chat_format",
    "register_chat_format",
]


@dataclass(frozen=True)
class ChatFormat:
    """A registered chat format."""

    name: str
    """Registry key, e.g. ``"llama2"``."""
    template: str
    """Jinja chat template over ``messages`` (with ``add_generation_prompt``, ``bos_token``, ...)."""
    template_markers: tuple[tuple[str, ...], ...] = ()
    """Alternatives of markers: the format matches a chat template containing all the
    markers of any one alternative."""
    name_patterns: tuple[re.Pattern[str], ...] = ()
    """Regular expressions matched (case-insensitively) against the model's name."""
    stop: tuple[str, ...] = ()
    """Strings that end the model's turn in this format."""
    priority: int = 0
    """Higher is tried first, so specific formats win over general ones."""
    reasoning: tuple[str, str] = ("<think>", "</think>")
    """Markers opening and closing the model's reasoning."""
    tool_calls: Any = None
    """How the model writes tool calls (set by the tool-calling code)."""
    _order: int = field(default=0, compare=False)

    def render_messages(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        bos_token: str = "",
        eos_token: str = "",
        **kwargs: Any,
    ) -> str:
        """The conversation laid out in this format (OpenAI-style message dicts).

        BOS is left out by default (the runtimes add it when they tokenize). A
        conversation the format cannot express raises ``InvalidMessagesError``; a template
        that goes past the sandbox's bounds, ``ChatTemplateLimitError``.
        """
        try:
            return render_chat_template(
                self.template,
                messages,
                add_generation_prompt=add_generation_prompt,
                bos_token=bos_token,
                eos_token=eos_token,
                source=f"the {self.name!r} chat format",
                **kwargs,
            )
        except ChatTemplateLimitError:
            raise
        except ChatTemplateError as error:
            raise InvalidMessagesError(
                f"The {self.name!r} chat format cannot render this conversation: {error.reason}",
                format=self.name,
            ) from error

    def render(self, user: str, system: str | None = None) -> str:
        """One user turn (and ``system``), ending where the answer starts; ``{placeholders}`` kept.

        Formats without a system role get the system text ahead of the user's, as
        their models are usually prompted.
        """
        if system:
            try:
                return self.render_messages(
                    [{"role": "system", "content": system}, {"role": "user", "content": user}]
                )
            except InvalidMessagesError:
                user = f"{system}\n\n{user}"
        return self.render_messages([{"role": "user", "content": user}])

    def wrap(self, system: str, user: str) -> str:
        """``render`` with the arguments in ``(system, user)`` order."""
        return self.render(user, system)


#: Registered formats by name.
FORMATS: dict[str, ChatFormat] = {}

TemplateFunction = Callable[[], str]


@overload
def register_chat_format(
    name: str,
    template: str,
    *,
    template_markers: tuple[str | tuple[str, ...], ...] = ...,
    name_patterns: tuple[str, ...] = ...,
    stop: tuple[str, ...] = ...,
    priority: int = ...,
    reasoning: tuple[str, str] = ...,
    overwrite: bool = ...,
) -> ChatFormat: ...


@overload
def register_chat_format(
    name: str,
    template: None = None,
    *,
    template_markers: tuple[str | tuple[str, ...], ...] = ...,
    name_patterns: tuple[str, ...] = ...,
    stop: tuple[str, ...] = ...,
    priority: int = ...,
    reasoning: tuple[str, str] = ...,
    overwrite: bool = ...,
) -> Callable[[TemplateFunction], TemplateFunction]: ...


def register_chat_format(
    name: str,
    template: str | None = None,
    *,
    template_markers: tuple[str | tuple[str, ...], ...] = (),
    name_patterns: tuple[str, ...] = (),
    stop: tuple[str, ...] = (),
    priority: int = 0,
    reasoning: tuple[str, str] = ("<think>", "</think>"),
    overwrite: bool = False,
) -> ChatFormat | Callable[[TemplateFunction], TemplateFunction]:
    """Register chat format ``name``; as a decorator, on a function returning the template.

    Args:
        name: The format's name (``prompt_format(llm)`` returns it).
        template: The Jinja chat template.
        template_markers: Strings that identify the format in a chat template (Jinja
            or Go). A tuple inside means all of its strings must be present.
        name_patterns: Regular expressions matched against the model's name.
        stop: Strings that end the model's answer in this format.
        priority: Detection order; higher first.
        reasoning: Markers around the model's reasoning.
        overwrite: Replace a format already registered under ``name``.
    """

    def add(text: str) -> ChatFormat:
        if name in FORMATS and not overwrite:
            raise InvalidParameterError(
                f"A chat format named {name!r} is already registered; pick another name or "
                "pass overwrite=True to replace it.",
                format=name,
            )
        previous = FORMATS.get(name)
        fmt = ChatFormat(
            name=name,
            template=text,
            template_markers=tuple((m,) if isinstance(m, str) else tuple(m) for m in template_markers),
            name_patterns=tuple(re.compile(p, re.IGNORECASE) for p in name_patterns),
            stop=tuple(stop),
            priority=priority,
            reasoning=reasoning,
            _order=previous._order if previous is not None else len(FORMATS),
        )
        FORMATS[name] = fmt
        return fmt

    if template is not None:
        return add(template)

    def decorator(function: TemplateFunction) -> TemplateFunction:
        add(function())
        return function

    return decorator


def get_chat_format(name: str) -> ChatFormat:
    """The registered format ``name``; a typed error lists the known names otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise InvalidParameterError(
            f"Unknown prompt format {name!r}. Known formats: {known}. "
            "Register new ones with register_chat_format.",
            format=name,
        ) from None


def formats_by_priority() -> list[ChatFormat]:
    """Registered formats, most specific first."""
    return sorted(FORMATS.values(), key=lambda f: (-f.priority, f._order))
