"""Render a model's Jinja chat template the way Hugging Face and llama.cpp do.

A chat template from a model file is untrusted code: it runs in
``jinja2.sandbox.ImmutableSandboxedEnvironment`` (no attribute tricks, no file
access, no mutation of the data given to it) with the options and variables real
templates expect, as ``transformers`` sets them up (``apply_chat_template``):
``trim_blocks``/``lstrip_blocks``, the ``loopcontrols`` extension, ``tojson`` with
HF's arguments (``indent``, ``separators``, ``sort_keys``, non-ASCII kept), and the
globals ``raise_exception`` and ``strftime_now``. Variables: ``messages``,
``tools``, ``add_generation_prompt``, ``bos_token``, ``eos_token`` and any template
kwargs (``enable_thinking``, ``reasoning_effort``, ...).

Messages are OpenAI-style dicts (see ``_core.chat_model.messages_to_dicts``). Tool-call
``arguments`` given as JSON strings are handed to the template as objects, as real
templates (Qwen, Hermes, Llama 3.1, ...) iterate over them and llama.cpp does the same.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

__all__ = ["ChatTemplateError", "render_chat_template"]

from jinja2 import TemplateError as ChatTemplateError


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
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
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
    values: dict[str, Any] = {
        "messages": _with_object_arguments(messages),
        "add_generation_prompt": add_generation_prompt,
        "bos_token": bos_token,
        "eos_token": eos_token,
    }
    if tools is not None:
        values["tools"] = tools
    values.update(template_kwargs)
    return str(_compiled(template).render(**values))
