"""langchain-tests' standard suites for the chat models, against the real runtimes.

``ChatLlamaCpp`` and ``ChatGPT4All`` run generated tiny models in process (random
weights: the text is gibberish, every mechanism is real); ``ChatOllama`` talks to the
project's Ollama emulator serving real tokens from the same kind of model through
``/api/chat``. Tool calling and structured output belong to the tools work and are
switched off here.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_localllm import ChatGPT4All, ChatLlamaCpp, ChatOllama
from tests.fixtures.models import tiny_model
from tests.support.ollama_server import OllamaTestServer


class _NoTools:
    """Capabilities that arrive with tool calling / structured output (another issue)."""

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True


class _InProcess(_NoTools):
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


class _Ollama(_NoTools):
    base_url = "http://127.0.0.1:11434"

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


class TestChatLlamaCppIntegration(_LlamaCpp, ChatModelIntegrationTests):
    pass


class TestChatGPT4AllIntegration(_GPT4All, ChatModelIntegrationTests):
    pass


class TestChatOllamaIntegration(_Ollama, ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _emulator(self, ollama_server: OllamaTestServer) -> None:
        self.base_url = ollama_server.base_url
