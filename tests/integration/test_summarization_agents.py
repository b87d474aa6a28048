"""``create_agent`` with ``SummarizationMiddleware(trigger=("fraction", 0.6))`` keeps a
conversation of a dozen long turns running on Gemma 3 270M with a 1024-token context: in
process (``ChatLlamaCpp``), behind the real llama-server (``ChatLlamafile``) and behind the
Ollama emulator (``ChatOllama``). The fraction comes from each model's ``profile`` (read from
the runtime); the conversation is summarised, never cut at the front and never overflows;
a summary prompt too long for the context is a ``ContextOverflowError``, which the middleware
retries with a shorter one. The exact counters (in process, llama-server) count what each
model call then reports as its ``input_tokens``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, SummarizationMiddleware, wrap_model_call
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, HumanMessage

from langchain_localllm import ChatLlamaCpp, ChatLlamafile, ChatOllama
from tests.fixtures.openai_servers import chat_template_file
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaTestServer

N_CTX = 1024
TOPICS = (
    "how tides work",
    "the life cycle of a star",
    "why bread rises",
    "how bees make honey",
    "the rules of chess",
    "how a steam engine works",
    "why leaves change colour in autumn",
    "the water cycle",
    "how vaccines train the immune system",
    "the first flight of the Wright brothers",
    "how glaciers move",
    "why the sky is blue",
)


def _turn(i: int, topic: str) -> str:
    ask = "I would like a clear and simple explanation with one example from everyday life, please. "
    return f"Question {i + 1}: please explain {topic} in a few sentences. {ask * 2}"


@pytest.fixture(scope="module")
def gemma_llama_server(llama_server_binary: Path, gemma_path: Path) -> Iterator[LlamaServer]:
    """llama-server --jinja serving Gemma 3 270M with a 1024-token context in one slot (Qwen 2.5's
    chat template, which takes any order of turns)."""
    template = chat_template_file("Qwen-Qwen2.5-7B-Instruct")
    with LlamaServer(
        gemma_path,
        binary=llama_server_binary,
        n_ctx=N_CTX,
        threads=1,
        parallel=1,
        extra_args=["--jinja", "--chat-template-file", str(template)],
    ) as server:
        yield server


@pytest.fixture(scope="module")
def gemma_ollama_1k(gemma_path: Path) -> Iterator[OllamaTestServer]:
    """The Ollama emulator serving Gemma 3 270M with a 1024-token context (Modelfile num_ctx)."""
    server = OllamaTestServer(n_ctx=N_CTX)
    template = chat_template_file("Qwen-Qwen2.5-7B-Instruct").read_text()
    server.add_model("gemma3:270m", gemma_path, template=template, stop=())
    with server:
        yield server


class _Errors(BaseCallbackHandler):
    """The errors the chat model's runs ended with."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)


def _chat(runtime: str, request: pytest.FixtureRequest) -> Any:
    if runtime == "llamacpp":
        path = str(request.getfixturevalue("gemma_path"))
        return ChatLlamaCpp(
            model_path=path, chat_format="gemma", n_ctx=N_CTX, max_tokens=48, temperature=0, n_threads=1
        )
    if runtime == "ollama":
        url = request.getfixturevalue("gemma_ollama_1k").base_url
        return ChatOllama(model="gemma3:270m", base_url=url, num_predict=48, temperature=0)
    url = request.getfixturevalue("gemma_llama_server").base_url
    return ChatLlamafile(base_url=url, max_tokens=48, temperature=0)


@pytest.mark.real_model
@pytest.mark.llama_server
@pytest.mark.parametrize("runtime", ["llamacpp", "llamafile", "ollama"])
def test_a_dozen_long_turns_are_summarised_not_cut(runtime: str, request: pytest.FixtureRequest) -> None:
    chat = _chat(runtime, request)
    errors = _Errors()
    chat.callbacks = [errors]
    assert chat.profile["max_input_tokens"] == N_CTX  # read from the runtime, not given
    calls: list[tuple[int, int]] = []  # (our count of the messages, the call's input_tokens)

    @wrap_model_call
    def record(model_request: ModelRequest, handler: Any) -> Any:
        response = handler(model_request)
        answer = next(m for m in response.result if isinstance(m, AIMessage))
        calls.append(
            (chat.get_num_tokens_from_messages(model_request.messages), answer.usage_metadata["input_tokens"])
        )
        return response

    summarization = SummarizationMiddleware(
        model=chat,
        trigger=("fraction", 0.6),
        keep=("fraction", 0.3),
        token_counter=chat.get_num_tokens_from_messages,
    )
    agent = create_agent(chat, tools=[], middleware=[summarization, record])
    messages: list[Any] = []
    for i, topic in enumerate(TOPICS):
        question = _turn(i, topic)
        messages = agent.invoke({"messages": [*messages, HumanMessage(question)]})["messages"]
        assert messages[-2].text == question  # the question reached the model whole
        assert isinstance(messages[-1], AIMessage)
    summaries = [m for m in messages if m.additional_kwargs.get("lc_source") == "summarization"]
    assert len(summaries) == 1 and messages[0] is summaries[0]  # summarised, the summary first
    assert summaries[0].text.removeprefix("Here is a summary of the conversation to date:").strip()
    assert len(calls) == len(TOPICS)
    # A summary prompt that did not fit was a ContextOverflowError, answered with a shorter one.
    assert all(isinstance(e, ContextOverflowError) for e in errors.errors)
    assert all(used < N_CTX for _, used in calls)  # no call near overflow, none cut
    assert max(used for _, used in calls) > 0.6 * N_CTX * 0.8  # the conversation did grow long
    if runtime == "ollama":  # an estimate (no tokenizer endpoint); every request forbade cutting
        chats = [
            body
            for _, path, body in request.getfixturevalue("gemma_ollama_1k").requests
            if path == "/api/chat"
        ]
        assert chats and all(body.get("truncate") is False for body in chats)
    else:
        assert [count for count, _ in calls] == [used for _, used in calls]


@pytest.mark.real_model
@pytest.mark.llama_server
@pytest.mark.parametrize("runtime", ["llamacpp", "llamafile", "ollama"])
def test_a_summary_prompt_too_long_is_retried_shorter(runtime: str, request: pytest.FixtureRequest) -> None:
    """The middleware's default summary prompt (about 530 tokens) over a long history does not
    fit 1024 tokens: the runtime says so with a ContextOverflowError (never a cut prompt), and
    the middleware's retry with the middle of the history left out gives a summary."""
    chat = _chat(runtime, request)
    errors = _Errors()
    chat.callbacks = [errors]
    history: list[Any] = []
    for i, topic in enumerate(TOPICS[:6]):
        history += [HumanMessage(_turn(i, topic)), AIMessage(f"Here is a short answer about {topic}. " * 4)]
    summary = SummarizationMiddleware(model=chat, trigger=("fraction", 0.6))._create_summary(history)
    assert summary
    assert len(errors.errors) == 1 and isinstance(errors.errors[0], ContextOverflowError)


pytestmark = pytest.mark.timeout(900)  # a dozen turns and their summaries on a shared CPU
