"""Token budgets over servers: the schema (or grammar) sent is tightened to ``max_tokens``; an
answer is valid, or the typed ``TruncatedOutputError`` when it still stops for length, or
``TokenBudgetError`` before any request when the budget cannot hold the shortest answer.
Never a cut-off value parsed.

Real llama-server (Gemma 3 270M; ``ChatLlamafile`` and ``ChatOpenAICompatible`` send
llama-server's ``grammar``, whitespace bounded) and the Ollama emulator's ``format`` path.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel

from langchain_localllm import ChatLlamafile, ChatOllama, ChatOpenAICompatible
from langchain_localllm.errors import TokenBudgetError, TruncatedOutputError
from tests.fixtures.plain_schemas import City, Person
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaTestServer

QUESTION = "Where is the Eiffel Tower? Give the city and the country."


def _outcome(chat: BaseChatModel, schema: Any, budget: int) -> str:
    """Run one structured call; check what it returned; name the outcome."""
    structured = chat.with_structured_output(schema, include_raw=True)
    try:
        out = structured.invoke(QUESTION)
    except TokenBudgetError as error:
        assert error.minimum_tokens > budget
        return "typed error up front"
    finish = out["raw"].response_metadata.get("finish_reason")
    if out["parsing_error"] is not None:
        assert isinstance(out["parsing_error"], TruncatedOutputError), out["parsing_error"]
        assert finish == "length" and out["parsed"] is None
        assert out["parsing_error"].llm_output == out["raw"].content
        return "truncated"
    assert finish != "length"  # never a cut-off value parsed
    assert isinstance(out["parsed"], schema)
    assert out["raw"].usage_metadata["output_tokens"] <= budget
    return "valid"


@pytest.mark.real_model
@pytest.mark.parametrize("budget", [8, 40, 200])
@pytest.mark.parametrize("cls", [ChatLlamafile, ChatOpenAICompatible])
def test_llama_server_answers_fit_the_budget(gemma_server: LlamaServer, cls: type, budget: int) -> None:
    base_url = gemma_server.base_url if cls is ChatLlamafile else gemma_server.base_url + "/v1"
    chat = cls(base_url=base_url, max_tokens=budget, temperature=0)
    outcome = _outcome(chat, City, budget)
    # the grammar sent bounds strings and whitespace: the answer always closes in time
    assert outcome == ("typed error up front" if budget < 24 else "valid"), outcome


@pytest.mark.parametrize("budget", [16, 40, 96, 160])
def test_ollama_format_answers_are_valid_or_typed_errors(
    ollama_server: OllamaTestServer, budget: int
) -> None:
    outcomes = set()
    for seed in range(3):
        chat = ChatOllama(
            base_url=ollama_server.base_url,
            model="tiny-chatml",
            num_predict=budget,
            temperature=0.9,
            seed=seed,
        )
        outcomes.add(_outcome(chat, Person, budget))
    print(f"ollama format, num_predict={budget}: {sorted(outcomes)}")
    assert outcomes <= {"valid", "truncated", "typed error up front"}
    if budget < 72:  # Person's shortest answer is 72 bytes
        assert outcomes == {"typed error up front"}
