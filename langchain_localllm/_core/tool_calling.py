"""Tool calling and structured output for the chat models, written once.

:class:`ToolCallingMixin` gives a chat model LangChain's ``bind_tools`` and
``with_structured_output``. Both only bind call arguments -- ``tools``, ``tool_choice``,
``parallel_tool_calls`` and ``response_format``, the names OpenAI-style APIs and
langchain's ``create_agent`` use -- which :func:`tool_request` reads back in the runtime's
``_iter_deltas``. How a runtime honours them differs: a grammar in process, a JSON
schema over HTTP, the server's own parser; the semantics do not:

- ``tool_choice="auto"`` (the default with tools): the model may answer or call tools
  in its own syntax; ``"none"``: it answers in text; ``"any"``/``"required"``, a tool's
  name, or ``{"type": "function", "function": {"name": ...}}``: it must call (that) tool.
- ``response_format={"type": "json_schema", "json_schema": {"name", "schema"}}``: the
  answer is JSON valid against the schema; ``{"type": "json_object"}``: any JSON object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool

from langchain_localllm._core.structured import OutputSchema, output_schema, parse_json_text
from langchain_localllm.errors import InvalidParameterError

if TYPE_CHECKING:
    pass

__all__ = [
    "TOOL_CALL_ARGS",
    "ToolCallingMixin",
    "ToolRequest",
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
        f"tool_choice={tool_choice!r} is not one of 'auto', 'none', 'any', 'required' or a bound "
        f"tool's name ({', '.join(names) or 'no tools bound'}).",
        parameter="tool_choice",
    )


@dataclass(frozen=True)
class ToolRequest:
    """What a call asks for, read from its keyword arguments by :func:`tool_request`."""

    tools: tuple[dict[str, Any], ...] = ()
    """OpenAI-style tool definitions."""
    choice: str = "auto"
    """``"auto"``, ``"none"``, ``"required"`` or a tool's name."""
    parallel: bool = False
    """Several calls may be made in one answer (only when ``parallel_tool_calls=True``:
    small local models allowed more than one call tend to repeat the same call)."""
    schema: dict[str, Any] | None = None
    """The JSON schema the answer must follow (``response_format`` json_schema)."""
    json_object: bool = False
    """The answer must be a JSON object (``response_format`` json_object)."""

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
    choice = normalize_tool_choice(kwargs.pop("tool_choice", None), tools) if tools else "auto"
    if not tools and kwargs.get("tool_choice") not in (None, "auto", "none"):
        raise InvalidParameterError("tool_choice needs tools: bind them with bind_tools(...).")
    kwargs.pop("tool_choice", None)
    parallel = kwargs.pop("parallel_tool_calls", None)
    kwargs.pop("ls_structured_output_format", None)
    schema, json_object = _response_format(kwargs.pop("response_format", None))
    return ToolRequest(tools, choice, parallel is True, schema, json_object)


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


def _tool_args_parser(target: OutputSchema) -> Callable[[Any], Any]:
    """The first tool call's arguments, validated by the schema."""

    def parse(message: Any) -> Any:
        if not isinstance(message, AIMessage):
            raise OutputParserException("Expected an AIMessage.")
        if not message.tool_calls:
            bad = message.invalid_tool_calls
            detail = f" (invalid call: {bad[0].get('error')})" if bad else ""
            raise OutputParserException(
                f"The model made no valid tool call{detail}.", llm_output=str(message.content)
            )
        return target.validate(message.tool_calls[0]["args"])

    return parse


class ToolCallingMixin:
    """``bind_tools`` and ``with_structured_output`` with LangChain's semantics."""

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
            tool_choice: ``"auto"`` (default), ``"none"``, ``"any"``/``"required"``, a
                tool's name or ``{"type": "function", "function": {"name": ...}}``. Forced
                choices are enforced while decoding, not requested.
            parallel_tool_calls: True allows several calls in one answer; by default one
                (measured: Gemma 3 270M allowed more repeats the same call three times).
            strict: Passed to ``convert_to_openai_tool`` (schemas are enforced anyway
                where decoding is constrained).
        """
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        choice = normalize_tool_choice(tool_choice, formatted)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return self.bind(tools=formatted, tool_choice=choice, **kwargs)  # type: ignore[attr-defined]

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
        """
        if kwargs:
            raise InvalidParameterError(
                f"Unexpected arguments {sorted(kwargs)}.", parameter=sorted(kwargs)[0]
            )
        if schema is None and method != "json_mode":
            raise InvalidParameterError(f"method={method!r} needs a schema.", parameter="schema")
        target = output_schema(schema) if schema is not None else None
        ls_format = {"kwargs": {"method": method}, "schema": _ls_schema(schema)}
        llm: Runnable[Any, Any]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            assert target is not None
            llm = self.bind_tools([target.tool()], tool_choice=target.name, parallel_tool_calls=False).bind(
                ls_structured_output_format=ls_format
            )
            parser = RunnableLambda(_tool_args_parser(target))
        elif method in ("json_schema", "json_mode"):
            if method == "json_schema":
                assert target is not None
                response_format: dict[str, Any] = {
                    "type": "json_schema",
                    "json_schema": {"name": target.name, "schema": target.json_schema, "strict": True},
                }
            else:
                response_format = {"type": "json_object"}
            llm = self.bind(response_format=response_format, ls_structured_output_format=ls_format)  # type: ignore[attr-defined]
            parser = RunnableLambda(_content_parser(target))
        else:
            raise InvalidParameterError(
                f"method={method!r} is not one of 'json_schema', 'function_calling', 'json_mode'.",
                parameter="method",
            )
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


def _content_parser(target: OutputSchema | None) -> Callable[[Any], Any]:
    def parse(message: Any) -> Any:
        text = message.text if isinstance(message, AIMessage) else str(message)
        value = parse_json_text(text)
        return target.validate(value) if target is not None else value

    return parse
