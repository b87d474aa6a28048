"""The chains end to end on real runtimes (generated models: gibberish text, real inference).

With random weights only the structure can be checked: prompts in the model's format,
every prompt fitting the real context window by the real tokenizer, the shapes of the
results. Exact content is checked with fake LLMs in tests/unit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document

from langchain_localllm import GPT4All, LlamaCpp
from langchain_localllm.chains import search_queries_chain, summarize_chain
from langchain_localllm.chains.search_queries import parse_search_queries
from tests.fixtures.models import tiny_model
from tests.fixtures.runs import LLMEvents as PromptRecorder

pytestmark = pytest.mark.usefixtures("fresh_prompt_format_cache")


RUTH = (Path(__file__).parents[1] / "data" / "book_of_ruth_kjv.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def llama2_llm() -> LlamaCpp:
    return LlamaCpp(model_path=str(tiny_model("llama2")), n_ctx=1024, max_tokens=32, seed=1, verbose=False)


@pytest.fixture(scope="module")
def chatml_llm() -> LlamaCpp:
    return LlamaCpp(model_path=str(tiny_model("chatml")), n_ctx=1024, max_tokens=32, seed=1, verbose=False)


def test_search_queries_on_llamacpp(llama2_llm: LlamaCpp) -> None:
    recorder = PromptRecorder()
    queries = search_queries_chain(llama2_llm, n=3).invoke(
        "Which NBA team did LeBron James lead to a championship?", config={"callbacks": [recorder]}
    )
    # The queries are what the model generated, parsed: nothing invented, nothing of another call.
    assert recorder.tokens
    assert queries == parse_search_queries("".join(recorder.tokens), 3)
    (prompt,) = recorder.prompts
    assert prompt.startswith(
        "[INST] <<SYS>>\nYou are an assistant tasked with improving Google search results."
    )
    assert prompt.endswith("Which NBA team did LeBron James lead to a championship? [/INST]")


async def test_search_queries_async_on_chatml_model(chatml_llm: LlamaCpp) -> None:
    recorder = PromptRecorder()
    queries = await search_queries_chain(chatml_llm, n=2).ainvoke(
        {"question": "Who was Babe Ruth?"}, config={"callbacks": [recorder]}
    )
    assert recorder.tokens
    assert queries == parse_search_queries("".join(recorder.tokens), 2)
    assert recorder.prompts[0].startswith("<|im_start|>system\n")
    assert recorder.prompts[0].endswith("<|im_start|>assistant\n")


def test_summarize_long_public_domain_text_map_reduce(llama2_llm: LlamaCpp) -> None:
    recorder = PromptRecorder()
    chain = summarize_chain(llama2_llm, return_intermediate_steps=True, max_concurrency=2)
    result = chain.invoke(RUTH, config={"callbacks": [recorder]})
    window = llama2_llm.get_context_window()
    assert llama2_llm.get_num_tokens(RUTH) > window  # really too long for one prompt
    assert result["method"] == "map_reduce"
    assert isinstance(result["output_text"], str)
    map_prompts = [p for p in recorder.prompts if "summaries of consecutive parts" not in p]
    assert len(map_prompts) >= 3
    assert len(result["intermediate_steps"]) >= len(map_prompts)
    # Every prompt fits the real window, by the real tokenizer, with room for the answer.
    for prompt in recorder.prompts:
        assert llama2_llm.get_num_tokens(prompt) + 32 <= window
        assert prompt.startswith("[INST] <<SYS>>\n") and prompt.endswith(" [/INST]")
    # The chunks cover the whole book: every verse line is in some map prompt.
    covered = "\n".join(map_prompts)
    assert all(line.strip() in covered for line in RUTH.splitlines())


def test_summarize_refine_on_llamacpp(chatml_llm: LlamaCpp) -> None:
    recorder = PromptRecorder()
    text = RUTH[:3000]
    result = summarize_chain(chatml_llm, "refine", return_intermediate_steps=True).invoke(
        text, config={"callbacks": [recorder]}
    )
    assert result["method"] == "refine"
    assert len(recorder.prompts) == len(result["intermediate_steps"]) + 1 >= 2
    for previous, prompt in zip(result["intermediate_steps"], recorder.prompts[1:]):
        assert f"existing summary up to a certain point: {previous}\n" in prompt
        assert chatml_llm.get_num_tokens(prompt) + 32 <= chatml_llm.get_context_window()


def test_summarize_stuff_streams_tokens(llama2_llm: LlamaCpp) -> None:
    recorder = PromptRecorder()
    docs = [Document(page_content=RUTH[:300]), Document(page_content=RUTH[300:600])]
    chunks = list(summarize_chain(llama2_llm).stream(docs, config={"callbacks": [recorder]}))
    assert len(recorder.prompts) == 1
    assert len(chunks) > 1
    assert "".join(chunks) == "".join(recorder.tokens)


async def test_summarize_astream_events_and_batch(chatml_llm: LlamaCpp) -> None:
    chain = summarize_chain(chatml_llm, max_concurrency=2)
    events = [e async for e in chain.astream_events(RUTH[:3000], version="v2")]
    assert any(e["event"] == "on_llm_stream" for e in events)
    assert events[-1]["event"] == "on_chain_end"
    assert isinstance(events[-1]["data"]["output"], str)
    outputs = chain.batch([RUTH[:400], RUTH[400:800]])
    assert len(outputs) == 2
    assert all(isinstance(o, str) for o in outputs)


def test_summarize_on_gpt4all() -> None:
    # gpt4all decodes slowly on a busy 2-core machine: one short stuff call, a few tokens.
    path = tiny_model("phi3")
    llm = GPT4All(model=str(path), n_ctx=1024, max_tokens=4)
    recorder = PromptRecorder()
    result = summarize_chain(llm, return_intermediate_steps=True).invoke(
        RUTH[:400], config={"callbacks": [recorder]}
    )
    assert result["method"] == "stuff"
    (prompt,) = recorder.prompts
    assert prompt.startswith("<|system|>\n") and prompt.endswith("<|assistant|>\n")
    assert RUTH[:400].strip() in prompt
    assert isinstance(result["output_text"], str)
