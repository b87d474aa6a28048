"""Structured output within a token budget, on the real runtime.

- llama.cpp's own grammar engine is the judge of the GBNF the budget code writes: it compiles
  (``check_grammar``), accepts the sentences of the IR, and refuses one byte more.
- ``budgeted_completion`` on random-weight generated models (tiny and mid), temperature 0.7
  to 1.0, ``max_tokens`` 16 to 256, plain Pydantic schemas without ``maxLength`` (flat,
  nested, lists of objects, Optional, Literal) and a forced-tool-call shape: every answer
  valid and within the budget, or the typed error before any token.
- Google's Gemma 3 270M in JSON mode and with a schema at small budgets.
"""

from __future__ import annotations

import ctypes
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from langchain_localllm._core.decoding.budget import narrowed_grammar, static_grammar
from langchain_localllm._core.decoding.json_grammar import (
    MAX_INDENT,
    budget_gbnf,
    json_schema_grammar,
    json_schema_to_gbnf,
)
from langchain_localllm._core.decoding.pattern import Grammar, to_gbnf
from langchain_localllm._core.decoding.tracker import Tracker
from langchain_localllm.errors import TokenBudgetError
from langchain_localllm.llamacpp.budgeted import TokenBudget, budgeted_completion
from langchain_localllm.llamacpp.runtime import check_grammar, import_llama_cpp, load_llama
from langchain_localllm.llamacpp.token_writer import TokenWriter
from tests.fixtures.models import tiny_model
from tests.fixtures.plain_schemas import PLAIN_SCHEMAS, City
from tests.support.grammar_sentences import sentence

SCHEMAS: dict[str, dict[str, Any]] = {
    **{name: schema for name, (_, schema) in PLAIN_SCHEMAS.items()},
    "json-object": {"type": "object"},
}
BUDGETS = (16, 24, 32, 48, 64, 96, 128, 256)


@pytest.fixture(scope="module")
def tiny() -> Any:
    return load_llama(str(tiny_model("chatml")), n_ctx=1024, verbose=False).model


@pytest.fixture(scope="module")
def mid() -> Any:
    return load_llama(str(tiny_model("chatml", size="small")), n_ctx=1024, verbose=False).model


# -- llama.cpp judges the grammars -------------------------------------------------------------


class GrammarJudge:
    """Feeds text to llama.cpp's grammar sampler one byte token at a time."""

    def __init__(self, model: Any) -> None:
        self.model, self.llama_cpp = model, import_llama_cpp()
        self.byte_token = {}
        for token in range(min(model.n_vocab(), 600)):
            piece = model.detokenize([token])
            if (
                len(piece) == 1
                and piece[0] not in self.byte_token
                and f"<0x{piece[0]:02X}>" in str(model._model.token_get_text(token))
            ):
                self.byte_token[piece[0]] = token
        assert len(self.byte_token) == 256

    def _allowed(self, sampler: Any, token: int) -> bool:
        lc = self.llama_cpp
        data = (lc.llama_token_data * 1)(lc.llama_token_data(token, 0.0, 0.0))
        array = lc.llama_token_data_array(data=data, size=1, selected=-1, sorted=False)
        lc.llama_sampler_apply(sampler, ctypes.byref(array))
        return bool(data[0].logit != float("-inf"))

    def accepts(self, gbnf: str, text: str) -> bool:
        check_grammar(self.model, gbnf)
        lc = self.llama_cpp
        sampler = lc.llama_sampler_init_grammar(self.model._model.vocab, gbnf.encode(), b"root")
        try:
            for byte in text.encode():
                token = self.byte_token[byte]
                if not self._allowed(sampler, token):
                    return False
                lc.llama_sampler_accept(sampler, token)
            return self._allowed(sampler, self.model.token_eos())
        finally:
            lc.llama_sampler_free(sampler)


@pytest.fixture(scope="module")
def judge(tiny: Any) -> GrammarJudge:
    return GrammarJudge(tiny)


def test_whitespace_between_json_tokens_is_bounded_in_llama_cpp(judge: GrammarJudge) -> None:
    gbnf = json_schema_to_gbnf(SCHEMAS["flat"])
    indent = "\n" + " " * MAX_INDENT
    assert judge.accepts(gbnf, "{" + indent + '"city": "a",' + indent + '"country": "b"\n}')
    assert not judge.accepts(gbnf, "{" + indent + ' "city": "a", "country": "b"}')
    assert not judge.accepts(gbnf, '{  "city": "a", "country": "b"}')


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_narrowed_and_static_grammars_are_what_llama_cpp_accepts(judge: GrammarJudge, name: str) -> None:
    schema = SCHEMAS[name]
    grammar = json_schema_grammar(schema)
    rng = random.Random(name)
    for _ in range(4):
        document = sentence(grammar, rng)
        prefix = document[: rng.randint(0, len(document))]
        state = Tracker(grammar).start().feed(prefix)
        assert state is not None
        for budget in (state.shortest, state.shortest + rng.randint(1, 40), None):
            narrowed = narrowed_grammar(state, budget)
            gbnf = to_gbnf(narrowed)
            for _ in range(3):
                rest = sentence(narrowed, rng)
                assert judge.accepts(gbnf, rest), (prefix, rest, gbnf)
                jsonschema.validate(json.loads(prefix + rest), schema)
            if budget is not None:  # a valid completion one byte over the budget is refused
                longer = _longer_completion(grammar, state, budget, rng)
                if longer is not None:
                    assert not judge.accepts(gbnf, longer), (prefix, longer)
    budget = len(sentence(grammar, rng).encode()) + 10
    gbnf = budget_gbnf(schema, budget)
    static = static_grammar(grammar, budget)
    for _ in range(6):
        text = sentence(static, rng)
        assert judge.accepts(gbnf, text)
        assert len(text.encode()) <= budget


def _longer_completion(grammar: Grammar, state: Any, budget: int, rng: random.Random) -> str | None:
    """A completion of ``state`` longer than ``budget`` bytes, with no whitespace or optional part."""
    wide = narrowed_grammar(state, None)
    for _ in range(30):
        rest = sentence(wide, rng)
        if len(rest.encode()) > budget:
            return rest
    return None


# -- the gate: one budget check for both decoding loops ----------------------------------------


def test_the_gate_holds_a_split_character_and_takes_it_back_when_it_narrows(
    tiny: Any, judge: GrammarJudge
) -> None:
    """A character split over byte tokens is held, not passed on; when the token that completes
    it does not fit, the grammar narrows and the held token is taken back (``rewind``)."""

    def tokens(text: str) -> list[int]:  # one byte token per byte, as a model may sample them
        return [judge.byte_token[byte] for byte in text.encode()]

    schema = {"type": "object", "properties": {"v": {"enum": ["ééééééé", "a"]}}, "required": ["v"]}
    budget = TokenBudget(schema)
    max_tokens, _ = budget.prepare(tiny, 4, 12)  # '{"v":"a"}' is 9 bytes; the long value needs 22
    gate = budget.gate(tiny)
    opening, (lead, continuation) = tokens('{"v":"'), tokens("é")
    for token in opening:
        assert gate.offer(token).passed == (token,)
    held = gate.offer(lead)
    assert (held.passed, held.narrowed, held.end) == ((), None, False)
    verdict = gate.offer(continuation)
    assert verdict.narrowed is not None and verdict.rewind == 1 and verdict.passed == ()
    assert gate.passed == opening  # the held lead byte never reached the answer
    report = budget.report
    assert report is not None and (report.taken_back, report.dropped_tokens, report.narrowed) == (1, 1, True)
    # after narrowing, the short value still fits and closes the document within the budget
    for token in tokens('a"}'):
        assert gate.offer(token).passed == (token,)
    assert gate.state.complete and len(gate.passed) <= max_tokens
    assert gate.offer(tiny.token_eos()).end


def test_the_token_writer_writes_a_text_exactly_in_at_most_its_bytes(tiny: Any) -> None:
    writer = TokenWriter.of(tiny)
    assert TokenWriter.of(tiny) is writer  # one per model
    for text in ['{"city":"","country":""}', 'é"}', '\n  "x": [1, 2]}', ""]:
        tokens = writer.tokens(text)
        assert tokens is not None
        assert b"".join(tiny.detokenize([t], special=True) for t in tokens) == text.encode()
        assert writer.count(text) == len(tokens) <= len(text.encode())


# -- budgeted decoding on random weights --------------------------------------------------------


def _run(model: Any, schema: dict[str, Any], budget: int, seed: int, temperature: float) -> tuple[str, Any]:
    prompt = model.tokenize(
        b"<|im_start|>user\nAnswer in JSON.<|im_end|>\n<|im_start|>assistant\n", add_bos=True, special=True
    )
    completion = budgeted_completion(
        model, prompt, schema, budget, temperature=temperature, seed=seed, top_k=0
    )
    text = "".join(completion)
    return text, completion


@pytest.mark.parametrize("size", ["tiny", "mid"])
def test_random_weights_answer_valid_json_within_any_budget(
    request: pytest.FixtureRequest, size: str
) -> None:
    model = request.getfixturevalue(size)
    rng = random.Random(size)
    outcomes: Counter[str] = Counter()
    runs = 90 if size == "tiny" else 60
    for run in range(runs):
        name = list(SCHEMAS)[run % len(SCHEMAS)]
        schema, budget = SCHEMAS[name], rng.choice(BUDGETS)
        minimum = len(Tracker.for_schema(schema).start().shortest_completion().encode())
        try:
            text, completion = _run(model, schema, budget, seed=run, temperature=rng.uniform(0.7, 1.0))
        except TokenBudgetError as error:
            assert budget < minimum == error.minimum_tokens, (name, budget)
            outcomes["typed error"] += 1
            continue
        report = completion.report
        jsonschema.validate(json.loads(text), schema)
        assert report.completion_tokens <= budget
        assert report.finish_reason == "stop" and report.complete
        assert report.untracked == 0
        assert completion.text == text
        outcomes["narrowed" if report.narrowed else "valid"] += 1
    print(f"{size}: {runs} runs: {dict(outcomes)}")
    assert outcomes["narrowed"] > 0  # random weights run into the budget, and still close in time
    assert outcomes["typed error"] + outcomes["valid"] + outcomes["narrowed"] == runs


def test_a_small_budget_narrows_a_looping_string_and_keeps_room_for_later_fields(tiny: Any) -> None:
    text, completion = _run(tiny, SCHEMAS["flat"], 48, seed=3, temperature=1.0)
    value = City.model_validate_json(text)
    report = completion.report
    assert report.narrowed and report.cut_to_budget_at is not None
    assert value.country  # the reserve kept room for the second field
    info = report.generation_info()
    assert info["budget_narrowed"] is True
    assert info["usage"]["completion_tokens"] == report.completion_tokens <= 48
    assert info["timings"]["predicted_n"] >= report.completion_tokens


def test_a_prompt_that_leaves_too_little_context_is_refused_before_generating(tiny: Any) -> None:
    prompt = tiny.tokenize(b"word " * 1010, add_bos=True, special=False)[:1010]
    with pytest.raises(TokenBudgetError) as caught:
        budgeted_completion(tiny, prompt, SCHEMAS["flat"], 200, temperature=0.8)
    assert caught.value.budget == tiny.n_ctx() - 1010
    assert "shorten the prompt" in str(caught.value)


# -- the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gemma(gemma_path: Path) -> Any:
    return load_llama(str(gemma_path), n_ctx=1024, n_threads=2, verbose=False).model


def _gemma_prompt(model: Any, question: str) -> list[int]:
    text = f"<start_of_turn>user\n{question}<end_of_turn>\n<start_of_turn>model\n"
    return list(model.tokenize(text.encode(), add_bos=True, special=True))


@pytest.mark.real_model
@pytest.mark.parametrize(("budget", "temperature"), [(24, 0.0), (40, 0.8)])
def test_gemma_json_mode_closes_within_the_budget(gemma: Any, budget: int, temperature: float) -> None:
    """Gemma 3 270M repeats inside a string in JSON mode; the answer still closes in time."""
    completion = budgeted_completion(
        gemma,
        _gemma_prompt(gemma, "Describe Paris in JSON with many details."),
        {"type": "object"},
        budget,
        temperature=temperature,
        seed=7,
    )
    text = "".join(completion)
    assert isinstance(json.loads(text), dict)
    assert completion.report.completion_tokens <= budget
    assert completion.report.finish_reason == "stop"


@pytest.mark.real_model
@pytest.mark.parametrize("budget", [24, 32])
def test_gemma_structured_output_at_small_budgets(gemma: Any, budget: int) -> None:
    question = "Where is the Eiffel Tower? Answer with the city and the country."
    completion = budgeted_completion(
        gemma, _gemma_prompt(gemma, question), City.model_json_schema(), budget, temperature=0.8, seed=1
    )
    value = City.model_validate_json("".join(completion))
    assert completion.report.completion_tokens <= budget
    if not completion.report.narrowed:  # room enough: the model's own answer
        assert "paris" in value.city.lower()


@pytest.mark.real_model
def test_gemma_budgets_below_the_answers_bytes_are_counted_in_its_own_tokens(gemma: Any) -> None:
    """Gemma writes ``{"city":"","country":""}`` (24 bytes) in 7 tokens: budgets from 7 up are
    kept, valid and within the budget (when the model's next choice would leave no room, the
    decoder writes the shortest completion as those tokens itself); below 7 the typed error
    names the token minimum."""
    schema = City.model_json_schema()
    prompt = _gemma_prompt(gemma, "Where is the Eiffel Tower? Answer with the city and the country.")
    shortest = Tracker.for_schema(schema).start().shortest_completion()
    least = len(gemma.tokenize(shortest.encode(), add_bos=False, special=False))
    assert least < len(shortest.encode())  # the bytes would refuse all these budgets
    with pytest.raises(TokenBudgetError, match="tokens by the model's own tokenizer") as caught:
        budgeted_completion(gemma, prompt, schema, least - 1, temperature=0.8, seed=1)
    assert (caught.value.minimum_tokens, caught.value.budget) == (least, least - 1)
    closed = 0
    for budget in range(least, len(shortest.encode())):
        completion = budgeted_completion(gemma, prompt, schema, budget, temperature=0.8, seed=budget)
        City.model_validate_json("".join(completion))
        report = completion.report
        assert report.completion_tokens <= budget and report.complete and report.finish_reason == "stop"
        assert report.minimum_tokens == least
        closed += report.closed_at is not None
    assert closed > 0  # the decoder did write the rest itself


@pytest.mark.real_model
def test_gemma_structured_calls_at_once_below_the_bytes_share_the_engine(gemma_path: Path) -> None:
    """The same budgets counted in tokens on the batched engine: structured calls at 8-12
    tokens, four at once, each valid and within its budget."""
    from langchain_localllm import ChatLlamaCpp
    from langchain_localllm._inprocess.model_cache import MODEL_CACHE
    from langchain_localllm.llamacpp.sharing import engine_of

    outs = []
    for budget in (8, 12):
        chat = ChatLlamaCpp(
            model_path=str(gemma_path),
            n_ctx=512,
            max_tokens=budget,
            temperature=0.8,
            seed=budget,
            n_parallel=4,
        )
        MODEL_CACHE.evict(chat.load().key)
        questions = [f"Where is landmark number {i}? Answer with the city and the country." for i in range(4)]
        outs += chat.with_structured_output(City, include_raw=True).batch(questions)
        assert engine_of(chat.load(), 4).stats().peak_active >= 2  # short answers: some end first
        for out in outs[-4:]:
            assert out["parsing_error"] is None, out["raw"].content
            assert isinstance(out["parsed"], City)
            assert out["raw"].usage_metadata["output_tokens"] <= budget
            assert out["raw"].response_metadata["finish_reason"] == "stop"
    assert any(o["raw"].response_metadata["token_budget"]["closed_at"] is not None for o in outs)
