"""Reasoning is on by default, as llama.cpp has it: templates that read ``enable_thinking`` get
True unless ``reasoning=False`` or ``chat_template_kwargs`` says otherwise; one ``reasoning``
switch on every chat class. DeepSeek R1 Distill's template (llama.cpp's ``models/templates``)
opens ``<think>`` in the prompt by default and closes it when thinking is off."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from langchain_localllm import ChatGPT4All, ChatLlamaCpp, ChatLlamafile, ChatOpenAICompatible
from langchain_localllm.errors import UnsupportedParameterWarning
from tests.fixtures.template_models import template_model
from tests.support.llama_server import LlamaServer

R1 = "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"
ASSISTANT = "<｜Assistant｜>"  # noqa: RUF001 (DeepSeek writes its markers with full-width bars)


@pytest.mark.parametrize("chat_class", [ChatLlamaCpp, ChatGPT4All])
def test_r1_template_opens_think_by_default(chat_class: type) -> None:
    path = str(template_model(R1))
    kwargs = {"model_path": path} if chat_class is ChatLlamaCpp else {"model": path}
    thinking = chat_class(**kwargs)._chat_prompt([HumanMessage("Hi")], {})
    assert thinking.text.endswith(f"{ASSISTANT}<think>\n") and thinking.starts_in_reasoning
    for off in (
        chat_class(**kwargs, reasoning=False),
        chat_class(**kwargs, reasoning=True, chat_template_kwargs={"enable_thinking": False}),
    ):
        closed = off._chat_prompt([HumanMessage("Hi")], {})
        assert closed.text.endswith(f"{ASSISTANT}<think>\n</think>") and not closed.starts_in_reasoning
    per_call = chat_class(**kwargs)._chat_prompt([HumanMessage("Hi")], {"reasoning": False})
    assert per_call.text.endswith("</think>")


def test_what_the_model_writes_goes_where_the_switch_says() -> None:
    """With the think block open, the answer streams as reasoning; with it closed, as content."""
    chat = ChatLlamaCpp(model_path=str(template_model(R1)), max_tokens=6, temperature=0, n_threads=1)
    with pytest.warns(UserWarning, match="thinking"):  # 6 tokens all spent thinking
        thought = chat.invoke("Hi")
    assert thought.additional_kwargs["reasoning_content"] and not thought.content
    answered = chat.invoke("Hi", reasoning=False)
    assert answered.content and "reasoning_content" not in answered.additional_kwargs


@pytest.mark.llama_server
def test_reasoning_switch_over_llama_server(llama_server_binary: Path) -> None:
    """``reasoning`` travels as the template's ``enable_thinking``: off, the server's prompt
    closes the think block and the answer is content; by default the server thinks."""
    with LlamaServer(
        template_model(R1), binary=llama_server_binary, n_ctx=512, threads=1, extra_args=["--jinja"]
    ) as server:
        default = ChatLlamafile(base_url=server.base_url, max_tokens=6, temperature=0).invoke("Hi")
        assert default.additional_kwargs.get("reasoning_content") and not default.content
        off = ChatLlamafile(base_url=server.base_url, max_tokens=6, temperature=0, reasoning=False).invoke(
            "Hi"
        )
        assert off.content and not off.additional_kwargs.get("reasoning_content")
        # A server family that takes no template variables: the switch is said to have no effect.
        plain = ChatOpenAICompatible(base_url=server.base_url, dialect="openai", model="m", reasoning=False)
        with pytest.warns(UnsupportedParameterWarning, match="reasoning"):
            plain.invoke("Hi", max_tokens=2)
