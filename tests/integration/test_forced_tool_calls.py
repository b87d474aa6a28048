"""Forced tool choices over llama-server are decoded under the call's JSON schema: even a model
with random weights (the tiny generated model) always makes a valid call of an allowed tool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from pydantic import BaseModel, Field

from langchain_localllm import ChatLlamafile, ChatOpenAICompatible
from tests.fixtures.models import tiny_model
from tests.fixtures.openai_servers import chat_template_file
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama_server


class Forecast(BaseModel):
    """Weather forecast for a city."""

    city: Literal["Paris", "Lima", "Oslo"]
    days: int = Field(ge=0)
    metric: bool


class Alarm(BaseModel):
    """Set an alarm."""

    hour: int
    label: Literal["wake", "meeting"]


TOOLS = {"Forecast": Forecast, "Alarm": Alarm}


@pytest.fixture(scope="module")
def random_server(llama_server_binary: Path) -> Iterator[LlamaServer]:
    """The tiny generated model (random weights) with Qwen 2.5's tool-capable chat template. (Not the
    tiny ChatML model: its <|im_start|> is a control token, and llama-server then fails to build
    any json_schema grammar, which starts with the generation prompt: "Failed to initialize
    samplers".)"""
    template = chat_template_file("Qwen-Qwen2.5-7B-Instruct")
    extra_args = ["--jinja", "--chat-template-file", str(template)]
    with LlamaServer(
        tiny_model(None), binary=llama_server_binary, n_ctx=1024, threads=1, extra_args=extra_args
    ) as server:
        yield server


def _check(message: AIMessage, allowed: set[str]) -> None:
    assert message.invalid_tool_calls == []
    assert len(message.tool_calls) == 1, message
    call = message.tool_calls[0]
    assert call["name"] in allowed
    assert call["id"]
    TOOLS[call["name"]].model_validate(call["args"])  # the arguments follow the tool's schema


def test_forced_call_with_random_weights_is_always_valid(random_server: LlamaServer) -> None:
    chat = ChatLlamafile(base_url=random_server.base_url, max_tokens=160, temperature=1.0)
    bound = chat.bind_tools([Forecast, Alarm], tool_choice="any")
    for seed in range(20):
        message = bound.invoke("Do something.", seed=seed)
        _check(message, {"Forecast", "Alarm"})
        assert message.content == ""
        assert message.response_metadata["finish_reason"] == "tool_calls"


def test_forced_named_call_streams_with_random_weights(random_server: LlamaServer) -> None:
    chat = ChatOpenAICompatible(base_url=random_server.base_url, max_tokens=160, temperature=1.0)
    bound = chat.bind_tools([Forecast, Alarm], tool_choice="Alarm")
    for seed in range(5):
        full: AIMessageChunk | None = None
        for chunk in bound.stream("Wake me.", seed=seed):
            full = chunk if full is None else full + chunk
        assert full is not None
        assert full.tool_call_chunks
        _check(AIMessage(content=full.content, tool_calls=full.tool_calls), {"Alarm"})


def test_parallel_calls_and_structured_output_with_random_weights(random_server: LlamaServer) -> None:
    chat = ChatLlamafile(base_url=random_server.base_url, max_tokens=240, temperature=1.0)
    message = chat.bind_tools([Forecast, Alarm], tool_choice="required", parallel_tool_calls=True).invoke(
        "Do things.", seed=3
    )
    assert message.tool_calls and message.invalid_tool_calls == []
    assert len({call["id"] for call in message.tool_calls}) == len(message.tool_calls)
    for call in message.tool_calls:
        TOOLS[call["name"]].model_validate(call["args"])
    structured = chat.with_structured_output(Forecast, method="function_calling")
    assert isinstance(structured.invoke("Forecast?", seed=1), Forecast)


async def test_forced_call_async_with_random_weights(random_server: LlamaServer) -> None:
    chat = ChatLlamafile(base_url=random_server.base_url, max_tokens=160, temperature=1.0)
    message = await chat.bind_tools([Forecast, Alarm], tool_choice="Forecast").ainvoke("x", seed=7)
    _check(message, {"Forecast"})
