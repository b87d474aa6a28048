"""search_queries_chain and its parser, with fake LLMs (exact content)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LLM, FakeListLLM
from langchain_core.runnables import RunnableLambda

from langchain_localllm.chains import SearchQueriesOutputParser, parse_search_queries, search_queries_chain
from langchain_localllm.errors import InvalidParameterError

pytestmark = pytest.mark.usefixtures("fresh_prompt_format_cache")

ISSUE_OUTPUT = """  Sure! Here are three similar search queries with a question mark at the end:

1. Which NBA team did LeBron James lead to a championship in the year he was drafted?
2. Who won the Grammy Awards for Best New Artist and Best Female Pop Vocal Performance in the same year that Lady Gaga was born?
3. What MLB team did Babe Ruth play for when he hit 60 home runs in a single season?
"""  # noqa: E501
ISSUE_QUERIES = [
    "Which NBA team did LeBron James lead to a championship in the year he was drafted?",
    "Who won the Grammy Awards for Best New Artist and Best Female Pop Vocal Performance in the same year "
    "that Lady Gaga was born?",
    "What MLB team did Babe Ruth play for when he hit 60 home runs in a single season?",
]


class RecordingLLM(LLM):
    """Answers ``response`` and records each prompt and its stop sequences."""

    response: str = ISSUE_OUTPUT
    model_name: str = "fake-model"
    prompts: list[str] = []
    stops: list[list[str] | None] = []

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        self.prompts.append(prompt)
        self.stops.append(stop)
        return self.response


def test_issue_example_gives_exactly_the_three_queries() -> None:
    assert parse_search_queries(ISSUE_OUTPUT, 3) == ISSUE_QUERIES


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "1) first query?\n2) second query?\n3) third query?",
            ["first query?", "second query?", "third query?"],
        ),
        ("(1) alpha?\n(2) beta?", ["alpha?", "beta?"]),
        ("- alpha?\n* beta?\n\u2022 gamma?", ["alpha?", "beta?", "gamma?"]),
        ('1. "quoted query?"\n2. \u201csmart quotes\u201d', ["quoted query?", "smart quotes?"]),
        ("1. **bold query**\n2. `code query`", ["bold query?", "code query?"]),
        ("1. no question mark\n2. ends with a period.", ["no question mark?", "ends with a period?"]),
        ("1. same thing?\n2. Same  Thing?\n3. other?", ["same thing?", "other?"]),
        ("1. a one?\n2. a two?\n3. a three?\n4. a four?", ["a one?", "a two?", "a three?"]),
        ("Query 1: alpha?\nQuery 2: beta?", ["alpha?", "beta?"]),
        ("1. alpha? 2. beta? 3. gamma?", ["alpha?", "beta?", "gamma?"]),
        (
            "Here are some queries:\nalpha search?\nbeta search\nI hope this helps!",
            ["alpha search?", "beta search?"],
        ),
        (
            "Sure, here you go:\n\n1. alpha?\n2. beta?\n\nThese queries should help you find more.",
            ["alpha?", "beta?"],
        ),
        ("Certainly! Here are three queries:\n1. alpha?\n\n   2. beta?", ["alpha?", "beta?"]),
        ("", []),
        ("   \n\n", []),
    ],
)
def test_parser_on_real_looking_shapes(output: str, expected: list[str]) -> None:
    assert parse_search_queries(output, 3) == expected


def test_parser_without_limit_and_as_output_parser() -> None:
    text = "1. a?\n2. b?\n3. c?\n4. d?"
    assert parse_search_queries(text) == ["a?", "b?", "c?", "d?"]
    assert SearchQueriesOutputParser(n=2).invoke(text) == ["a?", "b?"]


def test_chain_from_str_and_dict() -> None:
    chain = search_queries_chain(FakeListLLM(responses=[ISSUE_OUTPUT]), n=3)
    assert chain.invoke("Who won?") == ISSUE_QUERIES
    assert chain.invoke({"question": "Who won?"}) == ISSUE_QUERIES


async def test_chain_async_batch_stream_and_events() -> None:
    chain = search_queries_chain(FakeListLLM(responses=[ISSUE_OUTPUT]), n=2)
    assert await chain.ainvoke("q") == ISSUE_QUERIES[:2]
    assert chain.batch(["q1", {"question": "q2"}]) == [ISSUE_QUERIES[:2], ISSUE_QUERIES[:2]]
    assert list(chain.stream("q"))[-1] == ISSUE_QUERIES[:2]
    events = [event async for event in chain.astream_events("q", version="v2")]
    kinds = {event["event"] for event in events}
    assert {"on_llm_start", "on_llm_end", "on_chain_end"} <= kinds
    assert events[-1]["data"]["output"] == ISSUE_QUERIES[:2]


def test_chain_composes_with_pipe() -> None:
    chain = search_queries_chain(FakeListLLM(responses=[ISSUE_OUTPUT])) | RunnableLambda(len)
    assert chain.invoke("q") == 3


def test_llama2_model_gets_a_well_formed_llama2_prompt() -> None:
    llm = RecordingLLM(model_name="llama-2-7b-chat.Q4_K_M", prompts=[], stops=[])
    assert search_queries_chain(llm).invoke("Who won the 2016 NBA title?") == ISSUE_QUERIES
    assert llm.prompts == [
        "[INST] <<SYS>>\nYou are an assistant tasked with improving Google search results.\n<</SYS>>\n\n"
        "Generate THREE Google search queries that are similar to this question. The output should be a "
        "numbered list of questions and each should have a question mark at the end: "
        "Who won the 2016 NBA title? [/INST]"
    ]
    assert llm.stops == [["[INST]"]]


def test_chatml_model_gets_chatml_and_n_in_words() -> None:
    llm = RecordingLLM(model_name="qwen2.5-0.5b-instruct", prompts=[], stops=[])
    search_queries_chain(llm, n=5).invoke("q?")
    (prompt,) = llm.prompts
    assert prompt.startswith("<|im_start|>system\nYou are an assistant tasked with improving Google search")
    assert "Generate FIVE Google search queries" in prompt
    assert prompt.endswith("q?<|im_end|>\n<|im_start|>assistant\n")
    assert llm.stops == [["<|im_end|>", "<|im_start|>"]]


def test_unknown_model_gets_plain_prompt_and_no_stop() -> None:
    llm = RecordingLLM(model_name="mystery", prompts=[], stops=[])
    search_queries_chain(llm, n=12).invoke("q?")
    assert llm.prompts[0].startswith("You are an assistant tasked with improving Google search results.\n\n")
    assert "Generate 12 Google search queries" in llm.prompts[0]
    assert llm.stops == [None]


@pytest.mark.parametrize("n", [0, -1, 2.5, True, "3"])
def test_bad_n_is_a_typed_error(n: Any) -> None:
    with pytest.raises(InvalidParameterError, match="n must be a positive integer"):
        search_queries_chain(FakeListLLM(responses=["x"]), n=n)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "must be a string"),
        ({"query": "x"}, "'question' key"),
        ("   ", "empty"),
        ({"question": None}, "must be a string"),
    ],
)
def test_bad_question_is_a_typed_error(value: Any, message: str) -> None:
    chain = search_queries_chain(FakeListLLM(responses=["x"]))
    with pytest.raises(InvalidParameterError, match=message):
        chain.invoke(value)


def test_chat_models_get_the_plain_prompt_their_server_templates() -> None:
    from langchain_core.language_models import FakeListChatModel
    from langchain_core.messages import BaseMessage

    seen: list[list[BaseMessage]] = []

    class NamedChat(FakeListChatModel):
        model: str = "llama-2-7b-chat"

        def _call(self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any) -> str:
            seen.append(messages)
            assert stop is None
            return super()._call(messages, stop, **kwargs)

    chain = search_queries_chain(NamedChat(responses=[ISSUE_OUTPUT]))
    assert chain.invoke("Who won?") == ISSUE_QUERIES
    (content,) = [m.content for m in seen[0]]
    assert isinstance(content, str)
    assert "[INST]" not in content and "<<SYS>>" not in content
    assert content.startswith("You are an assistant tasked with improving Google search results.")


def test_custom_prompt_selector() -> None:
    from langchain_core.prompts import PromptTemplate

    from langchain_localllm.prompts import ConditionalPromptSelector, format_prompt, is_llama2_format

    selector = ConditionalPromptSelector(
        default_prompt=PromptTemplate.from_template("Q: {question}"),
        conditionals=[(is_llama2_format, format_prompt("llama2", "Search for: {question}"))],
    )
    llama = RecordingLLM(model_name="llama-2-13b-chat", prompts=[], stops=[], response="- a\n- b")
    other = RecordingLLM(model_name="mystery", prompts=[], stops=[], response="- a\n- b")
    assert search_queries_chain(llama, n=2, prompt=selector).invoke("x") == ["a?", "b?"]
    assert search_queries_chain(other, n=2, prompt=selector).invoke("x") == ["a?", "b?"]
    assert llama.prompts == ["[INST] Search for: x [/INST]"]
    assert other.prompts == ["Q: x"]
