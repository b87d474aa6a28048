"""Answer questions from your own documents with a local model: ``rag_chain(llm, retriever)``.

The chain retrieves chunks for the question, lays them out with the question in the
model's own prompt format (Llama-2 ``[INST] <<SYS>>``, ChatML, Llama-3, ...; a
completion-style prompt with a worked example for base models; chosen through the
prompt-format selector when the chain runs) and returns the
answer with its sources. It is an LCEL runnable: ``invoke``, ``batch``, ``ainvoke``,
and ``stream``/``astream``, where the answer arrives token by token.

.. code-block:: python

    from langchain_localllm import LlamaCpp, LlamaCppEmbeddings
    from langchain_localllm.chains import rag_chain
    from langchain_localllm.rag import index_folder

    retriever = index_folder("~/notes", LlamaCppEmbeddings(model_path=EMBED), "~/.notes-index")
    chain = rag_chain(LlamaCpp(model_path=LLM), retriever)
    result = chain.invoke("When is the dentist appointment?")
    result["answer"], result["sources"]
    for part in chain.stream("When is the dentist appointment?"):
        print(part.get("answer", ""), end="", flush=True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.documents import Document
from langchain_core.prompts import BasePromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel, RunnablePassthrough

from langchain_localllm.chains._inputs import question_of
from langchain_localllm.chains._llm import select_prompt, text_model
from langchain_localllm.errors import InvalidParameterError
from langchain_localllm.prompts import FORMATS, ConditionalPromptSelector, format_predicate, format_prompt
from langchain_localllm.prompts.completion import CompletionPrompt, with_completion_prompt

__all__ = [
    "RAG_COMPLETION",
    "RAG_PROMPTS",
    "RAG_SYSTEM",
    "RAG_USER",
    "format_documents",
    "rag_chain",
    "rag_prompt_selector",
]

RAG_SYSTEM = (
    "You are an assistant for question-answering tasks. Answer the question using only the "
    "context below. If the context does not contain the answer, say that you don't know. "
    "Keep the answer short and mention the numbers [n] of the passages you used."
)
"""System message of the RAG prompt."""

RAG_USER = "Context:\n{context}\n\nQuestion: {question}"
"""User turn of the RAG prompt (``{context}`` and ``{question}`` are filled in)."""

RAG_PROMPTS: dict[str, tuple[str, str]] = {
    # Base models have no turns: an "Answer:" cue makes them continue with the answer.
    "plain": (RAG_SYSTEM, RAG_USER + "\n\nAnswer:"),
    # Alpaca's "### Response:" already cues the answer; Mistral has no system role, so
    # the format puts the system text first in the instruction (see prompts.formats).
}
"""Per-format ``(system, user)`` overrides; formats not listed use ``RAG_SYSTEM``/``RAG_USER``.
Laid out by each format's registered wrapper (``langchain_localllm.prompts``)."""


RAG_COMPLETION = CompletionPrompt(
    intro="Questions answered from numbered passages of the reader's own documents, citing the "
    'passage used; an answer the passages do not hold is "I don\'t know."',
    example=(
        "Passages:\n[1] (notes/health.md)\nThe dentist appointment is on Tuesday, 3 March, at 10 am.\n\n"
        "[2] (notes/car.md)\nThe car goes to the garage in April.\n\n"
        "Question: When is the dentist appointment?\n"
        "Answer: On Tuesday, 3 March, at 10 am [1]."
    ),
    template="Passages:\n{context}\n\nQuestion: {question}\nAnswer:",
    stop=("\n",),
)
"""The RAG prompt for base models (no chat template): a worked example the model continues."""


def rag_prompt_selector() -> ConditionalPromptSelector:
    """One RAG prompt per registered prompt format, picked by the model's format; the
    completion-style :data:`RAG_COMPLETION` for base models."""
    conditionals: list[tuple[Callable[[Any], bool], BasePromptTemplate]] = []
    for name in FORMATS:
        if name != "plain":
            system, user = RAG_PROMPTS.get(name, (RAG_SYSTEM, RAG_USER))
            conditionals.append((format_predicate(name), format_prompt(name, user, system)))
    system, user = RAG_PROMPTS.get("plain", (RAG_SYSTEM, RAG_USER))
    default = format_prompt("plain", user, system)
    selector = ConditionalPromptSelector(default_prompt=default, conditionals=conditionals)
    return with_completion_prompt(selector, RAG_COMPLETION)


def _source_of(doc: Document) -> str:
    source = str(doc.metadata.get("source", "unknown"))
    page = doc.metadata.get("page")
    return f"{source} (page {page})" if page is not None else source


def format_documents(docs: list[Document]) -> str:
    """Retrieved chunks numbered ``[1]``, ``[2]``... with their sources, for the prompt."""
    if not docs:
        return "(no passages were found)"
    return "\n\n".join(
        f"[{n}] ({_source_of(doc)})\n{doc.page_content.strip()}" for n, doc in enumerate(docs, 1)
    )


def _sources(docs: list[Document]) -> list[str]:
    return list(dict.fromkeys(_source_of(doc) for doc in docs))


def rag_chain(
    llm: Runnable[Any, Any],
    retriever: BaseRetriever | Runnable[str, list[Document]],
    *,
    prompt: BasePromptTemplate | None = None,
) -> Runnable[Any, dict[str, Any]]:
    """A runnable that answers a question from the documents ``retriever`` finds.

    Args:
        llm: Any LangChain LLM or chat model; local ones get their own prompt format.
        retriever: Gives the documents for a question, e.g. from
            ``langchain_localllm.rag.index_folder``.
        prompt: A prompt with ``{context}`` and ``{question}`` to use instead of the
            per-format RAG prompt.

    Returns:
        A runnable taking ``"question"`` or ``{"question": "..."}`` and returning
        ``{"question", "context" (the Documents), "sources" (unique "path" or
        "path (page n)" strings, in rank order), "answer"}``. Streaming yields those
        keys as they are ready, then the answer in pieces.
    """
    if not isinstance(retriever, Runnable):
        raise InvalidParameterError(
            f"retriever must be a LangChain retriever or runnable, got {type(retriever).__name__}; "
            "build one with langchain_localllm.rag.index_folder(...).",
            parameter="retriever",
        )
    if prompt is not None:
        missing = {"context", "question"} - set(prompt.input_variables)
        if missing:
            raise InvalidParameterError(
                "The RAG prompt must have the variables {context} and {question}; "
                f"missing: {sorted(missing)}.",
                parameter="prompt",
            )
    selector = rag_prompt_selector()

    def answer(inputs: dict[str, Any]) -> Runnable[Any, str]:
        # Chosen when the chain runs (building it asks the model nothing): the model's
        # own format, the plain prompt for chat models, the completion prompt for base models.
        chosen = prompt if prompt is not None else select_prompt(selector, llm)
        return (
            RunnableLambda(lambda x: {"context": format_documents(x["context"]), "question": x["question"]})
            | chosen
            | text_model(llm, chosen)
        )

    return (
        RunnableLambda(question_of, name="question")
        | RunnableParallel(question=RunnablePassthrough(), context=retriever)
        | RunnablePassthrough.assign(sources=RunnableLambda(lambda x: _sources(x["context"]), name="sources"))
        | RunnablePassthrough.assign(answer=RunnableLambda(answer, name="answer"))
    ).with_config(run_name="rag_chain")
