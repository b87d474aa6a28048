"""Normalise what users pass to the chains, with typed errors for the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.documents import Document

from langchain_localllm.errors import InvalidParameterError


def question_of(value: Any) -> str:
    """The question in ``"..."`` or ``{"question": "..."}``."""
    if isinstance(value, Mapping):
        if "question" not in value:
            raise InvalidParameterError(
                f"Expected a question string or a dict with a 'question' key; got keys {sorted(value)}.",
                value=value,
            )
        value = value["question"]
    if not isinstance(value, str):
        raise InvalidParameterError(
            f"The question must be a string; got {type(value).__name__}. "
            "Pass 'text' or {'question': 'text'}.",
            value=value,
        )
    if not value.strip():
        raise InvalidParameterError("The question is empty; pass the text to search for.", value=value)
    return value.strip()


def documents_of(value: Any) -> list[Document]:
    """Documents from a str, a Document, a list of them or ``{"input_documents"|"text": ...}``."""
    if isinstance(value, Mapping):
        for key in ("input_documents", "documents", "text", "input"):
            if key in value:
                value = value[key]
                break
        else:
            raise InvalidParameterError(
                "Expected a str, a Document, a list of Documents or a dict with an 'input_documents' "
                f"or 'text' key; got keys {sorted(value)}.",
                value=value,
            )
    items: Sequence[Any] = [value] if isinstance(value, (str, Document)) else value
    if not isinstance(items, Sequence):
        raise InvalidParameterError(
            f"Cannot summarise a {type(value).__name__}; pass a str, a Document or a list of Documents.",
            value=value,
        )
    docs: list[Document] = []
    for item in items:
        if isinstance(item, Document):
            docs.append(item)
        elif isinstance(item, str):
            docs.append(Document(page_content=item))
        else:
            raise InvalidParameterError(
                f"Cannot summarise a {type(item).__name__} item; pass str or Document items.", value=item
            )
    if not any(doc.page_content.strip() for doc in docs):
        raise InvalidParameterError("There is no text to summarise: the input is empty.", value=value)
    return [doc for doc in docs if doc.page_content.strip()]
