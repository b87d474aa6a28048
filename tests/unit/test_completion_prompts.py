"""Base models: recognised by their template, prompted with a worked example to continue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.outputs import GenerationChunk

from langchain_localllm._core.base.llm import LocalLLM
from langchain_localllm.chains import search_queries_chain, summarize_chain
from langchain_localllm.chains.summarize import COMPLETION_PROMPTS
from langchain_localllm.prompts.base_model import LLAMA_SERVER_FALLBACK_TEMPLATE, is_base_model_template
from langchain_localllm.prompts.completion import CompletionPrompt, echoes_example
from langchain_localllm.prompts.detect import render_chat_template
from tests.fixtures.chat_templates import CHAT_TEMPLATES

pytestmark = pytest.mark.usefixtures("fresh_prompt_format_cache")


class BaseModel(LocalLLM):
    """A text model without a chat template, recording prompts and stops; answers from ``answers``
    in order, or from ``by_text`` (the first answer whose key is in the prompt's last passage)."""

    answers: list[str] = []
    by_text: dict[str, str] = {}
    prompts: list[str] = []
    stops: list[list[str]] = []

    @property
    def _llm_type(self) -> str:
        return "base"

    @property
    def model_name(self) -> str:
        return "gemma-3-270m.gguf"

    def chat_template(self) -> str | None:
        return None

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        self.prompts.append(prompt)
        self.stops.append(list(stop))
        last = prompt.rsplit("\n\n", 1)[-1]
        found = next((answer for key, answer in self.by_text.items() if key in last), None)
        yield GenerationChunk(text=found if found is not None else self.answers.pop(0), generation_info={})


@pytest.mark.parametrize(
    ("template", "base"),
    [
        (None, True),
        ("  ", True),
        ("{{ .Prompt }}", True),
        ("{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}", True),
        ("{% for m in messages %}{{ m['content'] }}{% endfor %}", True),
        ("[INST] {{ .Prompt }} [/INST]", False),
        (CHAT_TEMPLATES["gemma"], False),
        (CHAT_TEMPLATES["chatml"], False),
        (LLAMA_SERVER_FALLBACK_TEMPLATE, False),  # a real ChatML template; Llamafile checks the vocab
    ],
)
def test_base_model_templates(template: str | None, base: bool) -> None:
    rendered = None
    if template and "{%" in template:
        rendered = render_chat_template(template, [{"role": "user", "content": "PROBE-USER-MESSAGE"}])
    assert is_base_model_template(template, rendered) is base


def test_completion_prompt_escapes_the_example_and_carries_its_stop() -> None:
    prompt = CompletionPrompt(
        intro="Questions and JSON answers.", example='Q: a\nA: {"x": 1}', template="Q: {q}\nA:", stop=("\n",)
    ).prompt()
    assert prompt.input_variables == ["q"]
    assert prompt.format(q="b") == 'Questions and JSON answers.\n\nQ: a\nA: {"x": 1}\n\nQ: b\nA:'
    assert prompt.metadata is not None
    assert prompt.metadata["completion_stop"] == ["\n"]


def test_search_queries_for_a_base_model_continue_a_numbered_list() -> None:
    llm = BaseModel(answers=[" Who won Super Bowl XXIII?\n2. Which team won in 1994?\n"])
    queries = search_queries_chain(llm, n=3).invoke("What NFL team won the Super Bowl in 1994?")
    assert queries == ["Who won Super Bowl XXIII?", "Which team won in 1994?"]
    assert llm.prompts[-1].endswith("Question: What NFL team won the Super Bowl in 1994?\nQueries:\n1.")
    assert "\nQuestion:" in llm.stops[-1]
    assert "<start_of_turn>" not in llm.prompts[-1]  # the name says gemma; the file has no template


def test_a_chunk_summary_that_repeats_the_example_is_not_combined() -> None:
    example_line = COMPLETION_PROMPTS["summarize"].example.splitlines()[0]
    llm = BaseModel(
        by_text={"reapers": " " + example_line, "Bethlehem": " Ruth stays with Naomi."},
        answers=[" Ruth and Naomi."],
    )
    words = len(COMPLETION_PROMPTS["summarize"].prompt().template.split())
    chain = summarize_chain(
        llm,
        method="map_reduce",
        context_window=words + 120,
        token_counter=lambda text: len(text.split()),
        max_answer_tokens=8,
    )
    text = (
        "Ruth went with Naomi to Bethlehem. " * 10 + "\n\n" + "The LORD bless thee, said the reapers. " * 10
    )
    assert chain.invoke(text) == " Ruth and Naomi."
    combine_prompt = llm.prompts[-1]
    assert combine_prompt.endswith("Ruth stays with Naomi.\nTL;DR:")
    assert combine_prompt.count(example_line) == 1  # only in the worked example itself
    assert echoes_example(COMPLETION_PROMPTS["summarize"].prompt(), example_line)
