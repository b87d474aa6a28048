"""rag_chain chooses its prompt when it runs, through the selector, for the model it runs on.

Regressions: the chain used to pick its prompt when it was built (asking a server for
its template at build time) and by the model's name alone, so a chat model named
``llama3`` received Llama-3's special tokens inside its own chat template, and a base
model named like a chat model received turn markers it does not know.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import GenerationChunk
from langchain_core.runnables import RunnableLambda

from langchain_localllm._core.base.llm import LocalLLM
from langchain_localllm.chains import rag_chain
from tests.fixtures.chat_templates import CHAT_TEMPLATES

DOCS = [Document(page_content="Project Bluefin ships on 14 May.", metadata={"source": "plan.md"})]
RETRIEVER = RunnableLambda(lambda _question: DOCS)
LLAMA3_TOKENS = ("<|start_header_id|>", "<|eot_id|>")

pytestmark = pytest.mark.usefixtures("fresh_prompt_format_cache")


class RecordingLLM(LocalLLM):
    """A text LLM that reports a chat template (like this package's backends) and records prompts."""

    template: str | None = None
    name: str = "model"
    template_calls: int = 0
    prompts: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "recording"

    @property
    def model_name(self) -> str:
        return self.name

    def chat_template(self) -> str | None:
        self.template_calls += 1
        return self.template

    def _iter_chunks(self, prompt: str, stop: list[str], **kwargs: Any) -> Iterator[GenerationChunk]:
        self.prompts.append(prompt)
        yield GenerationChunk(text=" On 14 May [1].", generation_info={})


class NamedChatModel(FakeListChatModel):
    """A chat model named like Llama 3: its server applies the template to messages."""

    model_name: str = "llama3:8b"
    received: list[list[BaseMessage]] = []

    def _call(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> str:
        self.received.append(messages)
        return super()._call(messages, *args, **kwargs)


def test_building_the_chain_asks_the_model_nothing() -> None:
    llm = RecordingLLM(template=CHAT_TEMPLATES["llama3"], name="x")
    chain = rag_chain(llm, RETRIEVER)
    assert llm.template_calls == 0
    assert chain.invoke("When does Bluefin ship?")["answer"] == " On 14 May [1]."
    assert llm.template_calls == 1
    assert "<|start_header_id|>user" in llm.prompts[-1]


def test_a_chat_model_gets_no_special_tokens_of_its_namesake_format() -> None:
    chat = NamedChatModel(responses=["On 14 May [1]."])
    result = rag_chain(chat, RETRIEVER).invoke("When does Bluefin ship?")
    assert result["answer"] == "On 14 May [1]."
    sent = "".join(str(m.content) for m in chat.received[-1])
    assert "When does Bluefin ship?" in sent
    assert "Project Bluefin ships on 14 May." in sent
    assert not any(token in sent for token in LLAMA3_TOKENS)


def test_a_base_model_named_like_a_chat_model_gets_a_completion_prompt() -> None:
    llm = RecordingLLM(template=None, name="Meta-Llama-3-8B.Q4_K_M.gguf")
    rag_chain(llm, RETRIEVER).invoke("When does Bluefin ship?")
    prompt = llm.prompts[-1]
    assert not any(token in prompt for token in LLAMA3_TOKENS)
    # Instructions, a worked example, then this question with the answer left open.
    assert prompt.count("Question:") == 2
    assert prompt.endswith("Question: When does Bluefin ship?\nAnswer:")


def test_one_chain_serves_models_swapped_behind_it() -> None:
    # The format is looked up on every run (cached per model), not frozen at build time.
    llm = RecordingLLM(template=CHAT_TEMPLATES["chatml"], name="first")
    chain = rag_chain(llm, RETRIEVER)
    chain.invoke("q?")
    assert "<|im_start|>user" in llm.prompts[-1]
    llm.template = CHAT_TEMPLATES["llama3"]
    llm.name = "second"
    chain.invoke("q?")
    assert "<|start_header_id|>user" in llm.prompts[-1]
