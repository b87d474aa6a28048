"""The generation options the ``/v1`` LLM and chat model share, and the request body built from them."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from langchain_localllm._core.server.exchange import check_call_kwargs
from langchain_localllm._core.server.llm import drop_none
from langchain_localllm.errors import InvalidParameterError, UnsupportedParameterError
from langchain_localllm.openai_compatible.server import ServerInfo

#: OpenAI sampling fields, sent as they are named.
SAMPLING = ("max_tokens", "temperature", "top_p", "frequency_penalty", "presence_penalty", "seed")


class GenerationFields(BaseModel):
    """Sampling, constraints and server extras, as fields and as per-call arguments."""

    _extra_call_params: ClassVar[frozenset[str]] = frozenset()

    max_tokens: int | None = Field(default=256, ge=1)
    """Most tokens to generate per call (bounded by default). None: the server's default."""

    temperature: float | None = None
    """Sampling temperature; 0 is greedy. None keeps the server's default."""

    top_p: float | None = None
    """Nucleus sampling probability mass."""

    frequency_penalty: float | None = None
    """Penalty for tokens by how often they appeared."""

    presence_penalty: float | None = None
    """Penalty for tokens that appeared at all."""

    seed: int | None = None
    """Random seed for reproducible sampling."""

    json_schema: dict[str, Any] | None = None
    """Constrain every answer to this JSON schema, with the server's own mechanism (vLLM
    ``structured_outputs``/``guided_json``, llama-server ``json_schema``, else OpenAI
    ``response_format``)."""

    grammar: str | None = None
    """A GBNF grammar the answer must follow (llama-server/llamafile only)."""

    extra_body: dict[str, Any] = Field(default_factory=dict)
    """More request fields, sent as given (e.g. ``{"top_k": 20}`` or vLLM's
    ``{"repetition_penalty": 1.1}``)."""

    @classmethod
    def call_params(cls) -> frozenset[str]:
        """Names a call accepts as keyword arguments."""
        return frozenset((*SAMPLING, "json_schema", "grammar", "extra_body", *cls._extra_call_params))

    def _check_call(self, kwargs: dict[str, Any]) -> None:
        check_call_kwargs(kwargs, self.call_params(), type(self).__name__)

    def _check_call_kwargs(self, kwargs: dict[str, Any]) -> None:
        self._check_call(kwargs)

    def _body(self, info: ServerInfo, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The fields common to ``/v1/completions`` and ``/v1/chat/completions``."""
        self._check_call(kwargs)
        values = {name: kwargs.get(name, getattr(self, name)) for name in SAMPLING}
        body: dict[str, Any] = drop_none(values)
        schema = kwargs.get("json_schema", self.json_schema)
        grammar = kwargs.get("grammar", self.grammar)
        owner = type(self).__name__
        if schema is not None and grammar is not None:
            msg = f"{owner}: give json_schema or grammar, not both (both constrain the output)."
            raise InvalidParameterError(msg, parameter="grammar")
        if grammar is not None:
            if not info.dialect.grammar:
                msg = (
                    f"{owner}: grammar (GBNF) is a llama-server/llamafile option; the server is "
                    f"{info.dialect.name!r}. Use json_schema=... instead."
                )
                raise UnsupportedParameterError(msg, parameter="grammar")
            body["grammar"] = grammar
        if schema is not None:
            body.update(info.dialect.schema_fields(schema))
        body.update(self.extra_body)
        body.update(kwargs.get("extra_body") or {})
        return body
