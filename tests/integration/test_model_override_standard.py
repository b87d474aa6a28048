"""langchain-tests' integration suites, model override on, where the runtime serves several
models: ``ChatOpenAICompatible`` on llama-server's router mode (two models, each in a server of
its own) and ``ChatOllama`` on a fleet of two Ollama emulators (each serving two models). The
models are generated tiny ones (random weights: every mechanism is real, the text is not)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_localllm import ChatOllama, ChatOpenAICompatible
from tests.fixtures.models import tiny_model
from tests.fixtures.router import llama_router
from tests.fixtures.standard_suites import NoToolsOnRandomWeights, ServesSeveralModels
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaTestServer

_URLS: dict[str, Any] = {}


@pytest.fixture(scope="module")
def router(llama_server_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with llama_router(llama_server_binary, tmp_path_factory.mktemp("router"), n_ctx=1024) as server:
        yield server


@pytest.fixture(scope="module")
def ollama_fleet() -> Iterator[list[str]]:
    models = {"tiny-chatml": tiny_model("chatml"), "tiny": tiny_model("llama2")}
    with OllamaTestServer(models, n_ctx=512) as one, OllamaTestServer(models, n_ctx=512) as two:
        yield [one.base_url, two.base_url]


@pytest.mark.llama_server
class TestChatOpenAICompatibleRouterIntegration(
    ServesSeveralModels, NoToolsOnRandomWeights, ChatModelIntegrationTests
):
    override_model = "tiny-llama2"  # the router's default (first) model is tiny-chatml

    @pytest.fixture(autouse=True)
    def _router(self, router: LlamaServer) -> None:
        _URLS["router"] = router.base_url

    @property
    def chat_model_class(self) -> type[ChatOpenAICompatible]:
        return ChatOpenAICompatible

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "base_url": _URLS.get("router", "http://127.0.0.1:1") + "/v1",
            "max_tokens": 48,
            "temperature": 0,
        }


class TestChatOllamaFleetIntegration(ServesSeveralModels, NoToolsOnRandomWeights, ChatModelIntegrationTests):
    override_model = "tiny"

    @pytest.fixture(autouse=True)
    def _fleet(self, ollama_fleet: list[str]) -> None:
        _URLS["fleet"] = ollama_fleet

    @property
    def chat_model_class(self) -> type[ChatOllama]:
        return ChatOllama

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "tiny-chatml",
            "base_url": _URLS.get("fleet", ["http://127.0.0.1:1"]),
            "num_predict": 48,
        }
