"""Render a model's Jinja chat template the way Hugging Face and llama.cpp do.

A chat template from a model file is untrusted code: it runs in
``jinja2.sandbox.ImmutableSandboxedEnvironment`` (no attribute tricks, no file
access, no mutation of the data given to it) with the options and variables real
templates expect, as ``transformers`` sets them up (``apply_chat_template``):
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
- templates may ``append``/``pop`` on lists (Kimi K2); the caller's
  messages are copied first, so nothing given to the template can change.

Messages are OpenAI-style dicts (see ``_core.chat_model.messages_to_dicts``).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError as ChatTemplateError, nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["ChatTemplateError", "render_chat_template"]

_SYSTEM_MARKER = "<<SYSTEM-PROBE>>"
_ARGUMENT_MARKER = "<<ARGUMENT-PROBE>>"


class _GenerationTag(Extension):
    """HF's ``{% generation %}...{% endgeneration %}`` (marks assistant text): renders its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


class _TemplateSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, except that a template may ``append`` to and ``pop`` from a list
    (it only ever sees copies of the caller's data)."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, list) and attr in ("append", "pop"):
            return True
        return bool(super().is_safe_attribute(obj, attr, value))


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(message)


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
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=64)
def _compiled(template: str) -> Any:
    from jinja2.ext import loopcontrols

    env = _TemplateSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, _GenerationTag])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(template)


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


def _try_render(template: str, **values: Any) -> str | None:
    try:
        return str(_compiled(template).render(**values))
    except Exception:  # a probe the template refuses: the capability is missing
        return None


@lru_cache(maxsize=64)
def _capabilities(template: str) -> tuple[bool, bool]:
    """``(supports a system role, reads tool-call arguments as objects)``, by probing."""
    base = {"bos_token": "", "eos_token": "", "add_generation_prompt": False}
    probe = [{"role": "system", "content": _SYSTEM_MARKER}, {"role": "user", "content": "Hi"}]
    rendered = _try_render(template, messages=probe, **base)
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
    rendered = _try_render(template, messages=probe_calls, **base)
    objects = rendered is not None and _ARGUMENT_MARKER in rendered
    return system, objects


def _merge_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not messages or messages[0].get("role") != "system":
        return messages
    if len(messages) == 1:
        return []
    system, following = messages[0], dict(messages[1])
    following["content"] = f"{system.get('content') or ''}\n{following.get('content') or ''}"
    return [following, *messages[2:]]


def render_chat_template(
    template: str,
    messages: list[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    tools: list[dict[str, Any]] | None = None,
    bos_token: str = "<s>",
    eos_token: str = "</s>",
    **template_kwargs: Any,
) -> str:
    """Render ``template`` over ``messages`` in the sandbox.

    Raises ``ChatTemplateError`` (jinja2's ``TemplateError``) when the template
    refuses the conversation (``raise_exception``) or is broken.
    """
    supports_system, object_arguments = _capabilities(template)
    messages = copy.deepcopy(messages)
    if not supports_system:
        messages = _merge_system(messages)
    if object_arguments:
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
        values["tools"] = tools
    values.update(template_kwargs)
    return str(_compiled(template).render(**values))
