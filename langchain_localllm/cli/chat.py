"""``localllm chat``: an interactive conversation in the model's own chat format.

With a chat model (llamacpp, gpt4all, ollama) the history is a list of messages the model
lays out itself; its reasoning is shown dimmed (or hidden with
``--hide-reasoning``). With a plain LLM (llamafile) the conversation is formatted here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from langchain_localllm.cli.console import note, out

if TYPE_CHECKING:
    from langchain_core.language_models import BaseLLM

EXIT_COMMANDS = ("/exit", "/quit", "/bye")
HELP = (
    "Type a message and press Enter; /system TEXT sets the system message; /reset forgets the "
    "conversation; /exit or Ctrl-D ends."
)
DIM, RESET = "\033[2m", "\033[0m"


def _jinja_template(llm: BaseLLM) -> str | None:
    """The model's own Jinja chat template (GGUF ``tokenizer.chat_template`` / llama-server)."""
    method = getattr(llm, "chat_template", None)
    template = method() if callable(method) else None
    # Jinja (GGUF, llama-server) uses {% ... %}; Ollama's Go templates never do.
    if isinstance(template, str) and "{%" in template and "messages" in template:
        return template
    return None


class Conversation:
    """The chat history and how to turn it into the model's prompt."""

    def __init__(self, llm: BaseLLM, system: str | None = None) -> None:
        self.llm = llm
        self.system = system
        self.messages: list[dict[str, str]] = []
        self.template, self.format_name = self._choose_template()

    def _choose_template(self) -> tuple[str | None, str]:
        template = _jinja_template(self.llm)
        if template is not None:
            return template, "the model's chat template"
        from langchain_localllm.prompts import FORMATS, prompt_format

        name = prompt_format(self.llm)
        fmt = FORMATS.get(name)
        return (fmt.template if fmt is not None and name != "plain" else None), name

    def prompt(self, user: str) -> str:
        """The prompt for the next answer: the history plus ``user``, in the model's format."""
        messages = [*self.messages, {"role": "user", "content": user}]
        if self.system:
            messages = [{"role": "system", "content": self.system}, *messages]
        if self.template is not None:
            from langchain_localllm.prompts import ChatTemplateError, render_chat_template

            try:
                # The runtimes add the BOS token themselves when tokenizing.
                return render_chat_template(self.template, messages, bos_token="", eos_token="</s>")
            except ChatTemplateError as error:
                note(f"the chat template failed ({error}); using a plain transcript.")
                self.template = None
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n".join([*lines, "Assistant:"])

    @property
    def stop(self) -> list[str]:
        """Stop sequences that end a turn in a plain transcript."""
        return ["\nUser:"] if self.template is None else []

    def add(self, user: str, answer: str) -> None:
        self.messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer.strip()}]


def _lines(stdin: TextIO, interactive: bool) -> Iterator[str]:
    while True:
        if interactive:
            try:
                line = input("> ")
            except EOFError:
                print(file=sys.stderr)
                return
        else:
            raw = stdin.readline()
            if not raw:
                return
            line = raw.rstrip("\n")
        yield line


def run_chat(
    llm: Any, *, system: str | None = None, callbacks: list[Any] | None = None, show_reasoning: bool = True
) -> None:
    """Read messages from stdin until EOF or ``/exit``; stream each answer to stdout."""
    from langchain_core.language_models import BaseChatModel

    if isinstance(llm, BaseChatModel):
        run_chat_model(llm, system=system, callbacks=callbacks, show_reasoning=show_reasoning)
        return
    conversation = Conversation(llm, system=system)
    # Ollama would wrap the prompt in its template again: send it as is.
    raw = {"raw": True} if "raw" in getattr(type(llm), "model_fields", {}) else {}
    interactive = sys.stdin.isatty()
    if interactive:
        name = getattr(llm, "model_name", type(llm).__name__)
        note(f"chat with {name} ({conversation.format_name}). {HELP}")
    for line in _lines(sys.stdin, interactive):
        text = line.strip()
        if not text:
            continue
        if text.lower() in EXIT_COMMANDS:
            return
        if text.lower() == "/reset":
            conversation.messages.clear()
            note("conversation cleared.")
            continue
        parts: list[str] = []
        prompt = conversation.prompt(text)
        config: Any = {"callbacks": callbacks}
        for chunk in llm.stream(prompt, stop=conversation.stop or None, config=config, **raw):
            parts.append(chunk)
            out(chunk)
        out("", end="\n")
        conversation.add(text, "".join(parts))


def run_chat_model(
    chat: Any, *, system: str | None = None, callbacks: list[Any] | None = None, show_reasoning: bool = True
) -> None:
    """The chat loop on a chat model: history as messages, reasoning dimmed (or hidden)."""
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

    history: list[BaseMessage] = []
    interactive = sys.stdin.isatty()
    dim = interactive and sys.stdout.isatty()
    if interactive:
        note(f"chat with {getattr(chat, 'model_name', type(chat).__name__)}. {HELP}")
    for line in _lines(sys.stdin, interactive):
        text = line.strip()
        if not text:
            continue
        if text.lower() in EXIT_COMMANDS:
            return
        if text.lower() == "/reset":
            history.clear()
            note("conversation cleared.")
            continue
        if text.lower().startswith("/system"):
            system = text[len("/system") :].strip() or None
            note(f"system message {'set' if system else 'cleared'}.")
            continue
        messages = [*([SystemMessage(system)] if system else []), *history, HumanMessage(text)]
        answer: Any = None
        thinking = False
        for chunk in chat.stream(messages, config={"callbacks": callbacks}):
            answer = chunk if answer is None else answer + chunk
            reasoning = chunk.additional_kwargs.get("reasoning_content") or ""
            if reasoning and show_reasoning:
                out(f"{DIM}{reasoning}" if dim and not thinking else reasoning, end="")
                thinking = True
            if chunk.content:
                if thinking:
                    out(f"{RESET}\n" if dim else "\n", end="")
                    thinking = False
                out(str(chunk.content), end="")
        if thinking and dim:
            out(RESET, end="")
        out("", end="\n")
        if answer is not None:
            history += [HumanMessage(text), AIMessage(content=answer.content)]
