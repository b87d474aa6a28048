"""``get_num_tokens_from_messages`` equals the ``input_tokens`` the same call reports: over the
real chat templates of llama.cpp's ``models/templates`` (in process, with tools and tool
messages), and on the real llama-server (``/apply-template`` + ``/tokenize``). Any list is
counted, also the slices middleware counts; Ollama's estimate stays within its stated bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents.middleware import SummarizationMiddleware
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from langchain_localllm import ChatGPT4All, ChatLlamaCpp, ChatLlamafile, ChatOllama
from langchain_localllm._core.gguf.reader import read_gguf
from langchain_localllm.errors import InvalidMessagesError, LocalLLMError
from tests.fixtures.models import tiny_model
from tests.fixtures.template_models import TEMPLATE_NAMES, template_model
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaTestServer


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny in {city}."


TURNS: list[BaseMessage] = [
    SystemMessage("You are a helpful assistant."),
    HumanMessage("Hello! Can you help me plan a trip?"),
    AIMessage("Of course. Where would you like to go?"),
    HumanMessage("To Paris, in spring."),
]
#: A tool round trip (a 9-character alphanumeric call id: Mistral's templates refuse others).
TOOL_ROUND_TRIP: list[BaseMessage] = [
    SystemMessage("You are a helpful assistant."),
    HumanMessage("What is the weather in Paris?"),
    AIMessage("", tool_calls=[{"id": "call00001", "name": "get_weather", "args": {"city": "Paris"}}]),
    ToolMessage("18 C and sunny", tool_call_id="call00001"),
    AIMessage("It is 18 C and sunny in Paris."),
    HumanMessage("And tomorrow?"),
]


def _usage(chat: Any, messages: list[BaseMessage], tools: list[Any] | None) -> int:
    runnable = chat.bind_tools(tools) if tools else chat
    return int(runnable.invoke(messages).usage_metadata["input_tokens"])


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_inprocess_count_equals_usage_over_the_real_templates(name: str) -> None:
    chat = ChatLlamaCpp(
        model_path=str(template_model(name)), n_ctx=4096, max_tokens=1, temperature=0, n_threads=1
    )
    for messages, tools in ((TURNS, None), (TOOL_ROUND_TRIP, [get_weather])):
        assert chat.get_num_tokens_from_messages(messages, tools=tools) == _usage(chat, messages, tools)


def test_the_count_includes_what_the_runtime_adds() -> None:
    """The issue's case: on Qwen 2.5's template the count missed the BOS the runtime adds."""
    chat = ChatLlamaCpp(model_path=str(template_model("Qwen-Qwen2.5-7B-Instruct")), n_ctx=2048, max_tokens=1)
    text_only = chat.get_num_tokens(chat._chat_prompt(TURNS, {}).text)
    assert chat.get_num_tokens_from_messages(TURNS) == text_only + 1 == _usage(chat, TURNS, None)


@pytest.mark.parametrize("fmt", ["chatml", "llama3", "gemma"])
def test_gpt4all_count_is_within_its_stated_bound(fmt: str) -> None:
    """gpt4all has no tokenizer API: the count is the vocabulary's plus BOS; gpt4all 2.8 reports
    two prompt tokens more (as the method says)."""
    chat = ChatGPT4All(model=str(tiny_model(fmt)), n_ctx=2048, max_tokens=1, temp=0, n_threads=1)
    assert _usage(chat, TURNS, None) - chat.get_num_tokens_from_messages(TURNS) == 2


#: A conversation for a template that needs roles to alternate (Gemma's): each slice
#: ``messages[i:]`` that middleware counts, whatever it starts with.
ALTERNATING: list[BaseMessage] = [
    HumanMessage("What is the weather in Paris?"),
    AIMessage("", tool_calls=[{"id": "call00001", "name": "get_weather", "args": {"city": "Paris"}}]),
    ToolMessage("18 C and sunny", tool_call_id="call00001"),
    AIMessage("It is 18 C and sunny in Paris."),
    HumanMessage("And in Rome?"),
    AIMessage("Warmer: 24 C."),
    HumanMessage("Thanks! Which should I visit first?"),
]


def test_any_slice_is_counted_never_an_error() -> None:
    chat = ChatLlamaCpp(
        model_path=str(tiny_model("gemma")), n_ctx=2048, max_tokens=1, temperature=0, n_threads=1
    )
    with pytest.raises(InvalidMessagesError, match="alternate"):
        chat.invoke(ALTERNATING[3:])  # a call is refused: the template needs a user turn first
    counts = [chat.get_num_tokens_from_messages(ALTERNATING[i:]) for i in range(len(ALTERNATING))]
    assert counts == sorted(counts, reverse=True)  # fewer messages, fewer tokens
    assert counts[-1] == _usage(chat, ALTERNATING[-1:], None)
    # A slice that starts with the assistant counts less than what the model sees once a
    # user turn comes first (a summary does, after summarisation), and more than the next.
    summary = HumanMessage("Here is a summary of the conversation to date: the weather in Paris.")
    assert counts[4] < counts[3] < _usage(chat, [summary, *ALTERNATING[3:]], None)
    # Middleware counting with it (SummarizationMiddleware's binary search over slices).
    middleware = SummarizationMiddleware(
        model=chat,
        trigger=("tokens", 10),
        keep=("tokens", counts[4]),
        token_counter=chat.get_num_tokens_from_messages,
    )
    assert middleware._find_token_based_cutoff(list(ALTERNATING)) == 4


def test_consecutive_user_turns_are_joined_and_counted_as_run() -> None:
    """After summarisation a summary turn comes before a user turn: a template that needs
    alternating roles gets them joined, and the count is the call's."""
    chat = ChatLlamaCpp(
        model_path=str(tiny_model("gemma")), n_ctx=2048, max_tokens=1, temperature=0, n_threads=1
    )
    messages = [HumanMessage("Here is a summary of the conversation to date: trip plans."), *ALTERNATING[4:]]
    joined = [HumanMessage(f"{messages[0].text}\n\n{messages[1].text}"), *messages[2:]]
    assert (
        _usage(chat, messages, None)
        == _usage(chat, joined, None)
        == chat.get_num_tokens_from_messages(messages)
    )


# --- llama-server ---------------------------------------------------------------------------


@pytest.mark.llama_server
@pytest.mark.parametrize(
    "name",
    [
        "Qwen-Qwen2.5-7B-Instruct",
        "meta-llama-Llama-3.1-8B-Instruct",
        "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
    ],
)
def test_llama_server_count_equals_usage(llama_server_binary: Path, name: str) -> None:
    with LlamaServer(
        template_model(name), binary=llama_server_binary, n_ctx=4096, threads=1, extra_args=["--jinja"]
    ) as server:
        chat = ChatLlamafile(base_url=server.base_url, max_tokens=1, temperature=0)
        for messages, tools in ((TURNS, None), (TOOL_ROUND_TRIP, [get_weather]), (TOOL_ROUND_TRIP, None)):
            assert chat.get_num_tokens_from_messages(messages, tools=tools) == _usage(chat, messages, tools)
        slices = [chat.get_num_tokens_from_messages(TOOL_ROUND_TRIP[i:]) for i in range(len(TOOL_ROUND_TRIP))]
        assert all(count > 0 for count in slices)


@pytest.mark.llama_server
def test_llama_server_slices_are_counted_on_a_strict_template(llama_server_binary: Path) -> None:
    with LlamaServer(
        template_model("google-gemma-2-2b-it"),
        binary=llama_server_binary,
        n_ctx=2048,
        threads=1,
        extra_args=["--jinja"],
    ) as server:
        chat = ChatLlamafile(base_url=server.base_url, max_tokens=1, temperature=0)
        plain = [
            m for m in ALTERNATING if not isinstance(m, ToolMessage) and not getattr(m, "tool_calls", None)
        ]
        with pytest.raises(LocalLLMError):
            chat.invoke(plain[1:])  # the server's template refuses an assistant turn first
        counts = [chat.get_num_tokens_from_messages(plain[i:]) for i in range(len(plain))]
        assert counts == sorted(counts, reverse=True)
        summary = HumanMessage("Here is a summary of the conversation to date: the weather in Paris.")
        assert counts[2] < counts[1] < _usage(chat, [summary, *plain[1:]], None)


# --- Ollama: an estimate --------------------------------------------------------------------


@pytest.fixture(scope="module")
def gemma_own_template_ollama(gemma_path: Path) -> Iterator[OllamaTestServer]:
    """The Ollama emulator serving Gemma 3 270M with its own chat template (its turn markers
    are special tokens, as in Ollama's gemma3 models)."""
    server = OllamaTestServer(n_ctx=2048)
    server.add_model("gemma3:270m", gemma_path, template=read_gguf(gemma_path).chat_template)
    with server:
        yield server


@pytest.mark.real_model
def test_ollama_estimate_is_within_its_stated_bound(gemma_own_template_ollama: OllamaTestServer) -> None:
    """English prose: the estimate is over the server's count, by at most 40% (30-35% is what
    the method says), with and without earlier usage in the list to scale by."""
    chat = ChatOllama(
        model="gemma3:270m", base_url=gemma_own_template_ollama.base_url, num_predict=24, temperature=0
    )
    messages: list[BaseMessage] = [
        HumanMessage("I am planning a week in Paris in the spring. Which neighbourhoods should I stay in?")
    ]
    for question in (
        "And which museums should I see first, if I only have two days?",
        "What about food? I like simple bistros more than fancy restaurants.",
    ):
        answer = chat.invoke(messages)
        assert (
            1.0 <= chat.get_num_tokens_from_messages(messages) / answer.usage_metadata["input_tokens"] <= 1.4
        )
        messages += [answer, HumanMessage(question)]
