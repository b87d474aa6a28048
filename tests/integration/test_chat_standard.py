"""langchain-tests' standard suites for the chat models, against the real runtimes.

``ChatLlamaCpp`` and ``ChatGPT4All`` run generated tiny models in process (random
weights: the text is gibberish, every mechanism is real); ``ChatOllama`` talks to the
project's Ollama emulator serving real tokens from the same kind of model through
``/api/chat``. The unit suites run with tool calling and structured output on. The
integration suites of ``ChatLlamaCpp`` and ``ChatOllama`` here leave them off: the tests
compare argument values (``magic_function(3)``), which random weights cannot get right, so
those classes run them on the real Gemma 3 270M (``test_chat_llamacpp_tools_standard.py``,
``test_chat_ollama_tools_standard.py``); the validity of forced calls and schemas on random
weights is ``test_structured_validity.py``. ``ChatGPT4All`` runs them here (gpt4all 2.8
cannot load Gemma 3): every test that needs a forced call or a schema gets the typed
``UnsupportedParameterError`` (gpt4all has no way to constrain decoding), checked below.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_localllm import ChatGPT4All, ChatLlamaCpp, ChatOllama
from langchain_localllm.errors import UnsupportedParameterError
from tests.fixtures.models import tiny_model
from tests.fixtures.standard_suites import NoToolsOnRandomWeights, ServesSeveralModels, ToolCapabilities
from tests.support.ollama_server import OllamaTestServer


class _InProcess(ToolCapabilities):
    @property
    def supports_model_override(self) -> bool:
        return False  # the model is a loaded file, not a per-call name


class _LlamaCpp(_InProcess):
    @property
    def chat_model_class(self) -> type[ChatLlamaCpp]:
        return ChatLlamaCpp

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model_path": str(tiny_model("chatml")), "n_threads": 1, "n_ctx": 1024}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # In process there is no timeout or retry: the standard params llama.cpp knows.
        return {"temperature": 0, "max_tokens": 100, "stop": []}


class _GPT4All(_InProcess):
    @property
    def chat_model_class(self) -> type[ChatGPT4All]:
        return ChatGPT4All

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": str(tiny_model("chatml")), "n_threads": 1, "n_ctx": 1024}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return {"temp": 0, "max_tokens": 100, "stop": []}


class _Ollama(ServesSeveralModels, ToolCapabilities):
    base_url = "http://127.0.0.1:11434"
    override_model = "tiny"  # the emulator serves tiny-chatml and tiny

    @property
    def chat_model_class(self) -> type[ChatOllama]:
        return ChatOllama

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "tiny-chatml", "base_url": self.base_url}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return {"temperature": 0, "num_predict": 100, "timeout": 60, "stop": []}


class TestChatLlamaCppUnit(_LlamaCpp, ChatModelUnitTests):
    pass


class TestChatGPT4AllUnit(_GPT4All, ChatModelUnitTests):
    pass


class TestChatOllamaUnit(_Ollama, ChatModelUnitTests):
    pass


class TestChatLlamaCppIntegration(NoToolsOnRandomWeights, _LlamaCpp, ChatModelIntegrationTests):
    pass


#: The standard tests that force a tool call or ask for a schema: ChatGPT4All refuses each with
#: UnsupportedParameterError (gpt4all exposes no grammar or logits), never an unchecked answer.
NEEDS_CONSTRAINED_DECODING = {
    "test_tool_calling",
    "test_tool_calling_async",
    "test_bind_runnables_as_tools",
    "test_tool_choice",
    "test_tool_calling_with_no_arguments",
    "test_structured_few_shot_examples",
    "test_structured_output",
    "test_structured_output_async",
    "test_structured_output_pydantic_2_v1",
    "test_structured_output_optional_param",
    "test_json_mode",
    "test_unicode_tool_call_integration",
}


class TestChatGPT4AllIntegration(_GPT4All, ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _refusals(self, request: pytest.FixtureRequest) -> None:
        name = request.node.originalname
        if name in NEEDS_CONSTRAINED_DECODING:
            request.node.add_marker(
                pytest.mark.xfail(
                    raises=UnsupportedParameterError,
                    strict=True,
                    reason="gpt4all cannot constrain decoding: a forced call or schema is refused",
                )
            )
        elif name == "test_agent_loop":
            request.node.add_marker(
                pytest.mark.xfail(
                    raises=AssertionError,
                    strict=True,
                    reason="random weights: left to tool_choice='auto' the model writes text, no call",
                )
            )


class TestChatOllamaIntegration(NoToolsOnRandomWeights, _Ollama, ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _emulator(self, ollama_server: OllamaTestServer) -> None:
        self.base_url = ollama_server.base_url
