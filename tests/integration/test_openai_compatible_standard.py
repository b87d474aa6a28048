"""langchain-tests' standard suites for ``ChatOpenAICompatible`` and ``ChatLlamafile``, the
integration suites against the real llama-server (``--jinja``) serving the real Gemma 3 270M."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_localllm import ChatLlamafile, ChatOpenAICompatible
from tests.support.llama_server import LlamaServer

_SERVER: dict[str, str] = {}


#: Standard tests where the real model answers badly: Gemma 3 270M is a small *base* model and,
#: asked zero-shot, keeps writing text (e.g. "What is the value of magic_function(3)? Use the
#: tool.<|im_end|>...") instead of starting a tool call within the token budget; llama-server's
#: grammar for tool_choice="required" lets free text come before "<tool_call>". The server's tool
#: parsing itself is tested with the same model in test_openai_compatible_server.py (few-shot).
SMALL_MODEL_NO_TOOL_CALL = {
    "test_tool_calling",
    "test_tool_calling_async",
    "test_bind_runnables_as_tools",
    "test_tool_choice",
    "test_tool_calling_with_no_arguments",
    "test_agent_loop",
    "test_unicode_tool_call_integration",
}


@pytest.fixture(autouse=True)
def _server_url(request: pytest.FixtureRequest) -> None:
    if "Integration" in request.cls.__name__:
        server: LlamaServer = request.getfixturevalue("gemma_server")
        _SERVER["url"] = server.base_url
        if request.node.originalname in SMALL_MODEL_NO_TOOL_CALL:
            reason = "Gemma 3 270M (base) writes text instead of a tool call; see SMALL_MODEL_NO_TOOL_CALL"
            request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))


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
        return {"base_url": _SERVER["url"] + "/v1", "max_tokens": 48, "temperature": 0}


@pytest.mark.llama_server
class TestChatLlamafileIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatLlamafile]:
        return ChatLlamafile

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"base_url": _SERVER["url"], "max_tokens": 48, "temperature": 0}
