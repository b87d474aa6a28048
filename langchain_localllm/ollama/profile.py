"""``ChatOllama.profile``: read from the Ollama server (``/api/show``, ``/api/ps``).

``max_input_tokens`` is the context the server runs the model with, capped at the model's
trained context length (``model_info``), as Ollama caps it:

1. ``num_ctx`` of the instance (or its ``options``): every request sends it;
2. else the model's ``num_ctx`` parameter (its Modelfile's, in ``/api/show``);
3. else the ``context_length`` ``/api/ps`` reports for the loaded model (the server's
   default: ``OLLAMA_CONTEXT_LENGTH``, or the one Ollama picked from the memory it has);
   a model not loaded yet is loaded first (``/api/generate`` without a prompt, as the first
   call would load it);
4. else (an Ollama whose ``/api/ps`` has no ``context_length``, before 0.11) 2048, the
   smallest default Ollama has had (4096 since 0.6.7): never more than it runs with.

``tool_calling``, ``reasoning_output`` and ``image_inputs`` are the model's
``capabilities`` (``tools``, ``thinking``, ``vision``); a forced tool call and a JSON schema
go through ``format`` (a grammar), so ``tool_choice`` and ``structured_output`` hold for
every model.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models import ModelProfile

from langchain_localllm._core.base.profile import TEXT_CHAT, ProfileReader, output_limit

__all__ = ["OLLAMA_PROFILE"]

#: The smallest context Ollama has run a model with by default (2048 before 0.6.7, 4096 since).
SMALLEST_DEFAULT_CONTEXT = 2048


def _context(chat: Any, show: dict[str, Any]) -> int | None:
    """The context ``chat``'s requests run with (see the module docstring); ``show`` is the
    model's ``/api/show``."""
    trained = next(
        (
            value
            for key, value in (show.get("model_info") or {}).items()
            if key.endswith(".context_length") and isinstance(value, int)
        ),
        None,
    )
    options = chat.options or {}
    context = chat.num_ctx if chat.num_ctx is not None else options.get("num_ctx")
    if not isinstance(context, int):
        match = re.search(r"^\s*num_ctx\s+(\d+)", str(show.get("parameters") or ""), re.MULTILINE)
        context = int(match.group(1)) if match else _running_context(chat)
    if context is None:
        context = SMALLEST_DEFAULT_CONTEXT
    return min(context, trained) if trained else context


def _running_context(chat: Any) -> int | None:
    """The context ``/api/ps`` reports for the model, loading it first (Ollama's "load a model"
    request: ``/api/generate`` without a prompt) if it is not loaded."""
    name = chat.model if ":" in chat.model.rsplit("/", 1)[-1] else f"{chat.model}:latest"
    for attempt in range(2):
        for running in chat.ollama_client.running_models():
            if name in (running.get("name"), running.get("model")) and isinstance(
                running.get("context_length"), int
            ):
                return int(running["context_length"])
        if attempt == 0:
            chat.client.post_json("/api/generate", {"model": chat.model}, model=chat.model)
    return None  # an Ollama older than /api/ps's context_length


def _read(chat: Any) -> ModelProfile:
    show = chat.ollama_client.cached_show(chat.model)
    context = _context(chat, show)
    profile: ModelProfile = {
        **TEXT_CHAT,
        "image_url_inputs": False,  # the package never fetches a URL: images go inline (base64)
        "audio_inputs": False,
        "tool_choice": True,
        "structured_output": True,
        "tool_call_streaming": True,
    }
    if context is not None:
        profile["max_input_tokens"] = context
    options = chat.options or {}
    cap = next(
        (v for v in (chat.num_predict, options.get("num_predict"), chat.max_tokens) if v is not None), None
    )
    limit = output_limit(cap, context)
    if limit is not None:
        profile["max_output_tokens"] = limit
    capabilities = show.get("capabilities")
    if isinstance(capabilities, list):
        profile["tool_calling"] = "tools" in capabilities
        profile["reasoning_output"] = "thinking" in capabilities
        profile["image_inputs"] = "vision" in capabilities
    name = (show.get("model_info") or {}).get("general.name")
    if isinstance(name, str) and name:
        profile["name"] = name
    return profile


OLLAMA_PROFILE = ProfileReader(
    inputs=(
        "model",
        "base_url",
        "headers",
        "client_kwargs",
        "num_ctx",
        "num_predict",
        "max_tokens",
        "options",
    ),
    read=_read,
)
"""The profile reader of ``ChatOllama``."""
