"""Chains for local models: search queries, summarisation, retrieval QA and extraction.

Everything here is an LCEL runnable (``invoke``/``ainvoke``/``batch``/``stream``/
``astream_events``, composable with ``|``) whose prompts are in the model's own
prompt format. Names load lazily on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_localllm._core.lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_localllm.chains.extraction import ExtractionResult, extraction_chain
    from langchain_localllm.chains.rag import rag_chain
    from langchain_localllm.chains.search_queries import (
        SearchQueriesOutputParser,
        parse_search_queries,
        search_queries_chain,
    )
    from langchain_localllm.chains.summarize import summarize_chain

#: Public name -> module that defines it, imported on first access.
_LAZY = {
    "extraction_chain": "langchain_localllm.chains.extraction",
    "ExtractionResult": "langchain_localllm.chains.extraction",
    "rag_chain": "langchain_localllm.chains.rag",
    "search_queries_chain": "langchain_localllm.chains.search_queries",
    "parse_search_queries": "langchain_localllm.chains.search_queries",
    "SearchQueriesOutputParser": "langchain_localllm.chains.search_queries",
    "summarize_chain": "langchain_localllm.chains.summarize",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "ExtractionResult",
    "SearchQueriesOutputParser",
    "extraction_chain",
    "parse_search_queries",
    "rag_chain",
    "search_queries_chain",
    "summarize_chain",
]
