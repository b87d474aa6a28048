"""Schemas for structured output (Pydantic models, TypedDicts, functions or JSON schemas),
and the reading of a model's answer into them.

:func:`output_schema` turns what the user passes into one :class:`OutputSchema`: the JSON
schema sent to the model (or compiled to a grammar), the name and description a tool
needs, and the validation that turns parsed JSON into the user's type.
:func:`content_parser` and :func:`tool_args_parser` are the two readers
``with_structured_output`` ends with (the answer's text, or its forced tool call); both
refuse an answer the token budget cut off (:class:`~langchain_localllm.errors.TruncatedOutputError`),
on every runtime, instead of parsing a partial value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ValidationError

from langchain_localllm.errors import InvalidParameterError, TruncatedOutputError

__all__ = ["OutputSchema", "content_parser", "output_schema", "parse_json_text", "tool_args_parser"]


@dataclass(frozen=True)
class OutputSchema:
    """A normalised structured-output schema."""

    name: str
    """A tool-safe name (the schema's title, the model's or function's name)."""
    description: str
    json_schema: dict[str, Any]
    """The JSON schema of the output (for grammars, ``format``, ``json_schema``)."""
    pydantic: type[Any] | None = None
    """The Pydantic model (v2, or v1 from ``pydantic.v1``) the output is validated into."""

    def tool(self) -> dict[str, Any]:
        """The schema as an OpenAI-style tool definition."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.json_schema},
        }

    def validate(self, value: Any) -> Any:
        """``value`` checked against the schema: a Pydantic instance or the JSON value.

        Raises:
            OutputParserException: the value does not match the schema (the message says where).
        """
        if self.pydantic is not None:
            from pydantic.v1 import ValidationError as ValidationErrorV1

            try:
                if issubclass(self.pydantic, BaseModel):
                    return self.pydantic.model_validate(value)
                return self.pydantic.parse_obj(value)
            except (ValidationError, ValidationErrorV1) as error:
                raise OutputParserException(
                    f"The output does not match {self.name}: {error}", llm_output=json.dumps(value)
                ) from error
        import jsonschema

        errors = sorted(jsonschema.Draft202012Validator(self.json_schema).iter_errors(value), key=str)
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
            raise OutputParserException(
                f"The output does not match {self.name} at {where}: {errors[0].message}",
                llm_output=json.dumps(value),
            )
        return value

    def parse(self, text: str) -> Any:
        """Parse and validate the model's text."""
        return self.validate(parse_json_text(text))


def output_schema(schema: Any) -> OutputSchema:
    """Normalise a Pydantic model, TypedDict, function, OpenAI tool or JSON schema.

    Raises:
        InvalidParameterError: ``schema`` is none of those.
    """
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        tool = convert_to_openai_tool(schema)["function"]
        return OutputSchema(
            tool["name"], tool.get("description", ""), schema.model_json_schema(), pydantic=schema
        )
    if isinstance(schema, dict) and "type" in schema and schema.get("type") != "function":
        name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title", "output")))[:64] or "output"
        return OutputSchema(name, str(schema.get("description", "")), schema)
    from pydantic.v1 import BaseModel as BaseModelV1

    try:
        tool = convert_to_openai_tool(schema)["function"]
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidParameterError(
            f"Cannot use {schema!r} as an output schema: pass a Pydantic model, a TypedDict, a "
            "function, an OpenAI tool dict or a JSON schema dict.",
            schema=schema,
        ) from error
    params = tool.get("parameters") or {"type": "object", "properties": {}}
    model = schema if isinstance(schema, type) and issubclass(schema, BaseModelV1) else None
    return OutputSchema(tool["name"], tool.get("description", ""), params, pydantic=model)


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_text(text: str) -> Any:
    """The JSON value in ``text`` (fenced code blocks and surrounding blanks allowed).

    Raises:
        OutputParserException: the text is not one JSON value.
    """
    match = _FENCE.match(text)
    body = match.group(1) if match else text.strip()
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise OutputParserException(
            f"The output is not valid JSON ({error.msg} at character {error.pos}).", llm_output=text
        ) from error


def content_parser(target: OutputSchema | None) -> Callable[[Any], Any]:
    """The reader of a constrained answer's text: its JSON value, validated by ``target``."""

    def parse(message: Any) -> Any:
        text = message.text if isinstance(message, AIMessage) else str(message)
        if isinstance(message, AIMessage):
            _refuse_cut_answer(message, text)
        value = parse_json_text(text)
        return target.validate(value) if target is not None else value

    return parse


def tool_args_parser(target: OutputSchema) -> Callable[[Any], Any]:
    """The reader of a forced call's answer: the first call's arguments, validated by ``target``."""

    def parse(message: Any) -> Any:
        if not isinstance(message, AIMessage):
            raise OutputParserException("Expected an AIMessage.")
        raw = [json.dumps(call["args"]) for call in message.tool_calls]
        raw += [str(call.get("args") or "") for call in message.invalid_tool_calls]
        _refuse_cut_answer(message, "".join(raw) or message.text)
        if not message.tool_calls:
            bad = message.invalid_tool_calls
            detail = f" (invalid call: {bad[0].get('error')})" if bad else ""
            raise OutputParserException(
                f"The model made no valid tool call{detail}.", llm_output=str(message.content)
            )
        return target.validate(message.tool_calls[0]["args"])

    return parse


def _refuse_cut_answer(message: AIMessage, raw: str) -> None:
    """A structured answer the token budget cut off is an error, never a partial value."""
    if message.response_metadata.get("finish_reason") != "length":
        return
    usage = message.usage_metadata
    spent = f" after {usage['output_tokens']} tokens" if usage else ""
    raise TruncatedOutputError(
        f"The structured answer was cut off by the token budget{spent} (finish_reason='length') "
        "before it was complete, so it is not parsed. Raise max_tokens (num_predict for Ollama) "
        "or ask for a shorter answer; the raw text is in llm_output.",
        llm_output=raw,
        finish_reason="length",
    )
