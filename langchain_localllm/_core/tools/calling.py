"""Tool calling and structured output for every chat model, written once.

:class:`ToolCalling` (a base of every chat model) gives LangChain's ``bind_tools`` and
``with_structured_output``. Both only bind call arguments -- ``tools``, ``tool_choice``,
``parallel_tool_calls`` and ``response_format``, the names OpenAI-style APIs and
langchain's ``create_agent`` use -- which :func:`tool_request` reads back, normalised, when
the call runs. The semantics are the same on every runtime:

- ``tool_choice="auto"`` (the default with tools): the model may answer or call tools
  in its own syntax; ``"none"``: it answers in text; ``"any"``/``"required"``, a tool's
  name, or ``{"type": "function", "function": {"name": ...}}``: it must call (that) tool.
- ``response_format={"type": "json_schema", "json_schema": {"name", "schema"}}``: the
  answer is JSON valid against the schema; ``{"type": "json_object"}``: any JSON object.

A forced call or a response format makes the answer *constrained*: :func:`answer_constraint`
turns the request into one :class:`Constraint` (the JSON schema the answer must follow,
for a forced call :func:`forced_call_schema`), and the runtime carries it out with its
:class:`ConstrainedDecoding` strategy -- the only part that differs:

- ``ChatLlamaCpp``: a GBNF grammar in process (``_core.constrained_chat.GrammarDecoding``);
- ``ChatOllama``: Ollama's ``format`` (``ollama.tools.OLLAMA_FORMAT``);
- ``ChatOpenAICompatible``, ``ChatLlamafile``: the server dialect's schema field
  (``openai_compatible.dialects.Dialect.fields``);
- ``ChatGPT4All``: a typed refusal (:class:`NoConstrainedDecoding`).

Over HTTP, the constrained answer comes back as JSON and one reader turns a forced call's
JSON into the tool call (``_core.http_chat.ForcedCallReader``). On every runtime, a structured
answer cut off by the token budget is a :class:`~langchain_localllm.errors.TruncatedOutputError`,
never a partial value (the readers ``with_structured_output`` ends with, ``_core.structured``).

Tool-call arguments are bounded: a call whose arguments exceed
:data:`MAX_TOOL_CALL_ARGUMENTS` characters is a
:class:`~langchain_localllm.errors.MalformedResponseError` (checked by the chat base on
every runtime, as the arguments arrive).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool

from langchain_localllm._core.tools.schemas import content_parser, output_schema, tool_args_parser
from langchain_localllm.errors import InvalidParameterError, UnsupportedParameterError

__all__ = [
    "MAX_TOOL_CALL_ARGUMENTS",
    "TOOL_CALL_ARGS",
    "ConstrainedDecoding",
    "Constraint",
    "NoConstrainedDecoding",
    "ToolCalling",
    "ToolRequest",
    "answer_constraint",
    "forced_call_schema",
    "new_call_id",
    "normalize_tool_choice",
    "tool_request",
]

Method = Literal["json_schema", "function_calling", "json_mode"]

#: Per-call arguments that ``bind_tools``/``with_structured_output`` bind (read by ``tool_request``).
TOOL_CALL_ARGS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "ls_structured_output_format",
)

MAX_TOOL_CALL_ARGUMENTS = 1 << 20
"""Most characters of JSON arguments one tool call may have (1 MiB, about 250k tokens: far
beyond what a local model writes in one answer). A server answer with more is refused with a
``MalformedResponseError`` before LangChain parses it."""

_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


# --- what a call asks for ----------------------------------------------------------------


def normalize_tool_choice(tool_choice: Any, tools: Sequence[dict[str, Any]]) -> str:
    """``"auto"``, ``"none"``, ``"required"`` or the name of one of ``tools``.

    Accepts LangChain's forms: None/"auto", "none", "any"/"required"/True, a tool's name,
    and OpenAI's ``{"type": "function", "function": {"name": ...}}``.

    Raises:
        InvalidParameterError: the choice names no bound tool, or is of an unknown form.
    """
    names = [t["function"]["name"] for t in tools]
    if tool_choice is None or tool_choice == "auto":
        return "auto"
    if tool_choice in ("any", "required") or tool_choice is True:
        return "required"
    if tool_choice == "none" or tool_choice is False:
        return "none"
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        if tool_choice.get("type") in ("any", "required"):
            return "required"
        if tool_choice.get("type") in ("auto", "none"):
            return str(tool_choice["type"])
        tool_choice = name
    if isinstance(tool_choice, str) and tool_choice in names:
        return tool_choice
    raise InvalidParameterError(
        f"tool_choice={tool_choice!r} is not one of the tools ({', '.join(names) or 'none bound'}) "
        "nor 'auto', 'none', 'any' or 'required'.",
        parameter="tool_choice",
    )


def _openai_tool_choice(choice: str) -> str | dict[str, Any]:
    """A normalised choice in OpenAI's form, as ``bind_tools`` binds it (a name as a dict)."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


@dataclass(frozen=True)
class ToolRequest:
    """What a call asks for, read from its keyword arguments by :func:`tool_request`."""

    tools: tuple[dict[str, Any], ...] = ()
    """OpenAI-style tool definitions."""
    choice: str = "auto"
    """``"auto"``, ``"none"``, ``"required"`` or a tool's name."""
    parallel_tool_calls: bool | None = None
    """``parallel_tool_calls`` as given (None: not given)."""
    schema: dict[str, Any] | None = None
    """The JSON schema the answer must follow (``response_format`` json_schema)."""
    json_object: bool = False
    """The answer must be a JSON object (``response_format`` json_object)."""

    @property
    def parallel(self) -> bool:
        """Several calls may be made in one answer (only when ``parallel_tool_calls=True``:
        small local models allowed more than one call tend to repeat the same call)."""
        return self.parallel_tool_calls is True

    @property
    def forced_tools(self) -> list[dict[str, Any]]:
        """The tools one of which must be called; empty when no call is forced."""
        if not self.tools or self.choice in ("auto", "none"):
            return []
        if self.choice == "required":
            return list(self.tools)
        return [t for t in self.tools if t["function"]["name"] == self.choice]

    @property
    def offered_tools(self) -> list[dict[str, Any]]:
        """Tools the model may call (none with ``tool_choice="none"``)."""
        return [] if self.choice == "none" else list(self.tools)

    @property
    def answer_schema(self) -> dict[str, Any] | None:
        """The JSON schema of a constrained answer (``{"type": "object"}`` for json_object)."""
        return self.schema if self.schema is not None else ({"type": "object"} if self.json_object else None)


def tool_request(kwargs: dict[str, Any]) -> ToolRequest:
    """Pop ``tools``, ``tool_choice``, ``parallel_tool_calls`` and ``response_format`` from
    ``kwargs`` (a call's keyword arguments) into a :class:`ToolRequest`.

    Raises:
        InvalidParameterError: a malformed ``response_format`` or ``tool_choice``.
    """
    raw_tools = kwargs.pop("tools", None) or []
    tools = tuple(convert_to_openai_tool(t) for t in raw_tools)
    choice = normalize_tool_choice(kwargs.get("tool_choice"), tools) if tools else "auto"
    if not tools and kwargs.get("tool_choice") not in (None, "auto", "none"):
        raise InvalidParameterError(
            f"tool_choice={kwargs['tool_choice']!r} needs tools: bind them with bind_tools(...).",
            parameter="tool_choice",
        )
    kwargs.pop("tool_choice", None)
    parallel = kwargs.pop("parallel_tool_calls", None)
    kwargs.pop("ls_structured_output_format", None)
    schema, json_object = _response_format(kwargs.pop("response_format", None))
    return ToolRequest(tools, choice, parallel if isinstance(parallel, bool) else None, schema, json_object)


def _response_format(value: Any) -> tuple[dict[str, Any] | None, bool]:
    if value is None:
        return None, False
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "json_object":
            return value.get("schema"), value.get("schema") is None  # llama-cpp-python's form
        if kind == "json_schema":
            spec = value.get("json_schema") or {}
            schema = spec.get("schema", value.get("schema"))
            if isinstance(schema, dict):
                return schema, False
        if kind == "text":
            return None, False
    if isinstance(value, type) or (isinstance(value, dict) and "properties" in value):
        return output_schema(value).json_schema, False
    raise InvalidParameterError(
        f"response_format={value!r} is not understood. Pass {{'type': 'json_schema', 'json_schema': "
        "{'name': ..., 'schema': {...}}}, {'type': 'json_object'} or a Pydantic model.",
        parameter="response_format",
    )


# --- the constrained answer --------------------------------------------------------------


def forced_call_schema(tools: Sequence[dict[str, Any]], *, parallel: bool) -> dict[str, Any]:
    """JSON schema of exactly one call of one of ``tools`` (``parallel``: one or more calls).

    A call is ``{"name": <the tool's name>, "arguments": <valid by its parameters schema>}``.

    >>> tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    >>> forced_call_schema([tool], parallel=False)["properties"]["name"]
    {'enum': ['f']}
    """
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"enum": [tool["function"]["name"]]},
                "arguments": tool["function"].get("parameters") or _EMPTY_PARAMETERS,
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    call = calls[0] if len(calls) == 1 else {"anyOf": calls}
    return {"type": "array", "items": call, "minItems": 1} if parallel else call


@dataclass(frozen=True)
class Constraint:
    """What a constrained answer must be: decided once (:func:`answer_constraint`) for every runtime."""

    schema: dict[str, Any]
    """The JSON schema the answer's text follows (a forced call's: :func:`forced_call_schema`)."""
    forced_tools: tuple[dict[str, Any], ...] = ()
    """A forced call: the tools one of which the answer calls. Empty for a structured answer."""
    parallel: bool = False
    """A forced call may be several calls (a JSON array of them)."""
    json_object: bool = False
    """JSON mode: any JSON object (``schema`` is ``{"type": "object"}``)."""
    max_tokens: int | None = None
    """The call's token budget for the answer, when it has one."""

    @property
    def budgeted(self) -> bool:
        """The answer has a token budget to fit."""
        return self.max_tokens is not None and self.max_tokens > 0

    def sent_schema(self) -> dict[str, Any]:
        """The schema a server decodes: :attr:`schema` tightened (``maxLength``/``maxItems`` from
        the budget, optional properties that do not fit left out) so that every answer it allows
        fits :attr:`max_tokens` tokens, a token being at least one byte.

        Raises:
            TokenBudgetError: the budget cannot hold the shortest valid answer (nothing sent).
        """
        if not self.budgeted:
            return self.schema
        from langchain_localllm._core.decoding.json_grammar import budget_schema

        assert self.max_tokens is not None
        return budget_schema(self.schema, self.max_tokens)

    def sent_grammar(self) -> str:
        """GBNF for a server that takes a grammar (llama-server's ``grammar``): the answers of
        :attr:`schema` that fit :attr:`max_tokens` tokens, whitespace bounded too, so no grammar
        engine can run out of tokens mid-answer.

        Raises:
            TokenBudgetError: the budget cannot hold the shortest valid answer (nothing sent).
        """
        from langchain_localllm._core.decoding.json_grammar import budget_gbnf, json_schema_to_gbnf

        if not self.budgeted:
            return json_schema_to_gbnf(self.schema)
        assert self.max_tokens is not None
        return budget_gbnf(self.schema, self.max_tokens)


def answer_constraint(request: ToolRequest, max_tokens: int | None) -> Constraint | None:
    """The constraint of a call's answer (None when the answer is free).

    A forced tool choice wins over a response format. This is the one place where the answer's
    schema is decided for every runtime, with the call's ``max_tokens``: servers decode
    :meth:`Constraint.sent_schema` (Ollama's ``format``, the dialect's field), tightened so every
    answer fits the budget, or :meth:`Constraint.sent_grammar` where the dialect takes a grammar;
    in process, a structured answer's grammar is built from ``schema`` and a forced call's from
    the parameters of ``forced_tools``, in the model's syntax, and decoded budget-aware (the
    grammar narrows as the budget runs out: ``llamacpp.budgeted``).
    """
    forced = request.forced_tools
    if forced:
        call = forced_call_schema(forced, parallel=request.parallel)
        return Constraint(call, tuple(forced), request.parallel, max_tokens=max_tokens)
    schema = request.answer_schema
    if schema is None:
        return None
    return Constraint(schema, json_object=request.schema is None, max_tokens=max_tokens)


class ConstrainedDecoding(Protocol):
    """How one runtime makes its answer follow a :class:`Constraint` (the strategy each implements)."""

    def fields(self, constraint: Constraint) -> dict[str, Any]:
        """What the runtime adds to its request (or generation call) to carry ``constraint`` out.

        Raises:
            UnsupportedParameterError: the runtime cannot constrain its decoding.
        """
        ...


@dataclass(frozen=True)
class NoConstrainedDecoding:
    """The strategy of a runtime without constrained decoding: a typed refusal, never a hope."""

    runtime: str
    """The class that refuses (named in the message)."""
    reason: str
    """Why it cannot constrain."""
    alternative: str
    """What to use instead."""

    def fields(self, constraint: Constraint) -> dict[str, Any]:
        what = "a forced tool_choice" if constraint.forced_tools else "a response format"
        raise UnsupportedParameterError(
            f"{self.runtime} cannot constrain decoding ({self.reason}), so it cannot guarantee {what}. "
            f"{self.alternative}",
            parameter="tool_choice" if constraint.forced_tools else "response_format",
        )


def new_call_id() -> str:
    """An id for a tool call the runtime did not name (OpenAI's ``call_...`` form)."""
    return f"call_{uuid.uuid4().hex[:24]}"


# --- bind_tools and with_structured_output -----------------------------------------------


class ToolCalling:
    """``bind_tools`` and ``with_structured_output`` with LangChain's semantics (every chat model)."""

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        """Bind tools (Pydantic models, functions, ``@tool``s or OpenAI dicts).

        Args:
            tools: The tools the model may call.
            tool_choice: ``"auto"`` (default), ``"none"``, ``"any"``/``"required"``/True, a
                tool's name or ``{"type": "function", "function": {"name": ...}}``; bound in
                OpenAI's form. A forced choice is enforced while decoding, not requested: the
                answer is always a call of an allowed tool with arguments valid by its schema.
            parallel_tool_calls: True allows several calls in one answer; by default one
                (measured: Gemma 3 270M allowed more repeats the same call three times).
            strict: Passed to ``convert_to_openai_tool`` (schemas are enforced anyway
                where decoding is constrained).
        """
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        choice = normalize_tool_choice(tool_choice, formatted)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        bind = self.bind  # type: ignore[attr-defined]
        return bind(tools=formatted, tool_choice=_openai_tool_choice(choice), **kwargs)

    def with_structured_output(
        self,
        schema: Any = None,
        *,
        method: Method = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, Any]:
        """A runnable whose output is ``schema`` (a Pydantic instance or a dict).

        Args:
            schema: Pydantic model, TypedDict, JSON schema or OpenAI tool dict (optional
                for ``json_mode``).
            method: ``"json_schema"`` (default: the answer is constrained to the schema),
                ``"function_calling"`` (a forced call of a tool named after the schema)
                or ``"json_mode"`` (any JSON object, then validated if a schema is given).
            include_raw: Return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``
                instead of raising when parsing fails.
            strict: Accepted for compatibility; schemas are always enforced.

        An answer cut off by the token budget (finish reason ``"length"``) is never parsed:
        it raises :class:`~langchain_localllm.errors.TruncatedOutputError` (an
        ``OutputParserException`` holding the raw text), which ``include_raw=True`` returns as
        the ``parsing_error``.
        """
        if kwargs:
            raise InvalidParameterError(
                f"with_structured_output: unexpected arguments {sorted(kwargs)}.", parameter=sorted(kwargs)[0]
            )
        if method not in ("json_schema", "function_calling", "json_mode"):
            raise InvalidParameterError(
                f"method={method!r} is not one of 'json_schema', 'function_calling', 'json_mode'.",
                parameter="method",
            )
        if schema is None and method != "json_mode":
            raise InvalidParameterError(f"method={method!r} needs a schema.", parameter="schema")
        target = output_schema(schema) if schema is not None else None
        ls_format = {"kwargs": {"method": method}, "schema": _ls_schema(schema)}
        bind = self.bind  # type: ignore[attr-defined]
        llm: Runnable[Any, Any]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            assert target is not None
            llm = self.bind_tools([target.tool()], tool_choice=target.name, parallel_tool_calls=False)
            llm = llm.bind(ls_structured_output_format=ls_format)
            parser = RunnableLambda(tool_args_parser(target))
        else:
            response_format: dict[str, Any] = {"type": "json_object"}
            if method == "json_schema":
                assert target is not None
                response_format = {
                    "type": "json_schema",
                    "json_schema": {"name": target.name, "schema": target.json_schema, "strict": True},
                }
            llm = bind(response_format=response_format, ls_structured_output_format=ls_format)
            parser = RunnableLambda(content_parser(target))
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")


def _ls_schema(schema: Any) -> dict[str, Any] | None:
    """The schema as LangChain reports it to callbacks (``ls_structured_output_format``)."""
    if schema is None:
        return None
    try:
        return convert_to_json_schema(schema)
    except (ValueError, TypeError):
        return output_schema(schema).json_schema
