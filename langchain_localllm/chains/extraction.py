"""Extract (or tag) validated records from many documents with any model.

``extraction_chain(llm, schema)`` is an LCEL runnable over a ``str``, a ``Document`` or a
list of them. Each document is sent to the model on its own (at most
``max_concurrency`` at a time, with a progress bar) and comes back as an
:class:`ExtractionResult`: the records found in it, each validated against ``schema``,
or the error that document met; one document failing never loses the others.

With one of this package's models the output is constrained while it is generated
(a grammar in process, the server's JSON schema over HTTP), so it parses by
construction; with any other LangChain chat model its ``with_structured_output`` is used,
and the records are validated here all the same.

.. code-block:: python

    from pydantic import BaseModel
    from langchain_localllm import LlamaCpp
    from langchain_localllm.chains import extraction_chain

    class Person(BaseModel):
        name: str
        age: int | None = None

    chain = extraction_chain(LlamaCpp(model_path="qwen2.5-1.5b-instruct-q4_k_m.gguf"), Person, many=True)
    for result in chain.invoke(["Ann (34) met Bob.", "No people here."]):
        print(result.index, result.records, result.error)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from langchain_localllm._core.base.tokens import unwrap_runnable as _unwrap
from langchain_localllm._core.decoding.json_grammar import json_schema_to_gbnf
from langchain_localllm._core.tools.schemas import OutputSchema, output_schema
from langchain_localllm.chains._inputs import documents_of
from langchain_localllm.chains._llm import fleet_concurrency, is_chat_model, select_prompt
from langchain_localllm.chains._map import Progress, amap_bounded, map_bounded
from langchain_localllm.errors import InvalidParameterError
from langchain_localllm.prompts import format_prompt_selector

__all__ = ["ExtractionResult", "extraction_chain"]

SYSTEM = (
    "You extract structured information from text. Use only what the text says; "
    "leave out optional fields the text does not give. Answer with JSON only."
)
ONE = "Extract the {name} described by this text as JSON.\n\nText:\n{text}"
MANY = (
    'Extract every {name} mentioned in this text as JSON: an object whose "records" list holds '
    "one entry per {name} (an empty list if there is none).\n\nText:\n{text}"
)


@dataclass
class ExtractionResult:
    """What one document gave."""

    index: int
    """Position of the document in the input."""
    records: list[Any] = field(default_factory=list)
    """Validated records (Pydantic instances for a Pydantic schema, else JSON values)."""
    error: str | None = None
    """Why this document gave nothing, or None."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The document's metadata (its ``source``, ...)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (one JSON Lines line of ``localllm extract``)."""
        records = [r.model_dump(mode="json") if hasattr(r, "model_dump") else r for r in self.records]
        return {
            "index": self.index,
            "source": self.metadata.get("source"),
            "records": records,
            "error": self.error,
        }


def _wrapper(schema: OutputSchema, many: bool) -> OutputSchema:
    if not many:
        return schema
    json_schema = {
        "title": f"{schema.name}_records",
        "type": "object",
        "properties": {"records": {"type": "array", "items": _inline_defs(schema.json_schema)}},
        "required": ["records"],
    }
    defs = schema.json_schema.get("$defs")
    if defs:
        json_schema["$defs"] = defs
    return OutputSchema(f"{schema.name}_records", f"Every {schema.name} in the text.", json_schema)


def _inline_defs(json_schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in json_schema.items() if k != "$defs"}


def _structured_runnable(llm: Any, wrapper: OutputSchema) -> Runnable[Any, Any]:
    """``llm`` giving the wrapper's JSON value: constrained where the model supports it."""
    inner = _unwrap(llm)
    if is_chat_model(llm):
        try:
            return llm.with_structured_output(wrapper.json_schema, method="json_schema")
        except (TypeError, ValueError, NotImplementedError):
            return llm.with_structured_output(wrapper.json_schema)
    fields = getattr(type(inner), "model_fields", {})
    if "grammar" in fields:  # llama.cpp in process or llama-server: our grammar enforces bounds too
        bound = llm.bind(grammar=json_schema_to_gbnf(wrapper.json_schema))
    elif "json_schema" in fields:
        bound = llm.bind(json_schema=wrapper.json_schema)
    elif "format" in fields:
        bound = llm.bind(format=wrapper.json_schema)
    else:
        bound = llm
    return bound | RunnableLambda(lambda text: wrapper.parse(str(text)))


def extraction_chain(
    llm: BaseLanguageModel[Any] | Runnable[Any, Any],
    schema: Any,
    *,
    many: bool = False,
    instructions: str | None = None,
    max_concurrency: int | None = None,
    show_progress: bool | None = None,
) -> Runnable[Any, list[ExtractionResult]]:
    """A runnable extracting ``schema`` records from each input document.

    Args:
        llm: Any LangChain chat model, or one of this package's LLMs.
        schema: A Pydantic model, TypedDict, JSON schema dict or OpenAI tool dict.
        many: Each document may hold any number of records (else exactly one).
        instructions: Replaces the default system message.
        max_concurrency: Documents processed at the same time; default 4, and for an
            in-process ``LlamaCpp``/``ChatLlamaCpp`` its ``n_parallel`` (the documents then
            share each forward pass), for a fleet its capacity.
        show_progress: Progress bar on stderr (None: when stderr is a terminal).

    Returns:
        A runnable: str | Document | list of them -> list of :class:`ExtractionResult`,
        in input order.
    """
    if max_concurrency is not None and max_concurrency < 1:
        raise InvalidParameterError("max_concurrency must be at least 1.", max_concurrency=max_concurrency)
    concurrency = max_concurrency if max_concurrency is not None else fleet_concurrency(llm, None)[0]
    target = output_schema(schema)
    wrapper = _wrapper(target, many)
    structured = _structured_runnable(llm, wrapper)
    template = MANY if many else ONE
    system = instructions or SYSTEM
    chat = is_chat_model(llm)
    text_prompt = None if chat else select_prompt(format_prompt_selector(template, system=system), llm)

    def model_input(doc: Document) -> Any:
        values = {"name": target.name, "text": doc.page_content}
        if text_prompt is not None:
            return text_prompt.invoke(values)
        # one user turn: some chat templates (Gemma's, Mistral's) refuse a system message
        return [HumanMessage(f"{system}\n\n{template.format(**values)}")]

    def records_of(value: Any) -> list[Any]:
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json")
        checked = wrapper.validate(value)
        items = checked["records"] if many else [checked]
        return [target.validate(item) for item in items] if many else items

    def result(
        index: int, doc: Document, value: Any = None, error: Exception | None = None
    ) -> ExtractionResult:
        if error is None:
            try:
                return ExtractionResult(index, records_of(value), metadata=dict(doc.metadata))
            except Exception as invalid:
                error = invalid
        return ExtractionResult(index, error=f"{type(error).__name__}: {error}", metadata=dict(doc.metadata))

    def run_one(item: tuple[int, Document], config: RunnableConfig) -> ExtractionResult:
        try:
            return result(*item, structured.invoke(model_input(item[1]), config))
        except Exception as error:  # one document's failure is reported, not raised
            return result(*item, error=error)

    async def arun_one(item: tuple[int, Document], config: RunnableConfig) -> ExtractionResult:
        try:
            return result(*item, await structured.ainvoke(model_input(item[1]), config))
        except Exception as error:
            return result(*item, error=error)

    def items_of(value: Any) -> list[tuple[int, Document]]:
        return list(enumerate(documents_of(value)))

    def run(value: Any, config: RunnableConfig) -> list[ExtractionResult]:
        items = items_of(value)
        with Progress(show_progress, "extracting") as progress:
            progress.add(len(items))
            return map_bounded(lambda it: run_one(it, config), items, concurrency, progress.update)

    async def arun(value: Any, config: RunnableConfig) -> list[ExtractionResult]:
        items = items_of(value)
        with Progress(show_progress, "extracting") as progress:
            progress.add(len(items))
            return await amap_bounded(lambda it: arun_one(it, config), items, concurrency, progress.update)

    return RunnableLambda(run, afunc=arun, name="extraction_chain")
