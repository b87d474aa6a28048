"""What the in-process chat models share (``ChatLlamaCpp``, ``ChatGPT4All``): turning
messages into the model's prompt, and the runtime's text stream into chat deltas.

The prompt comes from, in order: the registry format named by ``chat_format``; the
model's own chat template (the GGUF's ``tokenizer.chat_template``, rendered in the
sandbox); the registry format whose name patterns match the model's name (with a
warning saying so); else a :class:`MissingChatTemplateError` — never a silent guess.
Consecutive turns of one role (a summary turn put before a user turn by middleware) are
joined into one for templates that need roles to alternate. Generation stops at the
format's end-of-turn strings (the runtime also stops at its end-of-generation tokens),
and ``<think>...</think>`` (or the format's own markers) is split out of the answer as
reasoning, also when the template opens the thinking block in the prompt.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_localllm._core.base.chat import (
    ChatDelta,
    LocalChatModel,
    ReasoningSplitter,
    messages_to_dicts,
)
from langchain_localllm.errors import InvalidMessagesError, MissingChatTemplateError
from langchain_localllm.prompts import FORMATS, ChatFormat, get_chat_format
from langchain_localllm.prompts.chat_template import (
    ChatTemplateError,
    ChatTemplateLimitError,
    render_chat_template,
)
from langchain_localllm.prompts.detect import format_from_chat_template, format_from_model_name

#: Per-call keyword arguments the prompt rendering takes (the rest go to sampling).
PROMPT_CALL_ARGS = ("chat_template_kwargs", "tools", "reasoning")


@dataclass(frozen=True)
class ChatPrompt:
    """A rendered conversation, ready for the runtime."""

    text: str
    """The prompt text, special tokens included as text."""
    stop: tuple[str, ...]
    """End-of-turn strings of the format."""
    reasoning: tuple[str, str]
    """Markers around reasoning."""
    starts_in_reasoning: bool
    """The prompt ends by opening the reasoning block (``<think>\\n``)."""
    source: str
    """Where the layout came from (for messages): "the model's chat template", "chatml"..."""

    def splitter(self) -> ReasoningSplitter:
        start, end = self.reasoning
        return ReasoningSplitter(start, end, inside=self.starts_in_reasoning)


class InProcessChatModel(LocalChatModel):
    """A chat model whose runtime takes a prompt text (the messages rendered here)."""

    chat_format: str | None = None
    """A registered chat format to lay out the conversation with (``"chatml"``, ...), instead
    of the model's own chat template. Needed for models whose file has no template and
    whose name matches no format."""

    chat_template_kwargs: dict[str, Any] | None = None
    """Extra variables for the chat template, e.g. ``{"enable_thinking": False}`` (Qwen3).
    Per call: ``invoke(..., chat_template_kwargs={...})``, merged over these."""

    reasoning: bool | None = None
    """Whether a model that can think first does (the template's ``enable_thinking``). None
    and True: it does, as llama.cpp has it by default; False: it answers at once. An
    ``enable_thinking`` in ``chat_template_kwargs`` wins. Per call: ``invoke(..., reasoning=False)``."""

    # --- what subclasses provide -----------------------------------------------------

    def _own_chat_template(self) -> str | None:
        """The model file's chat template, if it has one."""
        raise NotImplementedError

    def _special_token_texts(self) -> tuple[str, str]:
        """The texts of the model's BOS and EOS tokens (as templates expect them)."""
        raise NotImplementedError

    def _count_prompt(self, text: str) -> int:
        """Tokens of a prompt text as the runtime counts them (what it adds, BOS, included)."""
        return int(self.get_num_tokens(text))

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        """Tokens of the conversation as a call runs it: the tools described as the call
        describes them, laid out by the model's chat template (with the generation prompt)
        and counted by its own tokenizer, BOS included: the ``input_tokens`` the same call
        reports. Any list is counted, also one the template refuses (a slice starting with an
        assistant or tool message): see ``_core.message_tokens`` for how, and the bound."""
        from langchain_localllm._inprocess.message_tokens import (  # a cycle
            count_conversation,
            inprocess_count,
        )

        return count_conversation(messages, inprocess_count(self, tools), self._count_prompt)

    # --- prompt --------------------------------------------------------------------------

    def _chat_layout(self) -> tuple[str, ChatFormat | None, str]:
        """``(template, registry format or None, description)`` for this model."""
        if self.chat_format is not None:
            fmt = get_chat_format(self.chat_format)
            return fmt.template, fmt, f"the {fmt.name!r} chat format"
        own = self._own_chat_template()
        if own:
            detected = format_from_chat_template(own)
            return own, FORMATS.get(detected) if detected else None, "the model's chat template"
        by_name = format_from_model_name(self.model_name)
        if by_name is not None and by_name != "plain":
            warnings.warn(
                f"{self.model_name} has no chat template in its file; laying the conversation out in "
                f"the {by_name!r} format, chosen from the model's name. Pass chat_format=... to choose "
                "it yourself (and silence this warning).",
                stacklevel=5,
            )
            fmt = FORMATS[by_name]
            return fmt.template, fmt, f"the {by_name!r} chat format (from the model's name)"
        known = ", ".join(sorted(n for n in FORMATS if n != "plain"))
        raise MissingChatTemplateError(
            f"{type(self).__name__}: {self.model_name} has no chat template in its file and its name "
            f"matches no known chat format, so there is no right way to lay out a conversation for "
            f"it. Pass chat_format= one of {known} (or register the model's format with "
            "register_chat_format), or use the plain-completion LLM class for a base model.",
            model=self.model_name,
        )

    def _chat_prompt(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> ChatPrompt:
        """Render ``messages`` (pops the prompt's per-call arguments from ``kwargs``)."""
        dicts = messages_to_dicts(messages)
        for message in dicts:
            if isinstance(message.get("content"), list) and any(
                part.get("type") != "text" for part in message["content"]
            ):
                raise InvalidMessagesError(
                    f"{type(self).__name__} runs text-only models and got a message with an image "
                    "(or another non-text part). Send text only, or use a vision model served by "
                    "Ollama (ChatOllama).",
                )
            if isinstance(message.get("content"), list):
                message["content"] = "".join(part.get("text", "") for part in message["content"])
        reasoning = kwargs.pop("reasoning", self.reasoning)
        template_kwargs = {
            "enable_thinking": reasoning is not False,  # llama.cpp's default: on
            **(self.chat_template_kwargs or {}),
            **(kwargs.pop("chat_template_kwargs", None) or {}),
        }
        tools = kwargs.pop("tools", None)
        template, fmt, source = self._chat_layout()
        bos, eos = self._special_token_texts()
        try:
            try:
                text = render_chat_template(
                    template, dicts, tools=tools, bos_token=bos, eos_token=eos, **template_kwargs
                )
            except ChatTemplateLimitError:
                raise
            except ChatTemplateError:
                joined = _joined_turns(dicts)  # e.g. a summary turn before a user turn (middleware)
                if len(joined) == len(dicts):
                    raise
                text = render_chat_template(
                    template, joined, tools=tools, bos_token=bos, eos_token=eos, **template_kwargs
                )
        except ChatTemplateLimitError:
            raise  # an untrusted template stopped by the sandbox: not a problem of the messages
        except ChatTemplateError as error:
            raise InvalidMessagesError(
                f"{type(self).__name__}: {source} cannot render this conversation: {error}. "
                "Check the roles and their order (some templates need user/assistant turns to "
                "alternate, or accept no system message).",
            ) from error
        reasoning = fmt.reasoning if fmt is not None else ("<think>", "</think>")
        return ChatPrompt(
            text=text,
            stop=fmt.stop if fmt is not None else (),
            reasoning=reasoning,
            starts_in_reasoning=text.rstrip().endswith(reasoning[0]),
            source=source,
        )


def _joined_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive user (or system, or assistant) turns of text joined into one, for templates
    that need roles to alternate: nothing is dropped, the texts are separated by a blank line."""
    out: list[dict[str, Any]] = []
    for message in messages:
        last = out[-1] if out else None
        if (
            last is not None
            and last["role"] == message["role"]
            and message["role"] in ("user", "system", "assistant")
            and not last.get("tool_calls")
            and not message.get("tool_calls")
        ):
            out[-1] = {**last, "content": f"{last.get('content') or ''}\n\n{message.get('content') or ''}"}
        else:
            out.append(message)
    return out


def deltas_from_text(
    pieces: Iterator[tuple[str, dict[str, Any] | None]], prompt: ChatPrompt
) -> Iterator[ChatDelta]:
    """Chat deltas from a runtime's ``(text, final info or None)`` stream, reasoning split out.

    The final info holds ``finish_reason``, ``usage`` (``prompt_tokens``,
    ``completion_tokens``) and ``timings``, as the in-process LLMs report them.
    """
    splitter = prompt.splitter()
    for text, info in pieces:
        reasoning, answer = splitter.feed(text)
        if info is None:
            if reasoning or answer:
                yield ChatDelta(text=answer, reasoning=reasoning)
            continue
        held_reasoning, held_answer = splitter.flush()
        usage = info.get("usage") or {}
        finish = info.get("finish_reason") or "stop"
        answer += held_answer
        reasoning += held_reasoning
        if finish == "length" and splitter.inside:
            warnings.warn(
                "The model used the whole token budget (max_tokens) thinking and gave no answer "
                "(finish_reason='length'); raise max_tokens.",
                stacklevel=2,
            )
        yield ChatDelta(
            text=answer,
            reasoning=reasoning,
            finish_reason=finish,
            usage=(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            timings=info.get("timings"),
        )
        return
