"""Find a model's prompt format from what the model says about itself.

A model that reports its chat template (``llm.chat_template()``: the GGUF
``tokenizer.chat_template`` for LlamaCpp/GPT4All, Ollama's ``/api/show`` template,
llama-server's ``/props``) is judged by that template alone: no template, or one that
passes the prompt through, is a base model (``"plain"``: completion-style prompts), and
a format is chosen only when the template's markers confirm it. The model's name is
used only for LLMs that cannot report a template (other packages' classes); then
``"plain"``.

A Jinja chat template is rendered with a probe conversation in the bounded sandbox
(:mod:`~langchain_localllm.prompts.sandbox`: a template from a model file or a server is
untrusted code) and the rendered text is matched against each format's markers; templates
that do not render (Ollama's Go templates, broken ones) are matched as text. A template
that goes past the sandbox's bounds is a
:class:`~langchain_localllm.errors.ChatTemplateLimitError` naming where it came from.
Results are cached per model, probes per template text.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from functools import lru_cache
from pathlib import PurePath
from typing import Any

from langchain_localllm._core.base.tokens import unwrap_runnable as _unwrap
from langchain_localllm.errors import ChatTemplateError, ChatTemplateLimitError
from langchain_localllm.prompts.base_model import PROBE_CONTENTS, is_base_model_template
from langchain_localllm.prompts.chat_template import render_chat_template, template_source
from langchain_localllm.prompts.registry import formats_by_priority
from langchain_localllm.prompts.sandbox import limit_error

__all__ = [
    "clear_prompt_format_cache",
    "format_from_chat_template",
    "format_from_model_name",
    "is_base_model",
    "model_name_of",
    "prompt_format",
]

_PROBE_SYSTEM, _PROBE_USER = PROBE_CONTENTS

_cache: dict[Hashable, tuple[str, bool]] = {}
_cache_lock = threading.Lock()


def _rendered_probe(template: str) -> str | None:
    """The probe conversation in ``template``; None when it renders neither probe (a tripped
    bound is raised, naming the template's source)."""
    rendered = _cached_probe(template)
    if isinstance(rendered, ChatTemplateLimitError):  # cached per text: name this one's source
        raise limit_error(template_source(template), rendered.limit, rendered.reason)
    return rendered


@lru_cache(maxsize=64)
def _cached_probe(template: str) -> str | ChatTemplateLimitError | None:
    conversations = [
        [{"role": "system", "content": _PROBE_SYSTEM}, {"role": "user", "content": _PROBE_USER}],
        [{"role": "user", "content": _PROBE_USER}],
    ]
    for messages in conversations:
        try:
            return render_chat_template(template, messages)
        except ChatTemplateLimitError as error:
            return error
        except ChatTemplateError:
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
    for fmt in formats_by_priority():
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


def _detect(llm: Any, name: str | None, default: str) -> tuple[str, bool]:
    """``(format, is a base model)``."""
    if getattr(llm, "chat_template", None) is None:  # cannot say: the name is all there is
        return format_from_model_name(name) or default, False
    template = _chat_template_of(llm)
    rendered = _rendered_probe(template) if template and template.strip() else None
    if is_base_model_template(template, rendered):
        return "plain", True
    found = _match_markers(rendered) if rendered is not None else None
    return found or _match_markers(template or "") or default, False


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


def _detection(llm: Any, default: str) -> tuple[str, bool]:
    llm = _unwrap(llm)
    name = model_name_of(llm)
    key = _cache_key(llm, name)
    if key is not None:
        key = (*key, default)  # type: ignore[misc]
        with _cache_lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached
    found = _detect(llm, name, default)
    if key is not None:
        with _cache_lock:
            _cache[key] = found
    return found


def prompt_format(llm: Any, *, default: str = "plain") -> str:
    """The name of ``llm``'s prompt format (a key of the registry), cached per model.

    Works with the four backends of this package (from the model's own chat
    template; ``"plain"`` for a base model, see :func:`is_base_model`) and with any
    LangChain LLM that names its model (``model_name``, ``model`` or ``model_path``);
    ``default`` when nothing identifies the format. Errors the backend raises while
    asking for the template (server unreachable, missing model file) are not hidden.
    """
    return _detection(llm, default)[0]


def is_base_model(llm: Any) -> bool:
    """True when ``llm`` reports that it has no chat template (a pretrained base model).

    Such a model continues text: the chains give it completion-style prompts
    (:mod:`langchain_localllm.prompts.completion`). False for LLMs that cannot report
    a template (their format comes from their name) and for chat models.
    """
    return _detection(llm, "plain")[1]


def clear_prompt_format_cache() -> None:
    """Forget every detected format (after re-registering formats or swapping a model file)."""
    with _cache_lock:
        _cache.clear()
