"""Render a model's Jinja chat template the way Hugging Face and llama.cpp do.

A chat template from a model file or a server is untrusted code: it runs in the bounded
sandbox of :mod:`~langchain_localllm.prompts.sandbox` (Jinja's immutable sandbox: no
attribute tricks, no file access, no mutation of the data given to it; plus a time limit and
size limits, see :class:`~langchain_localllm.prompts.sandbox.ChatTemplateLimits`) with the
options and variables real templates expect, as ``transformers`` sets them up (``apply_chat_template``):
``trim_blocks``/``lstrip_blocks``, the ``loopcontrols`` extension, ``tojson`` with
HF's arguments (``indent``, ``separators``, ``sort_keys``, non-ASCII kept), and the
globals ``raise_exception`` and ``strftime_now``, and HF's ``{% generation %}`` tag.
Variables: ``messages``, ``tools``, ``add_generation_prompt``, ``bos_token``,
``eos_token``, ``date_string``/``datetime`` (today, as llama.cpp sets them) and any
template kwargs (``enable_thinking``, ``reasoning_effort``, ...).

Where real templates and llama.cpp's engine disagree with a plain render, this does
what llama.cpp does (its ``/apply-template`` output is the test oracle):

- a template that has no system role gets the system message merged into the next
  message (``system + "\n" + content``);
- tool-call ``arguments`` go to the template as objects when it reads them as objects
  (Qwen, Hermes, Llama 3.1, ...), as the JSON string otherwise (Functionary, ...);
- templates may ``append``/``pop`` on lists (Kimi K2); the caller's messages, tools and
  template variables are copied first, so nothing given to the template can change.

Every failure is a :class:`~langchain_localllm.errors.ChatTemplateError` naming where the
template came from (``source=``, or the label a :class:`SourcedTemplate` carries), a tripped
bound a :class:`~langchain_localllm.errors.ChatTemplateLimitError`. Each template is compiled
and probed once (cached); a template whose probe trips a bound is refused at once afterwards.

Messages are OpenAI-style dicts (see ``_core.chat_model.messages_to_dicts``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, nodes
from jinja2.ext import Extension

from langchain_localllm.errors import ChatTemplateError, ChatTemplateLimitError
from langchain_localllm.prompts.sandbox import (
    DEFAULT_LIMITS,
    BoundedSandbox,
    ChatTemplateLimits,
    bounded,
    check_size,
    limit_error,
    render_bounded,
    template_error,
    typed_errors,
)
from langchain_localllm.prompts.template_source import SourcedTemplate, sourced

__all__ = [
    "ChatTemplateError",
    "ChatTemplateLimitError",
    "ChatTemplateLimits",
    "SourcedTemplate",
    "render_chat_template",
    "sourced",
    "template_source",
]

_SYSTEM_MARKER = "<<SYSTEM-PROBE>>"
_ARGUMENT_MARKER = "<<ARGUMENT-PROBE>>"
_MAX_TEMPLATE_CHARS = 1 << 18  # the largest real templates have 17k characters
_UNNAMED_SOURCE = "an unnamed source"


class _GenerationTag(Extension):
    """HF's ``{% generation %}...{% endgeneration %}`` (marks assistant text): renders its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def _raise_exception(message: Any) -> None:
    text = message if isinstance(message, str) else repr(message)[:2000]
    raise TemplateError(text[:2000])


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: Any = None,
    separators: Any = None,
    sort_keys: bool = False,
) -> str:
    # transformers' tojson: json.dumps with the template's own arguments (no HTML escaping).
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    check_size(16 * len(str(fmt)), "strftime_now()")
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=1)
def _environment() -> BoundedSandbox:
    from jinja2.ext import loopcontrols

    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, _GenerationTag])
    env.add_filter("tojson", _tojson)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


@dataclass(frozen=True)
class _Prepared:
    """A compiled template and what its probes found."""

    template: Any
    """The compiled ``jinja2.Template``."""
    system_role: bool
    """It renders a system message."""
    object_arguments: bool
    """It reads tool-call arguments as objects."""


@dataclass(frozen=True)
class _Refused:
    """A template that cannot be used: it does not compile, or a probe tripped a bound."""

    reason: str
    """What went wrong, without the source."""
    limit: str | None
    """The bound that tripped (``"time"``, ``"size"``, ...), None for a broken template."""

    def error(self, source: str) -> ChatTemplateError:
        if self.limit is None:
            return template_error(source, self.reason)
        return limit_error(source, self.limit, self.reason)


@lru_cache(maxsize=64)
def _prepare(template: str, limits: ChatTemplateLimits) -> _Prepared | _Refused:
    """Compile ``template`` and probe it within ``limits``; cached per template text."""
    if len(template) > _MAX_TEMPLATE_CHARS:
        return _Refused(
            f"has {len(template):,} characters (the limit is {_MAX_TEMPLATE_CHARS:,}); real chat "
            "templates have a few thousand",
            "size",
        )
    try:
        with typed_errors(_UNNAMED_SOURCE), bounded(limits):
            compiled = _environment().from_string(str(template))
        with typed_errors(_UNNAMED_SOURCE):
            system, objects = _capabilities(compiled, limits)
    except ChatTemplateLimitError as error:
        return _Refused(error.reason, error.limit)
    except ChatTemplateError as error:
        return _Refused(error.reason, None)
    return _Prepared(compiled, system, objects)


def _try_render(compiled: Any, limits: ChatTemplateLimits, **values: Any) -> str | None:
    """The probe's text; None when the template refuses it (a tripped bound propagates)."""
    try:
        return render_bounded(compiled, values, limits)
    except (RecursionError, MemoryError):
        raise
    except Exception:  # a probe the template refuses: the capability is missing
        return None


def _capabilities(compiled: Any, limits: ChatTemplateLimits) -> tuple[bool, bool]:
    """``(supports a system role, reads tool-call arguments as objects)``, by probing."""
    base = {"bos_token": "", "eos_token": "", "add_generation_prompt": False}
    probe = [{"role": "system", "content": _SYSTEM_MARKER}, {"role": "user", "content": "Hi"}]
    rendered = _try_render(compiled, limits, messages=probe, **base)
    system = rendered is not None and _SYSTEM_MARKER in rendered
    call: dict[str, Any] = {
        "id": "call00001",
        "type": "function",
        "function": {"name": "tool1", "arguments": {"arg": _ARGUMENT_MARKER}},
    }
    probe_calls: list[dict[str, Any]] = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
    ]
    rendered = _try_render(compiled, limits, messages=probe_calls, **base)
    objects = rendered is not None and _ARGUMENT_MARKER in rendered
    return system, objects


def _with_object_arguments(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        calls = message.get("tool_calls")
        if calls:
            message = dict(message)
            message["tool_calls"] = [_object_arguments(call) for call in calls]
        out.append(message)
    return out


def _object_arguments(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    try:
        arguments = json.loads(function["arguments"])
    except ValueError:
        return call
    return {**call, "function": {**function, "arguments": arguments}}


def _merge_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not messages or messages[0].get("role") != "system":
        return messages
    if len(messages) == 1:
        return []
    system, following = messages[0], dict(messages[1])
    following["content"] = f"{system.get('content') or ''}\n{following.get('content') or ''}"
    return [following, *messages[2:]]


def template_source(template: str, source: str | None = None) -> str:
    """Where ``template`` came from, for errors: ``source``, else its :class:`SourcedTemplate` label."""
    return source or getattr(template, "source", None) or _UNNAMED_SOURCE


def render_chat_template(
    template: str,
    messages: list[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    tools: list[dict[str, Any]] | None = None,
    bos_token: str = "<s>",
    eos_token: str = "</s>",
    source: str | None = None,
    limits: ChatTemplateLimits | None = None,
    **template_kwargs: Any,
) -> str:
    """Render ``template`` over ``messages`` in the bounded sandbox.

    ``messages``, ``tools`` and ``template_kwargs`` are copied first: nothing given to the
    template can change. ``source`` says where the template came from, for errors (by
    default the label of a :class:`SourcedTemplate`); ``limits`` bound the render
    (:data:`~langchain_localllm.prompts.sandbox.DEFAULT_LIMITS` by default).

    Raises:
        ChatTemplateLimitError: the template went past a bound (time, size, recursion).
        ChatTemplateError: the template refuses the conversation (``raise_exception``), is
            broken, or tried something the sandbox forbids.
    """
    source = template_source(template, source)
    limits = limits or DEFAULT_LIMITS
    prepared = _prepare(template, limits)
    if isinstance(prepared, _Refused):
        raise prepared.error(source)
    messages = copy.deepcopy(messages)
    if not prepared.system_role:
        messages = _merge_system(messages)
    if prepared.object_arguments:
        messages = _with_object_arguments(messages)
    now = datetime.now()
    values: dict[str, Any] = {
        "messages": messages,
        "add_generation_prompt": add_generation_prompt,
        "bos_token": bos_token,
        "eos_token": eos_token,
        "date_string": now.strftime("%d %b %Y"),
        "datetime": now.strftime("%b %d %Y"),
    }
    if tools is not None:
        values["tools"] = copy.deepcopy(tools)
    values.update(copy.deepcopy(template_kwargs))
    with typed_errors(source):
        return render_bounded(prepared.template, values, limits)
