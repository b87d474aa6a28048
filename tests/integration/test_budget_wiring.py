"""Budget-aware decoding behind the public classes, at the edges: random weights, temperature
0.7-1.0, ``max_tokens`` 16-256, plain schemas without ``maxLength``.

``ChatLlamaCpp.with_structured_output``, forced ``bind_tools``, JSON mode and ``LlamaCpp(json_schema=)``
answer valid within the call's ``max_tokens`` every time, or raise ``TokenBudgetError`` before
any token when the budget is below the shortest valid answer.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel

from langchain_localllm import ChatLlamaCpp, LlamaCpp
from langchain_localllm._core.decoding.tracker import Tracker
from langchain_localllm.chains.extraction import extraction_chain
from langchain_localllm.errors import TokenBudgetError
from tests.fixtures.models import tiny_model
from tests.fixtures.plain_schemas import PLAIN_SCHEMAS, City, Person

BUDGETS = (16, 24, 32, 48, 64, 96, 128, 256)
SCHEMAS = {name: schema for name, (_, schema) in PLAIN_SCHEMAS.items() if name != "forced-call"}


class GetWeather(BaseModel):
    """Get the weather in a city."""

    city: str
    unit: Literal["celsius", "fahrenheit"]


def _minimum(schema: dict[str, Any]) -> int:
    return len(Tracker.for_schema(schema).start().shortest_completion().encode())


def _chat(**kwargs: Any) -> ChatLlamaCpp:
    return ChatLlamaCpp(model_path=str(tiny_model("chatml")), n_ctx=1024, verbose=False, **kwargs)


def test_structured_output_is_valid_within_any_budget_or_refused_up_front() -> None:
    rng = random.Random(19)
    outcomes: Counter[str] = Counter()
    runs = 40
    for run in range(runs):
        name = list(SCHEMAS)[run % len(SCHEMAS)]
        question, schema = PLAIN_SCHEMAS[name]
        budget = rng.choice(BUDGETS)
        chat = _chat(temperature=rng.uniform(0.7, 1.0), max_tokens=budget, seed=run, top_k=0)
        structured = chat.with_structured_output(schema, method="json_schema", include_raw=True)
        try:
            out = structured.invoke(question)
        except TokenBudgetError as error:
            assert budget < _minimum(schema) == error.minimum_tokens, (name, budget)
            outcomes["typed error"] += 1
            continue
        assert out["parsing_error"] is None, (name, budget, out["raw"].content)
        jsonschema.validate(out["parsed"], schema)
        meta = out["raw"].response_metadata
        assert meta["finish_reason"] == "stop"
        assert out["raw"].usage_metadata["output_tokens"] <= budget
        outcomes["narrowed" if meta["budget_narrowed"] else "valid"] += 1
    print(f"with_structured_output: {runs} runs: {dict(outcomes)}")
    assert outcomes["narrowed"] > 0  # the budget did run out, and the answers still closed
    assert sum(outcomes.values()) == runs


def test_structured_calls_at_once_keep_their_budgets_on_the_shared_engine() -> None:
    """``batch`` of structured calls at small budgets: they share the forward passes on the
    model's batched engine, each sequence with its own budget check, and every answer is
    valid within its budget."""
    from langchain_localllm._inprocess.model_cache import MODEL_CACHE
    from langchain_localllm.llamacpp.sharing import engine_of

    chat = _chat(temperature=0.9, max_tokens=48, seed=5, top_k=0, n_parallel=4)
    MODEL_CACHE.evict(chat.load().key)  # a load of its own: the engine's statistics start here
    questions = [PLAIN_SCHEMAS[name][0] for name in SCHEMAS for _ in range(2)]
    outs = chat.with_structured_output(City, include_raw=True).batch(questions)
    narrowed = 0
    for out in outs:
        assert out["parsing_error"] is None, out["raw"].content
        assert isinstance(out["parsed"], City)
        meta = out["raw"].response_metadata
        assert meta["finish_reason"] == "stop" and out["raw"].usage_metadata["output_tokens"] <= 48
        narrowed += meta["budget_narrowed"]
    assert narrowed > 0
    assert engine_of(chat.load(), 4).stats().peak_active >= 3


def test_a_plain_pydantic_schema_at_a_small_budget_keeps_every_field() -> None:
    chat = _chat(temperature=1.0, max_tokens=48, seed=3, top_k=0)
    out = chat.with_structured_output(City, include_raw=True).invoke("Where is the Eiffel Tower?")
    assert isinstance(out["parsed"], City)
    assert out["raw"].response_metadata["budget_narrowed"] is True
    assert out["raw"].response_metadata["token_budget"]["max_tokens"] == 48


def test_forced_tool_calls_are_valid_calls_within_any_budget() -> None:
    rng = random.Random(7)
    tool_schema = GetWeather.model_json_schema()
    outcomes: Counter[str] = Counter()
    runs = 24
    for run in range(runs):
        budget = rng.choice((16, 64, 96, 128, 192, 256))  # a Hermes call needs about 70
        chat = _chat(temperature=rng.uniform(0.7, 1.0), max_tokens=budget, seed=run, top_k=0)
        bound = chat.bind_tools([GetWeather], tool_choice="GetWeather")
        try:
            message = bound.invoke("What is the weather in Oslo?")
        except TokenBudgetError as error:
            assert error.minimum_tokens > budget
            outcomes["typed error"] += 1
            continue
        assert len(message.tool_calls) == 1, (budget, message.content)
        call = message.tool_calls[0]
        assert call["name"] == "GetWeather"
        jsonschema.validate(call["args"], tool_schema)
        assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] <= budget
        outcomes["narrowed" if message.response_metadata["budget_narrowed"] else "valid"] += 1
    print(f"forced tool calls: {runs} runs: {dict(outcomes)}")
    assert outcomes["narrowed"] > 0
    assert outcomes["typed error"] > 0  # 16 tokens cannot hold a Hermes call: refused up front


@pytest.mark.parametrize("budget", [16, 40])
def test_json_mode_closes_within_the_budget(budget: int) -> None:
    chat = _chat(temperature=0.9, max_tokens=budget, seed=5, top_k=0)
    out = chat.with_structured_output(None, method="json_mode", include_raw=True).invoke("Describe Paris.")
    assert out["parsing_error"] is None
    assert isinstance(out["parsed"], dict)
    assert out["raw"].usage_metadata["output_tokens"] <= budget


def test_a_budget_below_the_shortest_answer_is_refused_before_any_token() -> None:
    chat = _chat(temperature=0.8, max_tokens=8)
    with pytest.raises(TokenBudgetError, match="raise max_tokens to at least") as caught:
        chat.with_structured_output(City).invoke("Where is the Eiffel Tower?")
    assert caught.value.minimum_tokens == _minimum(City.model_json_schema())


def test_llamacpp_given_a_schema_answers_valid_json_within_the_budget() -> None:
    schema = PLAIN_SCHEMAS["nested"][1]
    llm = LlamaCpp(
        model_path=str(tiny_model("chatml")), n_ctx=1024, verbose=False, json_schema=schema, top_k=0
    )
    narrowed = 0
    for seed, budget in enumerate((80, 96, 128)):
        result = llm.generate(["A person:"], max_tokens=budget, temperature=0.9, seed=seed)
        generation = result.generations[0][0]
        jsonschema.validate(json.loads(generation.text), schema)
        info = generation.generation_info or {}
        assert info["finish_reason"] == "stop" and info["usage"]["completion_tokens"] <= budget
        narrowed += bool(info["budget_narrowed"])
    assert narrowed
    with pytest.raises(TokenBudgetError):
        llm.invoke("A person:", max_tokens=71)  # the shortest answer is 72 bytes


DOCUMENTS = [
    "The Eiffel Tower stands in Paris, France.",
    "Big Ben is a clock tower in London, in the United Kingdom.",
    "The Colosseum, in Rome, Italy, held sixty thousand people.",
    "Sagrada Familia is a basilica in Barcelona, Spain.",
    "The Little Mermaid statue sits on the waterfront of Copenhagen, Denmark.",
    "The Atomium was built in Brussels, Belgium, for the 1958 fair.",
]


def test_extraction_at_a_small_budget_gives_whole_records_or_the_reason() -> None:
    chat = _chat(temperature=0.9, max_tokens=64, seed=11, top_k=0)
    results = extraction_chain(chat, City, max_concurrency=2).invoke(DOCUMENTS)
    assert [r.ok for r in results] == [True] * 6, [r.error for r in results]
    assert all(len(r.records) == 1 and isinstance(r.records[0], City) for r in results)
    many = extraction_chain(chat, City, many=True, max_concurrency=2).invoke(DOCUMENTS)
    assert all(r.ok and all(isinstance(c, City) for c in r.records) for r in many), [r.error for r in many]
    # Person's shortest answer is 72 bytes: each document says why it gave nothing
    refused = extraction_chain(chat, Person, max_concurrency=2).invoke(DOCUMENTS[:2])
    assert [r.ok for r in refused] == [False, False]
    assert all("TokenBudgetError" in (r.error or "") and "at least 72" in (r.error or "") for r in refused)
