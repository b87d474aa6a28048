"""``Llamafile`` against a real llama-server (the server llamafile 0.10+ ships), built from the
llama.cpp sources vendored in llama-cpp-python's sdist, serving the tiny ChatML GGUF."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from langchain_localllm import Llamafile
from langchain_localllm.errors import (
    ContextLengthExceededError,
    InvalidParameterError,
    ServerResponseError,
)
from langchain_localllm.llamafile.client import LlamaServerClient
from tests.fixtures.chat_templates import CHAT_TEMPLATES
from tests.fixtures.models import tiny_model
from tests.fixtures.runs import LLMEvents as Tokens
from tests.fixtures.servers import LLAMA_SERVER_CTX
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama_server


@pytest.fixture
def llm(llama_server: LlamaServer) -> Llamafile:
    return Llamafile(base_url=llama_server.base_url, n_predict=8, temperature=0, seed=1)


def test_health(llm: Llamafile) -> None:
    assert llm.health() == {"status": "ok"}
    assert asyncio.run(llm.ahealth()) == {"status": "ok"}


def test_invoke_reports_usage_timings_and_stop_type(llm: Llamafile) -> None:
    result = llm.generate(["The moon"])
    generation = result.generations[0][0]
    info = generation.generation_info or {}
    assert generation.text
    assert info["finish_reason"] == "length"
    assert info["stop_type"] == "limit"
    assert info["tokens_predicted"] == 8
    assert info["usage"]["completion_tokens"] == 8
    assert info["usage"]["prompt_tokens"] == info["tokens_evaluated"] > 0
    assert info["timings"]["predicted_n"] == 8
    assert info["timings"]["predicted_per_second"] > 0
    assert result.llm_output is not None
    assert result.llm_output["token_usage"] == info["usage"]
    assert result.llm_output["model_name"] == llm.model_name != "llamafile"


def test_same_text_sync_async_streamed_and_not(llm: Llamafile, llama_server: LlamaServer) -> None:
    text = llm.invoke("The moon")
    assert "".join(llm.stream("The moon")) == text
    assert asyncio.run(llm.ainvoke("The moon")) == text
    not_streamed = Llamafile(
        base_url=llama_server.base_url, n_predict=8, temperature=0, seed=1, streaming=False
    )
    assert not_streamed.invoke("The moon") == text


async def test_astream_feeds_callbacks(llm: Llamafile) -> None:
    handler = Tokens()
    chunks = [c async for c in llm.astream("The sun", config={"callbacks": [handler]})]
    tokens = [c for c in chunks if c]
    assert len(tokens) > 1
    assert handler.tokens == tokens


def test_n_predict_bounds_the_answer(llama_server: LlamaServer) -> None:
    llm = Llamafile(base_url=llama_server.base_url, temperature=0, ignore_eos=True, n_predict=20)
    info = llm.generate(["x"]).generations[0][0].generation_info or {}
    assert info["tokens_predicted"] == 20
    assert info["finish_reason"] == "length"
    assert Llamafile().n_predict == 256  # bounded by default, unlike the server's -1


def test_stop_sequence(llm: Llamafile) -> None:
    full = llm.invoke("The moon", n_predict=24)
    words = full.split()
    assert len(words) >= 3
    cut_info = llm.generate(["The moon"], n_predict=24, stop=[words[2]]).generations[0][0]
    assert words[2] not in cut_info.text
    assert full.startswith(cut_info.text)
    info = cut_info.generation_info or {}
    assert info["stop_type"] == "word"
    assert info["finish_reason"] == "stop"
    assert info["stopping_word"] == words[2]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_grammar_constrains_the_output(llm: Llamafile, mode: str) -> None:
    grammar = 'root ::= ("yes" | "no") "."'
    if mode == "sync":
        text = llm.invoke("Answer:", grammar=grammar, n_predict=16)
    else:
        text = asyncio.run(llm.ainvoke("Answer:", grammar=grammar, n_predict=16))
    assert text in ("yes.", "no.")


def test_json_schema_constrains_the_output(llama_server: LlamaServer) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}},
        "required": ["n", "ok"],
        "additionalProperties": False,
    }
    llm = Llamafile(base_url=llama_server.base_url, json_schema=schema, n_predict=64, temperature=0)
    value = json.loads(llm.invoke("JSON:"))
    assert isinstance(value["n"], int)
    assert isinstance(value["ok"], bool)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_bad_grammar_is_an_invalid_parameter(llm: Llamafile, mode: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        if mode == "sync":
            llm.invoke("x", grammar="root ::= (unclosed")
        else:
            asyncio.run(llm.ainvoke("x", grammar="root ::= (unclosed"))
    assert info.value.status_code == 400
    assert "grammar" in str(info.value).lower()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_over_long_prompt(llm: Llamafile, mode: str) -> None:
    prompt = "moon sun star sky " * 200
    with pytest.raises(ContextLengthExceededError) as info:
        if mode == "sync":
            llm.invoke(prompt)
        else:
            asyncio.run(llm.ainvoke(prompt))
    assert info.value.n_ctx == LLAMA_SERVER_CTX
    assert info.value.prompt_tokens is not None
    assert info.value.prompt_tokens > LLAMA_SERVER_CTX
    assert str(info.value.prompt_tokens) in str(info.value)


def test_tokenize_matches_the_model_tokenizer(llm: Llamafile) -> None:
    from llama_cpp import Llama

    text = "moon sun star sky night"
    local = Llama(model_path=str(tiny_model("chatml")), vocab_only=True, verbose=False)
    expected = local.tokenize(text.encode(), add_bos=False, special=True)
    assert llm.get_token_ids(text) == expected
    assert llm.get_num_tokens(text) == len(expected)


def test_server_client_tokenize_detokenize_template_and_slots(llm: Llamafile) -> None:
    from llama_cpp import Llama

    server = llm.server
    text = "moon sun star sky night"
    local = Llama(model_path=str(tiny_model("chatml")), vocab_only=True, verbose=False)
    ids = server.tokenize(text)
    assert ids == local.tokenize(text.encode(), add_bos=False, special=True)
    assert server.detokenize(ids).strip() == text
    prompt = server.apply_template([{"role": "user", "content": "Hi"}])
    assert prompt == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert server.props()["default_generation_settings"]["n_ctx"] == LLAMA_SERVER_CTX
    assert server.health() == {"status": "ok"}


def test_props_context_window_and_chat_template(llm: Llamafile) -> None:
    assert llm.get_context_window() == LLAMA_SERVER_CTX
    assert llm.chat_template() == CHAT_TEMPLATES["chatml"]


def test_token_probabilities(llm: Llamafile) -> None:
    info = llm.generate(["The moon"], n_probs=3, n_predict=4).generations[0][0].generation_info or {}
    probs = info["completion_probabilities"]
    assert len(probs) == 4
    assert all(len(p["top_logprobs"]) == 3 for p in probs)


def test_batch(llm: Llamafile) -> None:
    answers = llm.batch(["one", "two", "three"])
    assert len(answers) == 3
    assert all(answers)


def test_api_key(llama_server_binary: Any) -> None:
    with LlamaServer(
        tiny_model("chatml"), binary=llama_server_binary, n_ctx=128, threads=1, extra_args=["--api-key", "k1"]
    ) as s:
        answer = Llamafile(base_url=s.base_url, api_key="k1", n_predict=2).generate(["x"]).generations[0][0]
        assert (answer.generation_info or {})["tokens_predicted"] == 2  # the server generated for us
        assert LlamaServerClient.from_url(s.base_url, headers={"Authorization": "Bearer k1"}).tokenize("x")
        with pytest.raises(ServerResponseError, match="api_key") as info:
            Llamafile(base_url=s.base_url, api_key="wrong", n_predict=2).invoke("x")
    assert info.value.status_code == 401


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_pooled_connection_reused_after_a_stream(llm: Llamafile, mode: str) -> None:
    # llama-server closes the connection after a streamed answer despite announcing keep-alive;
    # the next request on the pooled connection must still succeed (one retry on a fresh one).
    client = llm.client
    plain = llm.model_copy(update={"streaming": False})  # same settings: shares the pooled client
    assert plain.client is client

    async def alternate() -> list[str]:
        return [await (llm if i % 2 else plain).ainvoke("The moon") for i in range(4)]

    if mode == "sync":
        answers = [(llm if i % 2 else plain).invoke("The moon") for i in range(4)]
    else:
        answers = asyncio.run(alternate())
    assert len(set(answers)) == 1
