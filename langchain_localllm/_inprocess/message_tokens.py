"""``get_num_tokens_from_messages``: the prompt a call would run, counted the way the
runtime counts it (in process; llama-server through ``/apply-template`` and ``/tokenize``).

The count of a conversation is made exactly as a call lays it out: the tools described the
way the call describes them (through the chat template when it renders tools, else in a
system message, with earlier calls and results rewritten), the messages rendered by the
model's chat template with the generation prompt and the template variables of the instance
(``enable_thinking`` included), then tokenized by the model's own tokenizer with what the
runtime adds (a BOS the template did not write). So the count equals the ``input_tokens``
that the same call reports in ``usage_metadata``.

A count is never an error. Middleware counts slices of a conversation
(``SummarizationMiddleware`` counts ``messages[i:]``, which may start with an assistant or a
tool message) that strict templates refuse ("roles must alternate"). Such a list is counted
as the nearest conversation the template accepts:

1. an empty user turn (:data:`PLACEHOLDER`) is put before a list that does not start with
   the user: over the slice's own tokens by that turn's markers (a few tokens), and never
   more than a slice one user turn longer (whose turn has the same markers and a text);
2. else consecutive turns of the same role are also joined into one (a few tokens of turn
   markers fewer per join);
3. else (a template that refuses the roles themselves, or no template at all) the messages'
   text with their tool calls is counted with the tokenizer in one piece: the text is all
   there, the template's turn markers are not (a few tokens a message).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import convert_to_messages, count_tokens_approximately
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_localllm._inprocess.chat import ChatPrompt
from langchain_localllm._inprocess.constrained import prepare_tool_messages, tool_plan, uses_tools
from langchain_localllm.errors import (
    InvalidMessagesError,
    InvalidParameterError,
    MissingChatTemplateError,
    ServerResponseError,
)
from langchain_localllm.prompts.chat_template import render_chat_template

__all__ = ["PLACEHOLDER", "count_conversation", "estimated_tokens", "inprocess_count", "turn_prompt"]

#: What a chat template (ours, or a server's: a 400 or 500 answer) says when it refuses a conversation.
_REFUSED = (InvalidMessagesError, MissingChatTemplateError, InvalidParameterError, ServerResponseError)

PLACEHOLDER = ""
"""The text of the user turn put before a counted slice that does not start with the user."""


def turn_prompt(chat: Any, messages: Sequence[BaseMessage], tools: Sequence[Any] | None) -> ChatPrompt:
    """The prompt a call of ``chat`` with ``messages`` (and ``tools`` bound) runs."""
    offered = [convert_to_openai_tool(t) for t in tools or ()]
    kwargs: dict[str, Any] = {}
    turn = list(messages)
    if offered or uses_tools(turn):
        plan = tool_plan(chat._chat_layout()[0], render_chat_template)
        turn, template_tools = prepare_tool_messages(turn, offered, plan)
        if template_tools:
            kwargs["tools"] = template_tools
    return chat._chat_prompt(turn, kwargs)


def count_conversation(
    messages: Sequence[Any],
    count: Callable[[list[BaseMessage]], int],
    count_text: Callable[[str], int],
) -> int:
    """Tokens of ``messages`` (any message-likes), never an error about the list itself.

    ``count`` counts a conversation exactly as a call runs it, raising a typed error when the
    chat template refuses it; ``count_text`` counts plain text with the model's tokenizer.
    Refused lists are counted as described in the module docstring.
    """
    turn = convert_to_messages(list(messages))
    if not turn:
        return 0
    for candidate in (turn, _user_first(turn), _joined(_user_first(turn))):
        try:
            return count(candidate)
        except _REFUSED:
            continue
    return count_text("\n".join(_as_text(m) for m in turn))


def _as_text(message: BaseMessage) -> str:
    calls = getattr(message, "tool_calls", None)
    text = f"{message.type}: {message.text}"
    return f"{text}\n{json.dumps(calls, default=str)}" if calls else text


def inprocess_count(chat: Any, tools: Sequence[Any] | None) -> Callable[[list[BaseMessage]], int]:
    """``count`` for :func:`count_conversation` of an in-process chat model: the prompt
    :func:`turn_prompt` gives, counted by ``chat._count_prompt`` (the runtime's count)."""
    return lambda messages: int(chat._count_prompt(turn_prompt(chat, messages, tools).text))


def estimated_tokens(messages: Sequence[Any], tools: Sequence[Any] | None) -> int:
    """An estimate, for runtimes that cannot count a conversation without running the model
    (Ollama's API has no tokenizer; most OpenAI-compatible servers' neither).

    LangChain's ``count_tokens_approximately``: 4 characters a token plus 3 tokens a message
    (tool schemas and calls included as text), scaled up by what the runtime reported on the
    most recent AI message of the list (its ``usage_metadata["total_tokens"]`` over the
    estimate up to it, at most x1.25). Measured on English prose with Gemma 3's tokenizer and
    its own template: 30-35% over the server's count (the safe side: middleware summarises a
    little early). Text denser than 4 characters a token is undercounted: code (about 3),
    digits, non-Latin scripts (1 to 2 characters a token: up to 4x under). For such text leave
    more room (a lower ``("fraction", ...)`` trigger), or count exactly with ``ChatLlamaCpp``
    on the model's GGUF file.
    """
    tools_list = list(tools) if tools else None
    return count_tokens_approximately(list(messages), tools=tools_list, use_usage_metadata_scaling=True)


def _user_first(messages: list[BaseMessage]) -> list[BaseMessage]:
    """``messages`` with a placeholder user turn first, unless they start with the user."""
    leading = 0
    while leading < len(messages) and isinstance(messages[leading], SystemMessage):
        leading += 1
    if leading < len(messages) and isinstance(messages[leading], HumanMessage):
        return messages
    return [*messages[:leading], HumanMessage(PLACEHOLDER), *messages[leading:]]


def _joined(messages: list[BaseMessage]) -> list[BaseMessage]:
    """Consecutive user, assistant or system turns joined into one (tool results are kept)."""
    out: list[BaseMessage] = []
    for message in messages:
        last = out[-1] if out else None
        if (
            last is not None
            and type(last) is type(message)
            and not isinstance(message, ToolMessage)
            and not (isinstance(message, AIMessage) and (message.tool_calls or last.tool_calls))  # type: ignore[attr-defined]
        ):
            out[-1] = type(message)(f"{last.text}\n\n{message.text}")
        else:
            out.append(message)
    return out
