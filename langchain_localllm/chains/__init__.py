"""Chains for local models: search queries, summarisation, retrieval QA and extraction.

Everything here is an LCEL runnable (``invoke``/``ainvoke``/``batch``/``stream``/
``astream_events``, composable with ``|``) whose prompts are in the model's own
prompt format. Names load lazily on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_localllm._core.lazy import lazy_exports

if TYPE_CHECKING:
    # The public names, listed once: lazy_exports reads them (an `X as X` re-exports X).
    from langchain_localllm.chains.extraction import (
        ExtractionResult as ExtractionResult,
        extraction_chain as extraction_chain,
    )
    from langchain_localllm.chains.rag import (
        rag_chain as rag_chain,
    )
    from langchain_localllm.chains.search_queries import (
        SearchQueriesOutputParser as SearchQueriesOutputParser,
        parse_search_queries as parse_search_queries,
        search_queries_chain as search_queries_chain,
    )
    from langchain_localllm.chains.summarize import (
        summarize_chain as summarize_chain,
    )

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals())
