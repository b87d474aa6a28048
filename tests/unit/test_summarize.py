"""summarize_chain with fake LLMs: methods, budgets, concurrency, progress, LCEL behaviour."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import LLM, FakeListLLM, FakeStreamingListLLM
from langchain_core.runnables import RunnableLambda

from langchain_localllm.chains import summarize_chain
from langchain_localllm.chains._split import split_to_budget
from langchain_localllm.errors import ContextLengthExceededError, InvalidParameterError

pytestmark = pytest.mark.usefixtures("fresh_prompt_format_cache")

RUTH = (Path(__file__).parents[1] / "data" / "book_of_ruth_kjv.txt").read_text(encoding="utf-8")
QUOTED = re.compile(r'"(.*)"', re.DOTALL)


def chars(text: str) -> int:
    """A token counter where every character is a token: budgets are easy to reason about."""
    return len(text)


class EchoLLM(LLM):
    """Answers from the prompt alone, so results do not depend on call order.

    Summaries are ``S<first word of the chunk>``; combine prompts answer ``C<n summaries>``.
    Records prompts and the most calls in flight at once.
    """

    model_name: str = "fake-model"
    prompts: list[str] = []
    in_flight: int = 0
    max_in_flight: int = 0
    lock: Any = None

    def model_post_init(self, context: Any) -> None:
        self.lock = threading.Lock()

    @property
    def _llm_type(self) -> str:
        return "echo"

    def answer(self, prompt: str) -> str:
        if "CONCISE SUMMARY" in prompt and "summaries of consecutive parts" not in prompt:
            match = QUOTED.search(prompt)
            assert match is not None
            return "S" + match.group(1).split()[0]
        if "summaries of consecutive parts" in prompt:
            return f"C{prompt.count(chr(10) + chr(10)) - 3}"
        return "R"

    def _enter(self, prompt: str) -> None:
        with self.lock:
            self.prompts.append(prompt)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        self._enter(prompt)
        try:
            return self.answer(prompt)
        finally:
            self._leave()


class BarrierLLM(EchoLLM):
    """Map calls wait until ``parties`` of them run at once: fails if concurrency is lower."""

    parties: int = 3
    barrier: Any = None

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        self.barrier = threading.Barrier(self.parties)

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        self._enter(prompt)
        try:
            if "CONCISE SUMMARY" in prompt and "summaries of consecutive" not in prompt:
                self.barrier.wait(timeout=60)
            return self.answer(prompt)
        finally:
            self._leave()


class AsyncBarrierLLM(EchoLLM):
    """Async twin of BarrierLLM (asyncio.Barrier in ``_acall``)."""

    parties: int = 3
    barrier: Any = None

    async def _acall(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        if self.barrier is None:
            self.barrier = asyncio.Barrier(self.parties)
        self._enter(prompt)
        try:
            if "CONCISE SUMMARY" in prompt and "summaries of consecutive" not in prompt:
                await asyncio.wait_for(self.barrier.wait(), timeout=60)
            return self.answer(prompt)
        finally:
            self._leave()


def paragraphs(n: int, words: int = 40) -> str:
    return "\n\n".join(f"P{i} " + " ".join(f"w{i}x{j}" for j in range(words)) for i in range(n))


SIX = paragraphs(6, words=60)


def map_prompts_of(prompts: list[str]) -> list[str]:
    return [p for p in prompts if "summaries of consecutive" not in p]


def window_for(n_chunks: int, text: str) -> int:
    """A context window (tokens = characters) in which ``text`` is cut into ``n_chunks`` chunks."""
    for window in range(400, 4000, 5):
        llm = EchoLLM(prompts=[])
        chain = summarize_chain(
            llm,
            "map_reduce",
            token_counter=chars,
            context_window=window,
            max_answer_tokens=50,
            max_concurrency=1,
        )
        chain.invoke(text)
        if len(map_prompts_of(llm.prompts)) == n_chunks:
            return window
    raise AssertionError(f"no window gives {n_chunks} chunks")


def test_auto_stuffs_text_that_fits() -> None:
    llm = EchoLLM(prompts=[])
    chain = summarize_chain(llm, token_counter=chars, context_window=2000, max_answer_tokens=100)
    assert chain.invoke("Hello world, a short text.") == "SHello"
    assert len(llm.prompts) == 1
    assert '"Hello world, a short text."' in llm.prompts[0]


def test_auto_map_reduces_text_that_does_not_fit() -> None:
    llm = EchoLLM(prompts=[])
    text = paragraphs(12)  # ~3900 characters
    chain = summarize_chain(
        llm, token_counter=chars, context_window=1200, max_answer_tokens=100, return_intermediate_steps=True
    )
    result = chain.invoke(text)
    map_prompts = [p for p in llm.prompts if "summaries of consecutive" not in p]
    assert result["method"] == "map_reduce"
    assert len(map_prompts) >= 4
    # Every map prompt fits the window with room for the answer.
    assert all(len(p) + 100 <= 1200 for p in llm.prompts)
    # Summaries come back in text order whatever order the calls ran in.
    chunks = sorted((QUOTED.search(p).group(1) for p in map_prompts), key=lambda c: text.index(c))  # type: ignore[union-attr]
    firsts = [c.split()[0] for c in chunks]
    assert firsts[0] == "P0"
    assert result["intermediate_steps"] == ["S" + f for f in firsts]
    assert result["output_text"] == f"C{len(firsts)}"


def test_map_reduce_sequential_fake_exact_content() -> None:
    llm = FakeListLLM(responses=["first part", "second part", "third part", "the whole"])
    text = paragraphs(3, words=60)
    chain = summarize_chain(
        llm,
        "map_reduce",
        token_counter=chars,
        context_window=window_for(3, text),
        max_answer_tokens=50,
        max_concurrency=1,
        return_intermediate_steps=True,
    )
    assert chain.invoke(text) == {
        "output_text": "the whole",
        "intermediate_steps": ["first part", "second part", "third part"],
        "method": "map_reduce",
    }


def test_stuff_refuses_text_that_does_not_fit() -> None:
    chain = summarize_chain(EchoLLM(), "stuff", token_counter=chars, context_window=500, max_answer_tokens=50)
    with pytest.raises(ContextLengthExceededError, match="map_reduce") as info:
        chain.invoke(paragraphs(5))
    assert isinstance(info.value, ValueError)
    assert info.value.n_ctx == 500


def test_window_too_small_for_prompt_and_answer() -> None:
    chain = summarize_chain(EchoLLM(), token_counter=chars, context_window=300, max_answer_tokens=200)
    with pytest.raises(ContextLengthExceededError, match="leaves no room"):
        chain.invoke("text")


def test_refine_feeds_each_summary_into_the_next_step() -> None:
    responses = ["R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7"]
    llm = FakeListLLM(responses=responses)
    text = paragraphs(4, words=60)
    chain = summarize_chain(
        llm,
        "refine",
        token_counter=chars,
        context_window=900,
        max_answer_tokens=50,
        return_intermediate_steps=True,
    )
    result = chain.invoke(text)
    steps = result["intermediate_steps"]
    assert result["method"] == "refine"
    assert len(steps) >= 2
    assert steps == responses[: len(steps)]
    assert result["output_text"] == responses[len(steps)]


def test_refine_prompts_contain_the_running_summary() -> None:
    class Recorder(EchoLLM):
        def answer(self, prompt: str) -> str:
            return f"R{len(self.prompts)}"

    llm = Recorder(prompts=[])
    chain = summarize_chain(llm, "refine", token_counter=chars, context_window=900, max_answer_tokens=50)
    output = chain.invoke(paragraphs(4, words=60))
    assert len(llm.prompts) >= 3
    assert "existing summary" not in llm.prompts[0]
    for i, prompt in enumerate(llm.prompts[1:], start=1):
        assert f"existing summary up to a certain point: R{i}\n" in prompt
    assert output == f"R{len(llm.prompts)}"


def test_summaries_that_do_not_fit_together_are_combined_in_rounds() -> None:
    class Wordy(EchoLLM):
        def answer(self, prompt: str) -> str:
            return "x" * 150

    llm = Wordy(prompts=[])
    chain = summarize_chain(
        llm, token_counter=chars, context_window=800, max_answer_tokens=150, return_intermediate_steps=True
    )
    result = chain.invoke(paragraphs(20))
    n_chunks = sum(1 for p in llm.prompts if "summaries of consecutive" not in p)
    combine_prompts = [p for p in llm.prompts if "summaries of consecutive" in p]
    assert len(combine_prompts) >= 3  # at least one collapse round before the final one
    assert len(result["intermediate_steps"]) == n_chunks + len(combine_prompts) - 1
    assert all(len(p) + 150 <= 800 for p in llm.prompts)


def test_summaries_that_never_shrink_are_a_typed_error() -> None:
    class Endless(EchoLLM):
        def answer(self, prompt: str) -> str:
            return "y" * 700

    chain = summarize_chain(Endless(), token_counter=chars, context_window=900, max_answer_tokens=50)
    with pytest.raises(ContextLengthExceededError, match="do not get shorter"):
        chain.invoke(paragraphs(10))


def test_map_steps_run_concurrently_up_to_the_bound() -> None:
    llm = BarrierLLM(prompts=[], parties=3)
    chain = summarize_chain(
        llm,
        "map_reduce",
        token_counter=chars,
        context_window=window_for(6, SIX),
        max_answer_tokens=50,
        max_concurrency=3,
    )
    assert chain.invoke(SIX) == "C6"
    assert llm.max_in_flight == 3


def test_max_concurrency_one_runs_map_steps_one_by_one() -> None:
    llm = EchoLLM(prompts=[])
    chain = summarize_chain(
        llm,
        "map_reduce",
        token_counter=chars,
        context_window=window_for(6, SIX),
        max_answer_tokens=50,
        max_concurrency=1,
    )
    assert chain.invoke(SIX) == "C6"
    assert llm.max_in_flight == 1


async def test_async_map_steps_run_concurrently_up_to_the_bound() -> None:
    llm = AsyncBarrierLLM(prompts=[], parties=2)
    chain = summarize_chain(
        llm,
        "map_reduce",
        token_counter=chars,
        context_window=window_for(6, SIX),
        max_answer_tokens=50,
        max_concurrency=2,
    )
    assert await chain.ainvoke(SIX) == "C6"
    assert llm.max_in_flight == 2


def test_inputs_str_document_documents_and_dict() -> None:
    chain = summarize_chain(EchoLLM(), token_counter=chars, context_window=2000, max_answer_tokens=100)
    assert chain.invoke("alpha beta") == "Salpha"
    assert chain.invoke(Document(page_content="gamma delta")) == "Sgamma"
    docs = [Document(page_content="one"), Document(page_content=" "), Document(page_content="two")]
    assert chain.invoke(docs) == "Sone"
    assert chain.invoke({"input_documents": docs}) == "Sone"
    assert chain.batch(["a b", "c d"]) == ["Sa", "Sc"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "Cannot summarise a int"),
        ("   ", "no text to summarise"),
        ([], "no text to summarise"),
        ([Document(page_content="x"), 3], "Cannot summarise a int item"),
        ({"question": "x"}, "'input_documents'"),
    ],
)
def test_bad_input_is_a_typed_error(value: Any, message: str) -> None:
    chain = summarize_chain(EchoLLM(), token_counter=chars, context_window=2000)
    with pytest.raises(InvalidParameterError, match=message):
        chain.invoke(value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "summarise"}, "Unknown method"),
        ({"max_concurrency": 0}, "max_concurrency must be a positive integer"),
        ({"context_window": -5}, "context_window must be a positive integer"),
        ({"chunk_overlap": -1}, "chunk_overlap must be a non-negative integer"),
        ({"prompts": {"mapper": None}}, "Unknown prompt kind"),
    ],
)
def test_bad_settings_are_typed_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        summarize_chain(EchoLLM(), **kwargs)


def test_stream_streams_the_final_summary() -> None:
    llm = FakeStreamingListLLM(responses=["a summary"])
    chain = summarize_chain(llm, token_counter=chars, context_window=2000, max_answer_tokens=100)
    chunks = list(chain.stream("some text"))
    assert len(chunks) > 1
    assert "".join(chunks) == "a summary"


async def test_astream_events_show_tokens_and_the_result() -> None:
    llm = FakeStreamingListLLM(responses=["s1", "s2", "final words"])
    chain = summarize_chain(
        llm, "map_reduce", token_counter=chars, context_window=700, max_answer_tokens=50, max_concurrency=1
    )
    events = [e async for e in chain.astream_events(paragraphs(2, words=60), version="v2")]
    streamed = [
        e["data"]["chunk"] for e in events if e["event"] == "on_chain_stream" and e["name"] == "summarize"
    ]
    assert len(streamed) > 1
    assert "".join(streamed) == "final words"
    assert [e["name"] for e in events if e["event"] == "on_chain_start"][1:3] == [
        "summarize_map",
        "summarize_map",
    ]
    assert sum(1 for e in events if e["event"] == "on_llm_start") == 3
    assert events[-1]["event"] == "on_chain_end"
    assert events[-1]["data"]["output"] == "final words"


def test_composes_with_pipe() -> None:
    chain = summarize_chain(EchoLLM(), token_counter=chars, context_window=2000) | RunnableLambda(str.lower)
    assert chain.invoke("Hello there") == "shello"


def test_prompts_follow_the_models_format() -> None:
    llm = EchoLLM(prompts=[], model_name="llama-2-7b-chat")
    chain = summarize_chain(llm, "map_reduce", token_counter=chars, context_window=700, max_answer_tokens=50)
    chain.invoke(paragraphs(3, words=60))
    assert all(p.startswith("[INST] <<SYS>>\n") and p.endswith(" [/INST]") for p in llm.prompts)
    assert any("summaries of consecutive parts" in p for p in llm.prompts)


def test_uses_the_models_own_tokenizer_and_window() -> None:
    class Tokenizing(EchoLLM):
        counted: int = 0
        max_tokens: int = 40

        def get_num_tokens(self, text: str) -> int:
            self.counted += 1
            return len(text.split())

        def get_context_window(self) -> int:
            return 300

    llm = Tokenizing(prompts=[])
    result = summarize_chain(llm, return_intermediate_steps=True).invoke(paragraphs(8, words=60))
    assert llm.counted > 0
    assert result["method"] == "map_reduce"
    assert all(len(p.split()) + 40 <= 300 for p in llm.prompts)


def test_models_without_a_tokenizer_are_estimated_not_sent_to_gpt2() -> None:
    llm = EchoLLM(prompts=[])
    # 4000 characters is over 1000 estimated tokens: too much for a 512-token window.
    result = summarize_chain(llm, context_window=512, return_intermediate_steps=True).invoke("word " * 800)
    assert result["method"] == "map_reduce"


def test_progress_bar_only_when_asked_or_interactive(capsys: pytest.CaptureFixture[str]) -> None:
    text = SIX
    kwargs: dict[str, Any] = {
        "token_counter": chars,
        "context_window": window_for(6, SIX),
        "max_answer_tokens": 50,
    }
    summarize_chain(EchoLLM(), progress=True, **kwargs).invoke(text)
    shown = capsys.readouterr().err
    assert "Summarising" in shown
    assert re.search(r"\d/6 ", shown)
    summarize_chain(EchoLLM(), **kwargs).invoke(text)  # stderr is not a terminal here
    summarize_chain(EchoLLM(), progress=False, **kwargs).invoke(text)
    assert "Summarising" not in capsys.readouterr().err


def test_single_chunk_work_has_no_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    summarize_chain(EchoLLM(), progress=True, token_counter=chars, context_window=2000).invoke("short")
    assert "Summarising" not in capsys.readouterr().err


def test_long_public_domain_text_is_covered_by_the_chunks() -> None:
    llm = EchoLLM(prompts=[])
    result = summarize_chain(
        llm, context_window=1024, max_answer_tokens=128, return_intermediate_steps=True
    ).invoke(RUTH)
    map_prompts = [p for p in llm.prompts if "summaries of consecutive" not in p]
    assert result["method"] == "map_reduce"
    assert len(map_prompts) >= 3
    covered = "\n".join(map_prompts)
    for line in RUTH.splitlines():
        assert line.strip() in covered
    assert result["output_text"] == f"C{len(map_prompts)}"


def test_split_to_budget_respects_the_budget_and_merges_small_pieces() -> None:
    chunks = split_to_budget(RUTH, 800, chars)
    assert all(len(c) <= 800 for c in chunks)
    assert len(chunks) <= len(RUTH) // 800 + 4  # headings do not become chunks of their own
    assert "".join(chunks).replace("\n", "").replace(" ", "") == RUTH.replace("\n", "").replace(" ", "")
    overlapping = split_to_budget(RUTH, 800, chars, overlap=100)
    assert sum(map(len, overlapping)) > sum(map(len, chunks))


def test_chat_models_get_plain_prompts() -> None:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.language_models import FakeListChatModel

    class NamedChat(FakeListChatModel):
        model: str = "qwen2.5:7b"

    class Seen(BaseCallbackHandler):
        messages: list[Any] = []

        def on_chat_model_start(self, serialized: Any, messages: list[list[Any]], **kwargs: Any) -> None:
            self.messages.extend(messages)

    seen = Seen()
    chain = summarize_chain(NamedChat(responses=["a summary"]), context_window=2000)
    assert chain.invoke("Some text.", config={"callbacks": [seen]}) == "a summary"
    (content,) = [m.content for m in seen.messages[0]]
    assert content.startswith("You are a helpful assistant who writes accurate, concise summaries.\n\n")
    assert "<|im_start|>" not in content


def test_custom_prompts_replace_the_built_in_ones() -> None:
    from langchain_core.prompts import PromptTemplate

    from langchain_localllm.prompts import ConditionalPromptSelector

    llm = EchoLLM(prompts=[])
    mine = ConditionalPromptSelector(
        default_prompt=PromptTemplate.from_template('TL;DR "{text}" CONCISE SUMMARY')
    )
    chain = summarize_chain(llm, prompts={"summarize": mine}, token_counter=chars, context_window=2000)
    assert chain.invoke("alpha beta") == "Salpha"
    assert llm.prompts == ['TL;DR "alpha beta" CONCISE SUMMARY']
