"""Turn a question into a few similar search queries, in the model's own prompt format.

.. code-block:: python

    from langchain_localllm import LlamaCpp
    from langchain_localllm.chains import search_queries_chain

    chain = search_queries_chain(LlamaCpp(model_path="llama-2-7b-chat.Q4_K_M.gguf"), n=3)
    chain.invoke("Which NBA team did LeBron James lead to a championship?")
    # ['Which team did LeBron James win his first NBA title with?', ...]
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.output_parsers import BaseOutputParser
from langchain_core.runnables import Runnable, RunnableLambda

from langchain_localllm.chains._inputs import question_of
from langchain_localllm.chains._llm import select_prompt, text_model
from langchain_localllm.errors import InvalidParameterError
from langchain_localllm.prompts import ConditionalPromptSelector, format_prompt_selector
from langchain_localllm.prompts.completion import CompletionPrompt, with_completion_prompt

__all__ = [
    "SearchQueriesOutputParser",
    "completion_queries_prompt",
    "parse_search_queries",
    "search_queries_chain",
    "search_queries_prompt",
]

SYSTEM = "You are an assistant tasked with improving Google search results."
INSTRUCTION = (
    "Generate {count} Google search queries that are similar to this question. The output should be "
    "a numbered list of questions and each should have a question mark at the end: {{question}}"
)
_NUMBER_WORDS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN"]

# "1.", "1)", "(1)", "1:", "#1", "Query 1:", "Question 1 -" at the start of a line.
_NUMBERED = re.compile(
    r"^\s*(?:(?:query|question|search query)\s*)?\(?#?\d{1,2}\s*[.):\]-]\s*", re.IGNORECASE
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022+\u2013>]|\[\s?\])\s+")
_INLINE_ITEM = re.compile(r"(?<=[?.!\"'])\s+(?=\(?\d{1,2}[.)]\s)")
_PREAMBLE = re.compile(
    r"^(sure|certainly|of course|okay|ok|here\s+(are|is)|i\s+(hope|can|have|will)|these\s+(are|queries)|"
    r"hope\s+this|note|let me know|feel free|the following|below\s+(are|is))\b",
    re.IGNORECASE,
)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"


def _clean(line: str) -> str:
    text = _BULLET.sub("", _NUMBERED.sub("", line)).strip()
    text = text.replace("**", "").replace("__", "").strip()
    text = text.strip(_QUOTES).strip()
    text = text.rstrip(" .,;:!").strip().strip(_QUOTES).strip()
    if text and not text.endswith("?"):
        text += "?"
    return text


def _is_chatter(line: str) -> bool:
    """A preamble ("Sure! Here are three ...:") or a closing remark, not a query."""
    stripped = line.strip()
    return stripped.endswith(":") or bool(_PREAMBLE.match(stripped.lstrip(_QUOTES)))


def parse_search_queries(text: str, n: int | None = None) -> list[str]:
    """Queries in a model's answer: numbered, bulleted or plain lines.

    Numbering, bullets, bold markers and quotes are stripped, each query ends with a
    question mark, preambles ("Sure! Here are three ...:") and closing remarks are
    dropped, duplicates (ignoring case) removed; at most ``n`` are returned.
    """
    lines: list[str] = []
    for raw in text.splitlines():
        lines.extend(part for part in _INLINE_ITEM.split(raw) if part.strip())
    items = [line for line in lines if _NUMBERED.match(line) or _BULLET.match(line)]
    candidates = items if items else [line for line in lines if not _is_chatter(line)]
    queries: list[str] = []
    seen: set[str] = set()
    for line in candidates:
        query = _clean(line)
        key = " ".join(query.lower().split())
        if len(query) > 1 and key not in seen:
            seen.add(key)
            queries.append(query)
    return queries if n is None else queries[:n]


class SearchQueriesOutputParser(BaseOutputParser[list[str]]):
    """Parse a model's list of search queries into ``list[str]`` (see ``parse_search_queries``)."""

    n: int | None = None
    """Most queries to return; None for all."""

    def parse(self, text: str) -> list[str]:
        """The queries in ``text``."""
        return parse_search_queries(text, self.n)

    @property
    def _type(self) -> str:
        return "search_queries"


_EXAMPLE_QUESTION = "Which NBA team did LeBron James lead to a championship in 2016?"
_EXAMPLE_QUERIES = (
    "Which team did LeBron James win the 2016 NBA championship with?",
    "What NBA team won the 2016 Finals with LeBron James?",
    "Who did LeBron James play for when he won the 2016 NBA title?",
    "Which team beat the Golden State Warriors in the 2016 NBA Finals?",
    "What was LeBron James's team in the 2016 NBA championship?",
)


def completion_queries_prompt(n: int = 3) -> CompletionPrompt:
    """The prompt for base models: ``n`` queries continued from one worked example."""
    count = _NUMBER_WORDS[n].lower() if n < len(_NUMBER_WORDS) else str(n)
    shown = _EXAMPLE_QUERIES[: min(n, len(_EXAMPLE_QUERIES))]
    example = "\n".join(f"{i}. {q}" for i, q in enumerate(shown, 1))
    return CompletionPrompt(
        intro=f"Each question below is followed by {count} Google search queries similar to it, "
        "numbered, one per line, each ending with a question mark.",
        example=f"Question: {_EXAMPLE_QUESTION}\nQueries:\n{example}",
        template="Question: {question}\nQueries:\n1.",
        stop=("\n\n", "\nQuestion:"),
    )


def search_queries_prompt(n: int = 3) -> ConditionalPromptSelector:
    """Per-format prompts (one per registered format) asking for ``n`` similar queries;
    a completion-style prompt with a worked example for base models."""
    count = _NUMBER_WORDS[n] if n < len(_NUMBER_WORDS) else str(n)
    selector = format_prompt_selector(INSTRUCTION.format(count=count), system=SYSTEM)
    return with_completion_prompt(selector, completion_queries_prompt(n))


def search_queries_chain(
    llm: Runnable[Any, Any],
    n: int = 3,
    *,
    prompt: ConditionalPromptSelector | None = None,
) -> Runnable[Any, list[str]]:
    """A runnable from a question (``str`` or ``{"question": ...}``) to ``n`` similar queries.

    The prompt is chosen for ``llm``'s own prompt format (Llama-2's ``[INST] <<SYS>>``,
    ChatML, Llama-3, ...; detected once per model) when the chain runs, and the model
    stops at its format's end-of-turn marker. Chat models get the plain prompt: their
    server applies the template.

    Args:
        llm: Any LangChain LLM or chat model; the format is detected from it.
        n: How many queries to ask for and return at most.
        prompt: A selector to use instead of the built-in per-format prompts; its
            prompts take ``{question}``.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidParameterError(f"n must be a positive integer (how many queries); got {n!r}.", n=n)
    selector = prompt or search_queries_prompt(n)
    parser = SearchQueriesOutputParser(n=n)

    def generate(_question: str) -> Runnable[Any, list[str]]:
        chosen = select_prompt(selector, llm)
        # A completion prompt ends with "1.": the model's first line is the first query.
        first = "1." if str(getattr(chosen, "template", "")).endswith("\n1.") else ""
        return (
            RunnableLambda(lambda q: {"question": q}, name="question")
            | chosen
            | text_model(llm, chosen)
            | RunnableLambda(lambda text: first + text, name="numbered")
            | parser
        )

    return RunnableLambda(question_of, name="question") | RunnableLambda(generate, name="search_queries")
