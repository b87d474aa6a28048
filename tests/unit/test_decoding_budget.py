"""Token budgets for structured output, without a model: the tracker, the narrowed and static
grammars, the minimum, and the tightened schema for servers.

Sentences are drawn from the grammar IR itself (:func:`sentence`) and judged by jsonschema,
not by the code under test; a property test runs the whole chain over generated schemas,
prefixes and budgets. That the GBNF rendering of these grammars is what llama.cpp accepts is
checked against llama.cpp in ``tests/integration/test_token_budget.py``.
"""

from __future__ import annotations

import json
import random
from typing import Any, Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import BaseModel

from langchain_localllm._core.decoding.budget import check_budget, narrowed_grammar, static_grammar
from langchain_localllm._core.decoding.json_grammar import MAX_INDENT, budget_schema, json_schema_grammar
from langchain_localllm._core.decoding.pattern import (
    Grammar,
    Repeat,
    Text,
    charset,
    max_length,
    min_length,
)
from langchain_localllm._core.decoding.tracker import Tracker
from langchain_localllm.errors import InvalidParameterError, TokenBudgetError
from tests.support.grammar_sentences import sentence


class City(BaseModel):
    city: str
    country: str


class Item(BaseModel):
    name: str
    kind: Literal["fruit", "vegetable"]
    grams: int


class Basket(BaseModel):
    owner: str
    items: list[Item]
    note: str | None = None


CITY = City.model_json_schema()
BASKET = Basket.model_json_schema()


def valid(text: str, schema: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


# -- the tracker -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "{",
        '{\n  "ci',
        '{"city": "Par',
        '{"city":"Paris\\u00',
        '{"city":"Paris",',
        '{"city":"P","country":"F"',
    ],
)
def test_the_shortest_completion_closes_what_is_open_and_is_exact(prefix: str) -> None:
    state = Tracker.for_schema(CITY).start().feed(prefix)
    assert state is not None
    completion = state.shortest_completion()
    assert valid(prefix + completion, CITY)
    assert len(completion.encode()) == state.shortest
    assert state.feed(completion) is not None and state.feed(completion).complete  # type: ignore[union-attr]


def test_the_tracker_refuses_what_the_grammar_refuses() -> None:
    start = Tracker.for_schema(CITY).start()
    assert start.feed('{"town"') is None  # no such key
    assert start.feed('{"country"') is None  # required keys come in schema order
    assert start.feed("{  ") is None  # one whitespace run between tokens: " " or a newline and indent
    assert start.feed("{\n" + " " * MAX_INDENT) is not None
    assert start.feed("{\n" + " " * (MAX_INDENT + 1)) is None
    assert start.feed('{"city":"a\nb"') is None  # a raw newline inside a string
    done = start.feed('{"city":"a","country":"b"}')
    assert done is not None and done.finished
    assert done.feed(" ") is None


def test_ambiguous_alternatives_are_followed_until_they_part() -> None:
    schema = {
        "anyOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        ]
    }
    state = Tracker.for_schema(schema).start().feed('{"a":"x"')
    assert state is not None and len(state.stacks) == 2
    assert state.shortest == 1  # "}" (the first alternative)
    assert state.feed(',"b":7}') is not None and state.feed("}") is not None


def test_whitespace_between_tokens_is_bounded_so_fixed_answers_are_bounded() -> None:
    schema = {
        "type": "object",
        "properties": {
            "label": {"enum": ["yes", "no"]},
            "stars": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["label", "stars"],
    }
    grammar = json_schema_grammar(schema)
    # "{" ws "label" ":" ws value "," ws "stars" ":" ws value ws "}": five runs of at most 1 + MAX_INDENT
    assert max_length(grammar) == len('{"label":"yes","stars":1}') + 5 * (1 + MAX_INDENT)
    assert max_length(json_schema_grammar({"type": "number"})) == 1 + 16 + 1 + 15 + 1 + 1 + 3


# -- the minimum -------------------------------------------------------------------------------


def test_a_budget_below_the_shortest_answer_is_a_typed_error_naming_the_minimum() -> None:
    grammar = json_schema_grammar(CITY)
    minimum = len('{"city":"","country":""}')
    assert min_length(grammar) == minimum
    assert check_budget(grammar, minimum) == minimum
    with pytest.raises(TokenBudgetError) as caught:
        check_budget(grammar, minimum - 1)
    assert caught.value.minimum_tokens == minimum
    assert isinstance(caught.value, InvalidParameterError)
    assert f"max_tokens to at least {minimum}" in str(caught.value)
    assert '{"city":"","country":""}' in str(caught.value)


def test_a_prompt_leaving_too_little_context_is_the_same_error_saying_so() -> None:
    grammar = json_schema_grammar(CITY)
    assert check_budget(grammar, 500, prompt_tokens=900, n_ctx=1024) == 124
    with pytest.raises(TokenBudgetError) as caught:
        check_budget(grammar, 500, prompt_tokens=1010, n_ctx=1024)
    assert caught.value.budget == 14
    assert "shorten the prompt by 10 tokens" in str(caught.value)


# -- narrowing ---------------------------------------------------------------------------------


def test_the_narrowed_grammar_closes_the_open_string_in_time_and_keeps_later_fields() -> None:
    state = Tracker.for_schema(CITY).start().feed('{"city": "Paris is a city that')
    assert state is not None
    budget = state.shortest + 6
    narrowed = narrowed_grammar(state, budget)
    assert max_length(narrowed) == budget
    assert min_length(narrowed) == state.shortest
    rng = random.Random(1)
    for _ in range(50):
        rest = sentence(narrowed, rng)
        assert len(rest.encode()) <= budget
        assert valid('{"city": "Paris is a city that' + rest, CITY)
        assert " " not in rest.split('"country":')[0][-1:]  # no whitespace added


def test_narrowing_leaves_out_optional_fields_and_new_items() -> None:
    state = (
        Tracker.for_schema(BASKET)
        .start()
        .feed('{"owner":"Ann","items":[{"name":"fig","kind":"fruit","grams":3}')
    )
    assert state is not None
    for budget in (None, state.shortest, state.shortest + 40):
        rng = random.Random(budget)
        for _ in range(30):
            rest = sentence(narrowed_grammar(state, budget), rng)
            assert rest.startswith("]")  # no new item
            assert '"note"' not in rest  # no optional field
            assert valid('{"owner":"Ann","items":[{"name":"fig","kind":"fruit","grams":3}' + rest, BASKET)


def test_a_budget_below_the_open_completion_cannot_be_narrowed() -> None:
    state = Tracker.for_schema(CITY).start().feed('{"city":"x"')
    assert state is not None
    with pytest.raises(ValueError, match="no completion fits"):
        narrowed_grammar(state, state.shortest - 1)


# -- static budgets (servers) ------------------------------------------------------------------


@pytest.mark.parametrize("budget", [40, 64, 128])
def test_the_static_grammar_fits_the_budget_and_keeps_optional_parts_where_they_fit(budget: int) -> None:
    grammar = static_grammar(json_schema_grammar(BASKET), budget)
    assert max_length(grammar) is not None and max_length(grammar) <= budget  # type: ignore[operator]
    rng = random.Random(budget)
    texts = [sentence(grammar, rng) for _ in range(60)]
    assert all(valid(t, BASKET) and len(t.encode()) <= budget for t in texts)
    if budget >= 128:
        assert any('"name"' in t for t in texts)  # items when their share holds one


def _compact(schema: dict[str, Any], *, gap: int = 0, ascii_only: bool = True) -> Grammar:
    """``schema``'s grammar with ``gap`` spaces at most between tokens (and ASCII-only strings)."""
    rules = dict(json_schema_grammar(schema).rules)
    rules["ws"] = Repeat(Text(" "), 0, gap)
    if ascii_only and "char" in rules:
        rules["char"] = charset([(0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E)])
    return Grammar(rules)


@pytest.mark.parametrize("budget", [36, 48, 64, 100, 200])
@pytest.mark.parametrize("gap", [0, 2])
def test_the_tightened_schema_allows_only_answers_that_fit(budget: int, gap: int) -> None:
    tight = budget_schema(BASKET, budget, gap_bytes=gap)
    grammar = _compact(tight, gap=gap)
    assert max_length(grammar) is not None and max_length(grammar) <= budget  # type: ignore[operator]
    rng = random.Random(budget)
    for _ in range(40):
        text = sentence(grammar, rng, wide=False)
        assert valid(text, BASKET), text  # still valid against the user's schema
        assert valid(text, tight)
    with pytest.raises(TokenBudgetError):
        budget_schema(BASKET, min_length(_compact(BASKET, gap=0)) - 1)


# -- the property test -------------------------------------------------------------------------

_names = st.sampled_from(["a", "b", "city", "name", "x_1", "été", "k"])


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.just({"type": "string"}),
        st.builds(
            lambda lo, n: {"type": "string", "minLength": lo, "maxLength": lo + n},
            st.integers(0, 3),
            st.integers(0, 6),
        ),
        st.builds(
            lambda v: {"enum": v},
            st.lists(
                st.sampled_from(["red", "green", "x", "", 3, None]), min_size=1, max_size=3, unique=True
            ),
        ),
        st.builds(lambda v: {"const": v}, st.sampled_from(["get_weather", 7, True])),
        st.just({"type": "integer"}),
        st.builds(
            lambda lo, n: {"type": "integer", "minimum": lo, "maximum": lo + n},
            st.integers(-50, 50),
            st.integers(0, 2000),
        ),
        st.just({"type": "number"}),
        st.builds(
            lambda lo, n: {"type": "number", "minimum": lo, "maximum": lo + n},
            st.integers(-5, 5),
            st.integers(1, 100),
        ),
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
    )


def _objects(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def build(props: dict[str, dict[str, Any]], required: list[bool]) -> dict[str, Any]:
        names = list(props)
        return {
            "type": "object",
            "properties": props,
            "required": [n for n, r in zip(names, required, strict=False) if r],
        }

    return st.builds(
        build,
        st.dictionaries(_names, children, min_size=1, max_size=4),
        st.lists(st.booleans(), min_size=4, max_size=4),
    )


_schemas = st.recursive(
    _leaf(),
    lambda children: st.one_of(
        _objects(children),
        st.builds(
            lambda item, lo, n: {
                "type": "array",
                "items": item,
                "minItems": lo,
                **({} if n is None else {"maxItems": lo + n}),
            },
            children,
            st.integers(0, 2),
            st.one_of(st.none(), st.integers(0, 3)),
        ),
        st.builds(lambda s: {"anyOf": [s, {"type": "null"}]}, children),  # Optional[...]
    ),
    max_leaves=8,
)


def _with_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as Pydantic writes nested models: the first nested object moved to ``$defs``."""
    for key, sub in (schema.get("properties") or {}).items():
        if sub.get("type") == "object":
            props = dict(schema["properties"])
            props[key] = {"$ref": "#/$defs/Inner"}
            return {**schema, "properties": props, "$defs": {"Inner": sub}}
    return schema


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_schemas.map(_with_defs), st.integers(0, 2**32 - 1), st.floats(0, 1), st.integers(0, 80))
def test_narrowed_grammars_fit_their_budget_and_complete_validly(
    schema: dict[str, Any], seed: int, cut: float, extra: int
) -> None:
    grammar = json_schema_grammar(schema)
    rng = random.Random(seed)
    document = sentence(grammar, rng)
    assert valid(document, schema), document
    prefix = document[: int(len(document) * cut)]
    state = Tracker(grammar).start().feed(prefix)
    assert state is not None, (prefix, document)

    completion = state.shortest_completion()
    assert len(completion.encode()) == state.shortest
    assert valid(prefix + completion, schema), prefix + completion

    budget = state.shortest + extra
    narrowed = narrowed_grammar(state, budget)
    longest = max_length(narrowed)
    assert longest is not None and longest <= budget
    assert min_length(narrowed) == state.shortest
    structure_only = narrowed_grammar(state, None)
    for rest in (sentence(narrowed, rng), sentence(narrowed, rng), sentence(structure_only, rng)):
        assert valid(prefix + rest, schema), (prefix, rest)
        after = state.feed(rest)
        assert after is not None and after.complete  # the tracker agrees
    assert len(sentence(narrowed, rng).encode()) <= budget

    whole = static_grammar(grammar, min_length(grammar) + extra)
    text = sentence(whole, rng)
    assert len(text.encode()) <= min_length(grammar) + extra
    assert valid(text, schema), text
