"""langchain-tests' standard suites for ``ChatOpenAICompatible`` and ``ChatLlamafile``, the
integration suites against the real llama-server (``--jinja``) serving the real Gemma 3 270M."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_localllm import ChatLlamafile, ChatOpenAICompatible
from tests.fixtures.standard_suites import expect_model_failures
from tests.support.llama_server import LlamaServer

_SERVER: dict[str, str] = {}


#: Standard tests the real model fails on quality alone: each forced call is made and valid
#: (decoded under the call's JSON schema, names a bound tool, arguments match its schema), but
#: Gemma 3 270M (a base model) fills in the wrong values, which these tests compare.
WRONG_ARGUMENT_VALUES = {
    "test_tool_calling": "asked for magic_function(3), Gemma 3 270M calls it with input=100",
    "test_tool_calling_async": "asked for magic_function(3), Gemma 3 270M calls it with input=100",
    "test_agent_loop": "asked for magic_function(3), Gemma 3 270M calls it with input=100",
    "test_unicode_tool_call_integration": (
        "the Chinese name is kept, but for 'こんにちは株式会社' Gemma 3 270M writes "
        "customer_name='unicode_customer'"
    ),
}


@pytest.fixture(autouse=True)
def _server_url(request: pytest.FixtureRequest) -> None:
    if "Integration" in request.cls.__name__:
        server: LlamaServer = request.getfixturevalue("gemma_server")
        _SERVER["url"] = server.base_url
        expect_model_failures(request, WRONG_ARGUMENT_VALUES)


class TestChatOpenAICompatibleUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAICompatible]:
        return ChatOpenAICompatible

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"base_url": "http://127.0.0.1:8000/v1", "model": "served-model"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {"OPENAI_COMPATIBLE_BASE_URL": "http://127.0.0.1:9000/v1", "OPENAI_COMPATIBLE_API_KEY": "key"}
        return env, {"model": "served-model"}, {"base_url": "http://127.0.0.1:9000"}


class TestChatLlamafileUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatLlamafile]:
        return ChatLlamafile

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "served-model"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"LLAMA_API_KEY": "secret"}, {}, {}


@pytest.mark.llama_server
class TestChatOpenAICompatibleIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAICompatible]:
        return ChatOpenAICompatible

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"base_url": _SERVER["url"] + "/v1", "max_tokens": 160, "temperature": 0}


@pytest.mark.llama_server
class TestChatLlamafileIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatLlamafile]:
        return ChatLlamafile

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"base_url": _SERVER["url"], "max_tokens": 160, "temperature": 0}
