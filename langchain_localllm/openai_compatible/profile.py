"""``ChatOpenAICompatible.profile`` (and ``ChatLlamafile``'s): read from the server.

``max_input_tokens`` is what the server says its context is: llama-server's per-slot
``n_ctx`` (``/props``: the ``-c`` it was started with, divided among its ``--parallel``
slots; in router mode, the served model's), vLLM's ``max_model_len`` (``/v1/models``); for
a fleet, the smallest of its servers' (a request may go to any of them). A server that
says nothing (LM Studio, ...) gets no ``max_input_tokens``: pass
``profile={"max_input_tokens": ...}``.

Forced tool calls and JSON schemas are decoded under the server's own constraint (a
schema, a grammar), so ``tool_choice`` and ``structured_output`` hold. llama-server also
says what the model takes (``modalities``: ``image_inputs``, ``audio_inputs``,
``video_inputs``), and its chat template whether it reasons (``reasoning_output``) and
lays out tool calls (``tool_calling``, from ``chat_template_caps``); other servers do not
say, and those keys are left out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from langchain_core.language_models import ModelProfile

from langchain_localllm._core.base.profile import TEXT_CHAT, ProfileReader, output_limit, template_reasons

__all__ = ["OPENAI_COMPATIBLE_PROFILE"]


def _server_context(chat: Any) -> tuple[int | None, dict[str, Any] | None]:
    """The context of the server (the smallest of a fleet's) and llama-server's ``/props``."""
    if not isinstance(chat.base_url, str):
        contexts: list[int] = []
        props = None
        for url in chat.base_url:
            context, props = _server_context(chat.model_copy(update={"base_url": url}))
            if context is None:
                return None, props  # a server that does not say: the fleet's context is unknown
            contexts.append(context)
        return min(contexts), props
    info = chat.server_info()
    props = info.props
    if props is not None and props.get("role") == "router":
        # llama-server's router mode serves several models, each in a server of its own:
        # the model's /props says its context (asking loads the model, as a call would).
        answer = chat.client.get_json(f"/props?model={quote(chat.model_name)}")
        props = answer if isinstance(answer, dict) else None
        settings = (props or {}).get("default_generation_settings") or {}
        context = settings.get("n_ctx")
        return (context if isinstance(context, int) and context > 0 else None), props
    return (info.n_ctx if info.n_ctx else None), props


def _read(chat: Any) -> ModelProfile:
    context, props = _server_context(chat)
    profile: ModelProfile = {
        **TEXT_CHAT,
        "tool_choice": True,
        "structured_output": True,
        "tool_call_streaming": True,
    }
    if context is not None:
        profile["max_input_tokens"] = context
    limit = output_limit(chat.max_tokens, context)
    if limit is not None:
        profile["max_output_tokens"] = limit
    if props is not None:  # llama-server
        modalities = props.get("modalities") or {}
        profile["image_inputs"] = bool(modalities.get("vision"))
        profile["audio_inputs"] = bool(modalities.get("audio"))
        profile["video_inputs"] = bool(modalities.get("video"))
        caps = props.get("chat_template_caps") or {}
        template = props.get("chat_template")
        profile["reasoning_output"] = template_reasons(template) or bool(
            caps.get("supports_reasoning_effort") or caps.get("supports_preserve_reasoning")
        )
        if "supports_tool_calls" in caps:  # the template writes the model's tool calls
            profile["tool_calling"] = bool(caps["supports_tool_calls"])
    return profile


OPENAI_COMPATIBLE_PROFILE = ProfileReader(
    inputs=("base_url", "model", "dialect", "headers", "api_key", "max_tokens"),
    read=_read,
)
"""The profile reader of ``ChatOpenAICompatible`` and ``ChatLlamafile``."""
