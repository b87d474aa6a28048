"""``profile`` of every chat model, read from the model and the runtime: in process (the
context llama.cpp loads, the template's tools and reasoning), from the real llama-server
(``-c`` and ``--parallel`` varied, a fleet, the router serving several models) and from the
Ollama emulator (``/api/show`` with and without ``num_ctx``, ``/api/ps``); nothing is read
at construction, values follow the connection settings, and the user's values win."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import SummarizationMiddleware
from pydantic import BaseModel, Field

from langchain_localllm import ChatGPT4All, ChatLlamaCpp, ChatLlamafile, ChatOllama, ChatOpenAICompatible
from langchain_localllm.errors import ServerUnreachableError, UnsupportedParameterError
from tests.fixtures.models import tiny_model
from tests.fixtures.template_models import template_model
from tests.support.llama_server import LlamaServer, free_port
from tests.support.ollama_server import OllamaTestServer

# --- in process --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_ctx", "loaded"), [(None, 2048), (0, 2048), (300, 512), (1000, 1024), (1536, 1536)]
)
def test_llamacpp_context_is_the_one_llama_cpp_loads(n_ctx: int | None, loaded: int) -> None:
    chat = ChatLlamaCpp(model_path=str(tiny_model("chatml")), n_ctx=n_ctx, n_threads=1)
    before = chat.profile["max_input_tokens"]  # read from the file's header: nothing loaded yet
    assert before == loaded == chat.client.n_ctx()
    assert chat.profile["max_output_tokens"] == 256  # max_tokens' default


@pytest.mark.parametrize(
    ("template", "reasons"),
    [
        ("Qwen-Qwen3-0.6B", True),
        ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", True),
        ("Qwen-Qwen2.5-7B-Instruct", False),
        ("meta-llama-Llama-3.1-8B-Instruct", False),
    ],
)
def test_inprocess_reasoning_and_tools_follow_the_template(template: str, reasons: bool) -> None:
    path = str(template_model(template))
    llamacpp = ChatLlamaCpp(model_path=path, n_ctx=1024, n_threads=1)
    gpt4all = ChatGPT4All(model=path, n_ctx=1024, n_threads=1)
    for chat in (llamacpp, gpt4all):
        assert chat.profile["reasoning_output"] is reasons
        assert chat.profile["tool_calling"] is True  # the template's syntax, or tools in a system message
        assert chat.profile["image_inputs"] is False
        assert chat.profile["name"] == "tiny-random-llama"  # general.name of the file
    # llama.cpp decodes under a grammar; gpt4all has none: it cannot force a call or a schema.
    assert llamacpp.profile["tool_choice"] is llamacpp.profile["structured_output"] is True
    assert gpt4all.profile["tool_choice"] is gpt4all.profile["structured_output"] is False
    assert gpt4all.profile["max_input_tokens"] == 1024
    assert gpt4all.profile["max_output_tokens"] == 200


class Verdict(BaseModel):
    label: str = Field(max_length=12)
    score: int = Field(ge=0, le=9)


def test_create_agent_picks_its_structured_output_strategy_from_the_profile() -> None:
    """structured_output=True: create_agent asks the model for the schema itself (our grammar
    makes it valid, whatever the weights); False (gpt4all): it falls back to a forced tool call,
    which gpt4all refuses with the typed error instead of an unchecked answer."""
    path = str(tiny_model("chatml"))
    chat = ChatLlamaCpp(model_path=path, n_ctx=1024, n_threads=1, temperature=0, max_tokens=60)
    result = create_agent(chat, tools=[], response_format=Verdict).invoke(
        {"messages": [("user", "Judge this.")]}
    )
    assert isinstance(result["structured_response"], Verdict)
    gpt4all = ChatGPT4All(model=path, n_ctx=1024, n_threads=1, max_tokens=60)
    with pytest.raises(UnsupportedParameterError, match="tool_choice"):
        create_agent(gpt4all, tools=[], response_format=Verdict).invoke(
            {"messages": [("user", "Judge this.")]}
        )


def test_user_values_win_key_by_key_and_copies_read_their_own_settings() -> None:
    chat = ChatLlamaCpp(model_path=str(tiny_model("chatml")), n_ctx=512, profile={"max_input_tokens": 400})
    assert chat.profile["max_input_tokens"] == 400
    assert chat.profile["tool_choice"] is True  # the rest is still read
    assert chat.model_copy(update={"n_ctx": 1024}).profile["max_input_tokens"] == 400  # still the user's
    plain = ChatLlamaCpp(model_path=str(tiny_model("chatml")), n_ctx=512)
    copied = plain.model_copy(update={"n_ctx": 1024})
    deep = plain.model_copy(update={"max_tokens": 16}, deep=True)
    assert (plain.profile["max_input_tokens"], copied.profile["max_input_tokens"]) == (512, 1024)
    assert (plain.profile["max_output_tokens"], deep.profile["max_output_tokens"]) == (256, 16)
    plain.max_tokens = 32  # an assignment is seen too
    assert plain.profile["max_output_tokens"] == 32


def test_fractional_summarization_needs_and_gets_the_profile() -> None:
    """The issue's symptom: SummarizationMiddleware refused fractional limits for want of a profile."""
    chat = ChatLlamaCpp(model_path=str(tiny_model("chatml")), n_ctx=1024)
    middleware = SummarizationMiddleware(model=chat, trigger=("fraction", 0.6), keep=("fraction", 0.3))
    assert middleware._get_profile_limits() == 1024


# --- llama-server -------------------------------------------------------------------------------


@pytest.mark.llama_server
@pytest.mark.parametrize(("n_ctx", "parallel", "per_slot"), [(1024, 1, 1024), (1024, 2, 512), (2048, 4, 512)])
def test_llama_server_context_is_per_slot(
    llama_server_binary: Path, n_ctx: int, parallel: int, per_slot: int
) -> None:
    with LlamaServer(
        tiny_model("chatml"), binary=llama_server_binary, n_ctx=n_ctx, parallel=parallel, threads=1
    ) as server:
        chat = ChatLlamafile(base_url=server.base_url, max_tokens=100)
        assert chat.profile["max_input_tokens"] == per_slot
        assert chat.profile["max_output_tokens"] == 100
        assert chat.profile["image_inputs"] is chat.profile["audio_inputs"] is False  # no projector
        assert chat.profile["tool_choice"] is chat.profile["structured_output"] is True
        # The ChatML template has no tool-call layout, and does not reason.
        assert chat.profile["tool_calling"] is chat.profile["reasoning_output"] is False


@pytest.mark.llama_server
@pytest.mark.parametrize(
    ("template", "reasons", "calls"),
    [("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", True, True), ("Qwen-Qwen2.5-7B-Instruct", False, True)],
)
def test_llama_server_reasoning_and_tools_are_the_templates(
    llama_server_binary: Path, template: str, reasons: bool, calls: bool
) -> None:
    with LlamaServer(
        template_model(template), binary=llama_server_binary, n_ctx=512, threads=1, extra_args=["--jinja"]
    ) as server:
        profile = ChatOpenAICompatible(base_url=server.base_url).profile
        assert (profile["reasoning_output"], profile["tool_calling"]) == (reasons, calls)


@pytest.fixture(scope="module")
def two_servers(llama_server_binary: Path) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    model = tiny_model("chatml")
    with (
        LlamaServer(model, binary=llama_server_binary, n_ctx=1024, parallel=1, threads=1) as big,
        LlamaServer(model, binary=llama_server_binary, n_ctx=768, parallel=1, threads=1) as small,
    ):
        yield big, small


@pytest.mark.llama_server
def test_profile_follows_the_connection_settings(two_servers: tuple[LlamaServer, LlamaServer]) -> None:
    big, small = two_servers
    chat = ChatLlamafile(base_url=big.base_url)
    assert chat.profile["max_input_tokens"] == 1024
    copied = chat.model_copy(update={"base_url": small.base_url})
    assert copied.profile["max_input_tokens"] == 768
    chat.base_url = small.base_url
    assert chat.profile["max_input_tokens"] == 768
    # A fleet: a request may go to either server, so the smaller context is the profile's.
    fleet = ChatOpenAICompatible(base_url=[big.base_url, small.base_url])
    assert fleet.profile["max_input_tokens"] == 768


@pytest.mark.llama_server
def test_nothing_is_read_at_construction(llama_server_binary: Path) -> None:
    """A chat model is built without a server; reading its profile needs one, and a failed
    read is not remembered: once the server runs, the next read gets the values."""
    port = free_port()
    chat = ChatLlamafile(base_url=f"http://127.0.0.1:{port}")
    assert repr(chat)  # repr, equality and truthiness read nothing
    assert chat.profile and chat == ChatLlamafile(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ServerUnreachableError):
        chat.profile.get("max_input_tokens")
    with LlamaServer(tiny_model("chatml"), binary=llama_server_binary, port=port, n_ctx=640, threads=1):
        assert chat.profile.get("max_input_tokens") == 768  # llama.cpp rounds 640 up to a multiple of 256


@pytest.fixture(scope="module")
def router(llama_server_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-server in router mode, serving two models of a folder (each in a server of its own)."""
    from tests.fixtures.router import llama_router

    with llama_router(llama_server_binary, tmp_path_factory.mktemp("router"), n_ctx=768) as server:
        yield server


@pytest.mark.llama_server
def test_router_profile_is_the_served_models(router: LlamaServer) -> None:
    chat = ChatOpenAICompatible(base_url=router.base_url, model="tiny-llama2")
    assert chat.profile["max_input_tokens"] == 768
    assert chat.model_copy(update={"model": "tiny-chatml"}).profile["max_input_tokens"] == 768


# --- Ollama ------------------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[OllamaTestServer]:
    from tests.fixtures.openai_servers import chat_template_file

    server = OllamaTestServer({"tiny": tiny_model("llama2")}, n_ctx=512)
    qwen = chat_template_file("Qwen-Qwen2.5-7B-Instruct").read_text()
    server.add_model("tiny-tools", tiny_model("chatml"), template=qwen)
    with server:
        yield server


def test_ollama_context_from_the_request_the_modelfile_or_the_running_model(
    emulator: OllamaTestServer,
) -> None:
    url = emulator.base_url
    assert (
        ChatOllama(model="tiny", base_url=url).profile["max_input_tokens"] == 512
    )  # the Modelfile's num_ctx
    assert ChatOllama(model="tiny", base_url=url, num_ctx=300).profile["max_input_tokens"] == 300
    assert ChatOllama(model="tiny", base_url=url, options={"num_ctx": 256}).profile["max_input_tokens"] == 256
    # More than the model was trained on: Ollama caps it at the trained context (2048).
    assert ChatOllama(model="tiny", base_url=url, num_ctx=8192).profile["max_input_tokens"] == 2048
    emulator.modelfile_num_ctx = False  # a library model: no num_ctx parameter
    assert not [path for _, path, _ in emulator.requests if path == "/api/generate"]
    chat = ChatOllama(model="tiny", base_url=url, num_predict=64)
    assert chat.profile["max_input_tokens"] == 512  # what /api/ps says once the model is loaded
    assert chat.profile["max_output_tokens"] == 64
    loads = [body for _, path, body in emulator.requests if path == "/api/generate"]
    assert loads == [{"model": "tiny"}]  # Ollama's "load a model" request, nothing generated


def test_ollama_capabilities_are_the_models(emulator: OllamaTestServer) -> None:
    plain = ChatOllama(model="tiny", base_url=emulator.base_url).profile
    tools = ChatOllama(model="tiny-tools", base_url=emulator.base_url).profile
    assert (plain["tool_calling"], tools["tool_calling"]) == (False, True)
    for profile in (plain, tools):
        assert profile["tool_choice"] is profile["structured_output"] is True  # through `format`
        assert profile["image_inputs"] is profile["reasoning_output"] is False
        assert profile["image_url_inputs"] is False


def test_ollama_profile_is_read_once_per_settings(emulator: OllamaTestServer) -> None:
    chat = ChatOllama(model="tiny", base_url=emulator.base_url)
    shows = lambda: sum(path == "/api/show" for _, path, _ in emulator.requests)  # noqa: E731
    assert shows() == 0  # nothing at construction
    for _ in range(3):
        assert chat.profile["max_input_tokens"] == 512
    assert shows() == 1
    chat.num_ctx = 128
    assert chat.profile["max_input_tokens"] == 128  # the profile follows the setting...
    assert shows() == 1  # ...without asking again: /api/show's answer does not depend on num_ctx


def test_ollama_max_tokens_caps_the_answer_as_the_profile_says(emulator: OllamaTestServer) -> None:
    """``max_tokens`` (langchain-ollama's name of ``num_predict``) is sent: the profile's
    ``max_output_tokens`` is what an answer gets at most."""
    chat = ChatOllama(model="tiny", base_url=emulator.base_url, max_tokens=3)
    assert chat.profile["max_output_tokens"] == 3
    answer = chat.invoke("Hello")
    assert answer.usage_metadata["output_tokens"] <= 3
    assert answer.response_metadata["finish_reason"] == "length"
