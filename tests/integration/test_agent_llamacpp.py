"""langchain's ``create_agent`` running ChatLlamaCpp on a real model, end to end.

Gemma 3 270M (base) chooses the tool by itself (``tool_choice="auto"``): it opens a call, the
rest of the call is decoded under the grammar of the bound tools, the agent runs the tool and
sends the result -- or the tool's error -- back as a tool message. The model is too small to
stop after the result (it calls the same tool again), so the run is capped at two model calls.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelCallLimitMiddleware
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import ToolException, tool

from langchain_localllm import ChatLlamaCpp
from tests.integration.test_chat_llamacpp_tools_standard import gemma_path


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 21 C in {city}."


@tool
def get_population(city: str) -> int:
    """Get the population of a city."""
    raise ToolException(f"The population service is down for {city}.")


get_population.handle_tool_error = True


@pytest.fixture(scope="module")
def agent() -> Any:
    chat = ChatLlamaCpp(
        model_path=gemma_path(), chat_format="gemma", max_tokens=120, temperature=0, n_ctx=2048
    )
    return create_agent(
        chat, tools=[get_weather, get_population], middleware=[ModelCallLimitMiddleware(run_limit=2)]
    )


@pytest.mark.parametrize(
    ("question", "tool_name", "result"),
    [
        ("What is the weather in Paris? Use the tool.", "get_weather", "It is sunny and 21 C in Paris."),
        (
            "What is the population of Paris? Use the tool.",
            "get_population",
            "The population service is down",
        ),
    ],
)
def test_agent_calls_the_tool_and_gets_results_and_errors_back(
    agent: Any, question: str, tool_name: str, result: str
) -> None:
    messages = agent.invoke({"messages": [("user", question)]})["messages"]
    first_call = next(m for m in messages if isinstance(m, AIMessage) and m.tool_calls)
    assert first_call.tool_calls[0]["name"] == tool_name
    assert first_call.tool_calls[0]["args"] == {"city": "Paris"}
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert tool_messages and tool_messages[0].tool_call_id == first_call.tool_calls[0]["id"]
    assert result in str(tool_messages[0].content)
    assert all(m.invalid_tool_calls == [] for m in messages if isinstance(m, AIMessage))
