"""``get_num_tokens_from_messages`` of the OpenAI-compatible chat models.

On llama-server (``ChatLlamafile``, or ``ChatOpenAICompatible`` on a llama-server) the count
is exact: the request body the call would send (messages, tools, template variables) goes
to ``/apply-template``, which renders it with the server's own template and message
handling, and the prompt to ``/tokenize`` with the special tokens the server adds (BOS): the
``input_tokens`` the call reports. Lists the template refuses (a slice starting with an
assistant turn) are counted as ``_core.message_tokens`` describes.

Other servers have no such endpoints in the OpenAI API: their count is
:func:`~langchain_localllm._inprocess.message_tokens.estimated_tokens` (see there for the bound).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_localllm._inprocess.message_tokens import count_conversation, estimated_tokens
from langchain_localllm.errors import MalformedResponseError

__all__ = ["server_message_tokens"]

#: The request fields ``/apply-template`` reads (what shapes the prompt).
_PROMPT_FIELDS = ("model", "messages", "tools", "tool_choice", "chat_template_kwargs", "reasoning_format")


def server_message_tokens(
    chat: Any,
    messages: Sequence[Any],
    tools: Sequence[Any] | None,
    body: Callable[[list[BaseMessage], dict[str, Any]], dict[str, Any]],
) -> int:
    """Tokens of ``messages`` as ``chat``'s server would run them; ``body(messages, call)``
    is the request body a call with keyword arguments ``call`` sends."""
    call: dict[str, Any] = {"tools": [convert_to_openai_tool(t) for t in tools]} if tools else {}
    if chat.server_info().dialect.name != "llama-server":
        return estimated_tokens(messages, tools)

    def count(turn: list[BaseMessage]) -> int:
        request = body(turn, dict(call))
        fields = {k: request[k] for k in _PROMPT_FIELDS if k in request}
        prompt = chat.client.post_json("/apply-template", fields)
        if not isinstance(prompt, dict) or not isinstance(prompt.get("prompt"), str):
            url = chat.client.url("/apply-template")
            raise MalformedResponseError(f"{url} did not answer a prompt: {str(prompt)[:120]}", url=url)
        return count_text(prompt["prompt"])

    def count_text(text: str) -> int:
        # "model" routes the request in llama-server's router mode (ignored by one server).
        request = {"model": chat.model_name, "content": text, "add_special": True}
        answer = chat.client.post_json("/tokenize", request)
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            url = chat.client.url("/tokenize")
            raise MalformedResponseError(f"{url} answered without a 'tokens' list: {answer!r}", url=url)
        return len(tokens)

    return count_conversation(messages, count, count_text)
