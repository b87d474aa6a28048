"""langchain's ``create_agent`` on each runtime, end to end, on a real model.

Gemma 3 270M (base) runs in process (ChatLlamaCpp), behind the Ollama emulator (ChatOllama)
and behind the real llama-server (ChatLlamafile). It does not reliably open a tool call by
itself (``tool_choice="auto"``: it often answers in text instead), so the agent's first model
call is forced through a middleware, as an application that must act would do
(``tool_choice="any"``: the model picks the tool; for the raising tool, its name, since over
llama-server Gemma picks get_weather for the population question): the whole call is
decoded under the schema of the bound tools (our grammar, Ollama's ``format``,
llama-server's ``json_schema``), the agent runs the tool and sends the result -- or
the tool's error -- back as a tool message, and the next model call is unforced again. The
model is too small to stop after the result (it may call the same tool again), so the run is
capped at two model calls.

gpt4all cannot load Gemma 3 and cannot force a call: ChatGPT4All's agent runs unforced to a
text answer on the generated model, and the forcing middleware gets the typed error.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelCallLimitMiddleware, ModelRequest, wrap_model_call
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import ToolException, tool

from langchain_localllm import ChatGPT4All, ChatLlamaCpp, ChatLlamafile, ChatOllama
from langchain_localllm.errors import UnsupportedParameterError
from tests.fixtures.models import tiny_model
from tests.fixtures.openai_servers import GEMMA_OLLAMA_MODEL


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 21 C in {city}."


@tool
def get_population(city: str) -> int:
    """Get the population of a city."""
    raise ToolException(f"The population service is down for {city}.")


get_population.handle_tool_error = True


def act_first_with(choice: str) -> Any:
    """A middleware forcing ``tool_choice=choice`` until a tool has answered; then the model chooses."""

    @wrap_model_call(name=f"act_first_{choice}")
    def act_first(request: ModelRequest, handler: Any) -> Any:
        if not any(isinstance(m, ToolMessage) for m in request.messages):
            request = request.override(tool_choice=choice)
        return handler(request)

    return act_first


act_first = act_first_with("any")


def _chat(runtime: str, request: pytest.FixtureRequest) -> Any:
    if runtime == "llamacpp":
        path = str(request.getfixturevalue("gemma_path"))
        return ChatLlamaCpp(model_path=path, chat_format="gemma", max_tokens=120, temperature=0, n_ctx=2048)
    if runtime == "ollama":
        url = request.getfixturevalue("gemma_ollama").base_url
        return ChatOllama(model=GEMMA_OLLAMA_MODEL, base_url=url, num_predict=120, temperature=0)
    url = request.getfixturevalue("gemma_server").base_url
    return ChatLlamafile(base_url=url, max_tokens=120, temperature=0)


@pytest.fixture(scope="module", params=["llamacpp", "ollama", "llamafile"])
def chat(request: pytest.FixtureRequest) -> Any:
    return _chat(request.param, request)


@pytest.mark.parametrize(
    ("question", "choice", "tool_name", "result"),
    [
        # the model picks the tool among both (any call forced)
        ("What is the weather in Paris? Use the tool.", "any", "get_weather", "sunny and 21 C in Paris"),
        # the raising tool, forced by name (over llama-server, "any" has Gemma pick get_weather here)
        (
            "What is the population of Paris? Use the tool.",
            "get_population",
            "get_population",
            "The population service is down",
        ),
    ],
)
def test_agent_calls_the_tool_and_gets_results_and_errors_back(
    chat: Any, question: str, choice: str, tool_name: str, result: str
) -> None:
    agent = create_agent(
        chat,
        tools=[get_weather, get_population],
        middleware=[act_first_with(choice), ModelCallLimitMiddleware(run_limit=2)],
    )
    messages = agent.invoke({"messages": [("user", question)]})["messages"]
    first_call = next(m for m in messages if isinstance(m, AIMessage) and m.tool_calls)
    assert first_call.tool_calls[0]["name"] == tool_name
    assert first_call.tool_calls[0]["args"] == {"city": "Paris"}
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert tool_messages and tool_messages[0].tool_call_id == first_call.tool_calls[0]["id"]
    assert result in str(tool_messages[0].content)
    assert all(m.invalid_tool_calls == [] for m in messages if isinstance(m, AIMessage))


def test_gpt4all_agent_runs_unforced_and_refuses_a_forced_call() -> None:
    chat = ChatGPT4All(model=str(tiny_model("chatml")), max_tokens=12, temp=0, n_threads=1)
    tools = [get_weather, get_population]
    question = {"messages": [("user", "Weather in Paris?")]}
    answer = create_agent(chat, tools=tools).invoke(question)["messages"][-1]
    assert isinstance(answer, AIMessage) and answer.text and not answer.tool_calls
    forced = create_agent(chat, tools=tools, middleware=[act_first])
    with pytest.raises(UnsupportedParameterError, match="cannot constrain decoding"):
        forced.invoke(question)
