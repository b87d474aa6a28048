"""What each OpenAI-compatible server understands beyond the OpenAI API: one registry.

Every server speaks ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``;
they differ in how output is constrained to a JSON schema (vLLM ``structured_outputs`` /
``guided_json``, llama-server ``json_schema`` and ``grammar``, the others OpenAI's
``response_format``), in the extras they take (llama-server's ``cache_prompt``,
``reasoning_format``, ``n_probs``; vLLM's ``chat_template_kwargs``) and in how they are
recognised (``owned_by`` in ``/v1/models``, ``/props``, ``/version``). Each dialect is
registered once with :func:`register_dialect`; a second registration of a name is refused.
A dialect is also how the chat models carry out a constrained answer (:meth:`Dialect.fields`).

>>> DIALECTS["llama-server"].schema_fields({"type": "object"})
{'json_schema': {'type': 'object'}}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_localllm._core.tools.calling import Constraint

__all__ = ["DIALECTS", "Dialect", "dialect_for_owner", "register_dialect"]

SchemaFields = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Dialect:
    """One server family's extensions of the OpenAI API."""

    name: str
    schema_fields: SchemaFields
    """The request fields that constrain the output to a JSON schema."""
    owned_by: tuple[str, ...] = ()
    """Values of ``owned_by`` in ``/v1/models`` that identify the server."""
    extras: frozenset[str] = field(default_factory=frozenset)
    """Request fields beyond OpenAI's that the server takes: options set for another server
    family are not sent to this one."""
    grammar: bool = False
    """Whether ``grammar`` (GBNF) constrains the output."""

    def fields(self, constraint: Constraint) -> dict[str, Any]:
        """The server's constrained decoding of a constrained answer (the tool layer's
        ``ConstrainedDecoding`` strategy of the OpenAI-compatible chat models): within the
        call's ``max_tokens``, a grammar with bounded whitespace where the server takes one,
        else the schema tightened to the budget."""
        if self.grammar and constraint.budgeted:
            return {"grammar": constraint.sent_grammar()}
        return self.schema_fields(constraint.sent_schema())


DIALECTS: dict[str, Dialect] = {}


def register_dialect(
    name: str,
    *,
    owned_by: tuple[str, ...] = (),
    extras: tuple[str, ...] = (),
    grammar: bool = False,
) -> Callable[[SchemaFields], SchemaFields]:
    """Register the dialect ``name`` whose structured-output fields the decorated function gives."""

    def register(schema_fields: SchemaFields) -> SchemaFields:
        if name in DIALECTS:
            msg = f"The dialect {name!r} is registered twice."
            raise ValueError(msg)
        DIALECTS[name] = Dialect(name, schema_fields, owned_by, frozenset(extras), grammar)
        return schema_fields

    return register


def _response_format(schema: dict[str, Any]) -> dict[str, Any]:
    name = str(schema.get("title") or "output")
    return {"response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}}


@register_dialect(
    "llama-server",
    owned_by=("llamacpp", "llamafile"),
    extras=(
        "cache_prompt",
        "n_probs",
        "reasoning_format",
        "chat_template_kwargs",
        "top_k",
        "min_p",
        "repeat_penalty",
        "grammar",
        "json_schema",
        "id_slot",
        "samplers",
    ),
    grammar=True,
)
def _llama_server(schema: dict[str, Any]) -> dict[str, Any]:
    return {"json_schema": schema}


@register_dialect(
    "vllm",
    owned_by=("vllm",),
    extras=(
        "structured_outputs",
        "guided_json",
        "chat_template_kwargs",
        "top_k",
        "min_p",
        "repetition_penalty",
        "include_stop_str_in_output",
    ),
)
def _vllm(schema: dict[str, Any]) -> dict[str, Any]:
    # vLLM >= 0.10.2 reads structured_outputs; guided_json was its name before (removed in 0.12).
    return {"structured_outputs": {"json": schema}}


@register_dialect("vllm-guided", extras=("guided_json", "chat_template_kwargs", "top_k", "min_p"))
def _vllm_guided(schema: dict[str, Any]) -> dict[str, Any]:
    return {"guided_json": schema}


@register_dialect("sglang", owned_by=("sglang",), extras=("chat_template_kwargs", "top_k", "min_p", "regex"))
def _sglang(schema: dict[str, Any]) -> dict[str, Any]:
    return _response_format(schema)


@register_dialect("ollama", owned_by=("library", "ollama"))
def _ollama(schema: dict[str, Any]) -> dict[str, Any]:
    return _response_format(schema)


@register_dialect("openai")
def _openai(schema: dict[str, Any]) -> dict[str, Any]:
    return _response_format(schema)


def dialect_for_owner(owned_by: str) -> Dialect | None:
    """The dialect whose servers report ``owned_by`` in ``/v1/models``."""
    for dialect in DIALECTS.values():
        if owned_by.lower() in dialect.owned_by:
            return dialect
    return None
