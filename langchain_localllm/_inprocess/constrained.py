"""Tool calls and structured answers for runtimes that decode under our grammar (in process).

:func:`constrained_deltas` drives one chat turn given a ``generate(prompt, grammar,
extra_stop)`` function of the runtime. A constrained answer (the tool layer's
:class:`~langchain_localllm._core.tools.calling.Constraint`) is carried out in process by
:class:`GrammarDecoding`, the in-process strategy of the tool layer:

- a forced tool choice: the answer is generated under a grammar allowing only calls to
  the forced tools, in the model's own syntax, with arguments valid by their schemas;
- a response format: the answer is generated under the schema's grammar;
- ``tool_choice="auto"``: the model writes freely; when it opens a tool call in its
  syntax, generation stops and the call is generated again from that point under the
  grammar of the bound tools -- so a call the model chose to make always parses and
  names a bound tool.

Reasoning models think first: when the prompt opens the thinking block, the thoughts
are generated unconstrained up to the closing marker and the grammar applies to the
answer only.

:func:`tool_plan` and :func:`prepare_tool_messages` decide how the model learns about the
tools: through its chat template when the template renders them (and its tool-call
syntax is known), else through a system message describing the tools and the Hermes
``<tool_call>`` syntax, with earlier calls and tool results written in that syntax.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_localllm._core.base.chat import ChatDelta
from langchain_localllm._core.decoding.json_grammar import json_schema_grammar
from langchain_localllm._core.decoding.pattern import Grammar as IRGrammar
from langchain_localllm._core.tools.calling import Constraint, ToolRequest
from langchain_localllm._inprocess.chat import ChatPrompt
from langchain_localllm.prompts.tool_calls import (
    ParsedOutput,
    ToolCallParser,
    ToolCallSyntax,
    detect_tool_call_syntax,
    get_tool_call_syntax,
)
from langchain_localllm.prompts.tool_calls.grammar import forced_syntax, tool_call_grammar, tool_call_ir

__all__ = [
    "Generate",
    "GrammarDecoding",
    "ToolPlan",
    "constrained_deltas",
    "prepare_tool_messages",
    "tool_plan",
    "uses_tools",
]

#: ``generate(prompt_text, grammar_or_None, extra_stop) -> (text, final info or None)``; the
#: grammar is GBNF, or the constraint's grammar in the IR, which the runtime decodes
#: budget-aware (valid within the call's ``max_tokens``, or a typed error before any token).
Generate = Callable[[str, "str | IRGrammar | None", list[str]], Iterator[tuple[str, "dict[str, Any] | None"]]]

_PROBE = "localllm_probe_tool_7f3a"


@dataclass(frozen=True)
class ToolPlan:
    """How a model is told about tools and writes its calls."""

    syntax: ToolCallSyntax
    """The syntax its calls are parsed in (and forced calls are written in)."""
    native: bool
    """Its chat template renders the tools and calls itself."""
    system_role: bool = True
    """Its chat template accepts a system message (Gemma's and Mistral's do not)."""


@lru_cache(maxsize=64)
def tool_plan(template: str, render: Callable[..., str] | None = None) -> ToolPlan:
    """The plan for a chat template: native when it renders tools and its syntax is known."""
    syntax = detect_tool_call_syntax(template)
    native = False
    system_role = True
    if render is not None:
        probe = {"type": "function", "function": {"name": _PROBE, "parameters": {"type": "object"}}}
        try:
            native = _PROBE in render(template, [{"role": "user", "content": "hi"}], tools=[probe])
        except Exception:
            native = False
        try:
            render(template, [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}])
        except Exception:
            system_role = False
    if syntax is None or not native or syntax.layout is None:
        return ToolPlan(get_tool_call_syntax("hermes"), native=False, system_role=system_role)
    return ToolPlan(syntax, native=True, system_role=system_role)


TOOL_INSTRUCTIONS = (
    "You can call these tools (JSON schemas):\n<tools>\n{tools}\n</tools>\n\n"
    "To call a tool, answer with one block per call, exactly like this:\n"
    '<tool_call>\n{{"name": "<tool name>", "arguments": {{<arguments as JSON>}}}}\n</tool_call>\n'
    "Tool results come back in <tool_response> blocks. If no tool is needed, answer directly."
)


def prepare_tool_messages(
    messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]], plan: ToolPlan
) -> tuple[list[BaseMessage], list[dict[str, Any]] | None]:
    """Messages (and tools for the template) that tell the model about ``tools``.

    A native template gets the tools and the messages as they are. Otherwise the tools
    are described in the system message, earlier calls are written as ``<tool_call>``
    blocks and tool results as ``<tool_response>`` user turns (templates without a tool
    role render them, and user/assistant turns keep alternating).
    """
    if plan.native:
        return list(messages), list(tools) or None
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            blocks = "\n".join(
                "<tool_call>\n" + json.dumps({"name": c["name"], "arguments": c["args"]}) + "\n</tool_call>"
                for c in message.tool_calls
            )
            text = message.text
            out.append(AIMessage(f"{text}\n{blocks}" if text else blocks))
        elif isinstance(message, ToolMessage):
            response = f"<tool_response>\n{message.text}\n</tool_response>"
            if (
                out
                and isinstance(out[-1], HumanMessage)
                and str(out[-1].content).startswith("<tool_response>")
            ):
                out[-1] = HumanMessage(f"{out[-1].content}\n{response}")
            else:
                out.append(HumanMessage(response))
        else:
            out.append(message)
    if tools:
        described = TOOL_INSTRUCTIONS.format(tools="\n".join(json.dumps(t["function"]) for t in tools))
        if out and isinstance(out[0], SystemMessage):
            out[0] = SystemMessage(f"{out[0].text}\n\n{described}")
        else:
            out.insert(0, SystemMessage(described))
        if not plan.system_role:  # the template has no system turn: lead the first user turn
            system = out.pop(0)
            first = next((i for i, m in enumerate(out) if isinstance(m, HumanMessage)), None)
            if first is None:
                out.insert(0, HumanMessage(system.text))
            else:
                out[first] = HumanMessage(f"{system.text}\n\n{out[first].text}")
    return out, None


@dataclass(frozen=True)
class GrammarDecoding:
    """In process: a constraint as a grammar in the IR, which the runtime decodes budget-aware
    (the sampler enforces it token by token, narrowed as the budget requires)."""

    syntax: ToolCallSyntax | None
    """The model's tool-call syntax: a forced call is written in it."""

    def fields(self, constraint: Constraint) -> dict[str, Any]:
        if constraint.forced_tools:
            forced = list(constraint.forced_tools)
            return {"grammar": tool_call_ir(forced, self.syntax, parallel=constraint.parallel)}
        return {"grammar": json_schema_grammar(constraint.schema)}


def uses_tools(messages: Sequence[BaseMessage]) -> bool:
    """Whether the conversation already holds tool calls or tool results."""
    return any(isinstance(m, ToolMessage) or (isinstance(m, AIMessage) and m.tool_calls) for m in messages)


def constrained_deltas(
    generate: Generate,
    prompt: ChatPrompt,
    request: ToolRequest,
    plan: ToolPlan | None,
    constraint: Constraint | None,
    *,
    constrain: bool = True,
) -> Iterator[ChatDelta]:
    """One chat turn under ``request`` and its ``constraint`` (see the module docstring).

    ``constrain=False`` is for runtimes without grammars: calls the model writes are
    parsed as written (a constraint must have been refused before).
    """
    usage = _Usage()
    text = prompt.text
    syntax = plan.syntax if plan is not None else None
    if constraint is not None and prompt.starts_in_reasoning:
        end = prompt.reasoning[1]
        thoughts: list[str] = []
        for piece, info in generate(text, None, [end]):
            thoughts.append(piece)
            if info is not None:
                usage.add(info)
                if info.get("finish_reason") == "length":
                    yield ChatDelta(reasoning=piece, **usage.final(info))
                    return
            if piece:
                yield ChatDelta(reasoning=piece)
        text = f"{text}{''.join(thoughts)}{end}\n\n"
    if constraint is not None:
        grammar = GrammarDecoding(syntax).fields(constraint)["grammar"]
        parser = ToolCallParser(forced_syntax(syntax) if constraint.forced_tools else None)
        yield from _parsed(generate(text, grammar, []), parser, usage)
        return
    yield from _auto(generate, prompt, request, syntax, usage, constrain)


def _auto(
    generate: Generate,
    prompt: ChatPrompt,
    request: ToolRequest,
    syntax: ToolCallSyntax | None,
    usage: _Usage,
    can_constrain: bool,
) -> Iterator[ChatDelta]:
    tools = request.offered_tools
    active = syntax if tools else None
    parser = ToolCallParser(active)
    splitter = prompt.splitter()
    constrain = can_constrain and active is not None and active.layout is not None and not active.implicit
    raw: list[str] = []
    stream = generate(prompt.text, None, [])
    for piece, info in stream:
        raw.append(piece)
        reasoning, answer = splitter.feed(piece)
        if info is not None:
            held_reasoning, held_answer = splitter.flush()
            reasoning += held_reasoning
            answer += held_answer
        out = parser.feed(answer)
        if constrain and parser.section_text is not None and info is None:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # the model opened a call: constrain the rest of it
            section = parser.section_text
            produced = "".join(raw)
            before = produced[: produced.rfind(section)] if section else produced
            if out.content or reasoning:
                yield ChatDelta(text=out.content, reasoning=reasoning)
            grammar = tool_call_grammar(tools, syntax, parallel=request.parallel)
            yield from _parsed(generate(prompt.text + before, grammar, []), ToolCallParser(syntax), usage)
            return
        if info is not None:
            rest = parser.finish()
            out.content += rest.content
            out.calls += rest.calls
            usage.add(info)
            yield _with_calls(ChatDelta(text=out.content, reasoning=reasoning, **usage.final(info)), out)
            return
        if out.content or reasoning or out.calls:
            yield _with_calls(ChatDelta(text=out.content, reasoning=reasoning), out)


def _parsed(
    pieces: Iterator[tuple[str, dict[str, Any] | None]], parser: ToolCallParser, usage: _Usage
) -> Iterator[ChatDelta]:
    for piece, info in pieces:
        out = parser.feed(piece)
        if info is None:
            if out.content or out.calls:
                yield _with_calls(ChatDelta(text=out.content), out)
            continue
        rest = parser.finish()
        out.content += rest.content
        out.calls += rest.calls
        usage.add(info)
        yield _with_calls(ChatDelta(text=out.content, **usage.final(info)), out)
        return


def _with_calls(delta: ChatDelta, out: ParsedOutput) -> ChatDelta:
    if out.calls:
        delta.extra = {"tool_call_chunks": out.tool_call_chunks()}
    return delta


class _Usage:
    """Token counts summed over the generation phases of one turn."""

    def __init__(self) -> None:
        self.prompt: int | None = None
        self.generated = 0

    def add(self, info: dict[str, Any]) -> None:
        usage = info.get("usage") or {}
        if self.prompt is None:
            self.prompt = int(usage.get("prompt_tokens", 0))
        self.generated += int(usage.get("completion_tokens", 0))

    def final(self, info: dict[str, Any]) -> dict[str, Any]:
        return {
            "finish_reason": info.get("finish_reason") or "stop",
            "usage": (self.prompt or 0, self.generated),
            "timings": info.get("timings"),
            # budget-aware decoding: whether (and where) the budget narrowed the grammar
            "metadata": {key: info[key] for key in _BUDGET_KEYS if key in info},
        }


_BUDGET_KEYS = ("budget_narrowed", "token_budget")
