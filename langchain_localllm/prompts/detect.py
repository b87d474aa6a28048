"""Find a model's prompt format from what the model says about itself.

Order: the model's own chat template (``llm.chat_template()``: the GGUF
``tokenizer.chat_template`` for LlamaCpp/GPT4All, Ollama's ``/api/show`` template,
llama-server's ``/props``), then the model's name, then ``"plain"``.

A Jinja chat template is rendered with a probe conversation in
``jinja2.sandbox.ImmutableSandboxedEnvironment`` (a template from a model file is
untrusted code) and the rendered text is matched against each format's markers;
templates that do not render (Ollama's Go templates, broken ones) are matched as
text. Results are cached per model.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from pathlib import PurePath
from typing import Any

from langchain_localllm._core.tokens import unwrap_runnable as _unwrap
from langchain_localllm.prompts.chat_template import render_chat_template
from langchain_localllm.prompts.registry import PromptFormat, formats_by_priority

__all__ = [
    "clear_prompt_format_cache",
    "format_from_chat_template",
    "format_from_model_name",
    "model_name_of",
    "prompt_format",
]

_PROBE_SYSTEM = "PROBE-SYSTEM-MESSAGE"
_PROBE_USER = "PROBE-USER-MESSAGE"

_cache: dict[Hashable, str] = {}
_cache_lock = threading.Lock()


def _rendered_probe(template: str) -> str | None:
    conversations = [
        [{"role": "system", "content": _PROBE_SYSTEM}, {"role": "user", "content": _PROBE_USER}],
        [{"role": "user", "content": _PROBE_USER}],
    ]
    for messages in conversations:
        try:
            return render_chat_template(template, messages)
        except Exception:
            continue
    return None


def _match_markers(text: str) -> str | None:
    for fmt in formats_by_priority():
        if any(all(marker in text for marker in group) for group in fmt.template_markers):
            return fmt.name
    return None


def format_from_chat_template(template: str | None) -> str | None:
    """The format whose markers a chat template (Jinja or Go) produces, if any."""
    if not template or not template.strip():
        return None
    rendered = _rendered_probe(template)
    if rendered is not None:
        found = _match_markers(rendered)
        if found is not None:
            return found
    return _match_markers(template)


def format_from_model_name(name: str | None) -> str | None:
    """The format whose name patterns match a model name or file name, if any."""
    if not name:
        return None
    formats: list[PromptFormat] = formats_by_priority()
    for fmt in formats:
        if any(pattern.search(name) for pattern in fmt.name_patterns):
            return fmt.name
    return None


def model_name_of(llm: Any) -> str | None:
    """A model's name: ``model_name``, ``model``, ``model_path`` (file name) or ``model_id``."""
    llm = _unwrap(llm)
    for attr in ("model_name", "model", "model_path", "model_id", "repo_id"):
        try:
            value = getattr(llm, attr, None)
        except Exception:
            continue
        if isinstance(value, os.PathLike) or (attr == "model_path" and isinstance(value, str)):
            value = PurePath(os.fspath(value)).name
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _chat_template_of(llm: Any) -> str | None:
    method = getattr(llm, "chat_template", None)
    if callable(method):
        template = method()
        return template if isinstance(template, str) else None
    return method if isinstance(method, str) else None


def _cache_key(llm: Any, name: str | None) -> Hashable | None:
    if name is None:
        return None
    # Where the model lives: the same name at two servers or in two folders is two models.
    where = tuple(
        str(value)
        for attr in ("base_url", "url", "model_path", "model")
        if isinstance(value := getattr(llm, attr, None), (str, os.PathLike))
    )
    return (type(llm).__module__, type(llm).__qualname__, name, where)


def prompt_format(llm: Any, *, default: str = "plain") -> str:
    """The name of ``llm``'s prompt format (a key of the registry), cached per model.

    Works with the four backends of this package (from the model's own chat
    template) and with any LangChain LLM that names its model (``model_name``,
    ``model`` or ``model_path``); ``default`` when nothing identifies the format.
    Errors the backend raises while asking for the template (server unreachable,
    missing model file) are not hidden.
    """
    llm = _unwrap(llm)
    name = model_name_of(llm)
    key = _cache_key(llm, name)
    if key is not None:
        with _cache_lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached
    found = format_from_chat_template(_chat_template_of(llm)) or format_from_model_name(name) or default
    if key is not None:
        with _cache_lock:
            _cache[key] = found
    return found


def clear_prompt_format_cache() -> None:
    """Forget every detected format (after re-registering formats or swapping a model file)."""
    with _cache_lock:
        _cache.clear()
