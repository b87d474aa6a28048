"""``ChatOpenAICompatible``, ``ChatLlamafile``, ``OpenAICompatible`` and ``OpenAICompatibleEmbeddings``
against the real llama-server's ``/v1`` API: the real Gemma 3 270M model behind a real
tool-capable template (``--jinja``), the tiny generated model, and MiniLM for embeddings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from pydantic import BaseModel

from langchain_localllm import (
    ChatLlamafile,
    ChatOpenAICompatible,
    LlamaCppEmbeddings,
    OpenAICompatible,
    OpenAICompatibleEmbeddings,
)
from langchain_localllm.errors import (
    ContextLengthExceededError,
    InvalidParameterError,
    TruncatedOutputError,
    UnsupportedParameterError,
)
from tests.fixtures.models import tiny_model
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama_server


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return "sunny"


def weather_history(cities: list[str], ask: str) -> list[BaseMessage]:
    """A conversation where the assistant answered each city with a tool call, then a new city."""
    history: list[BaseMessage] = []
    for city in cities:
        call = {"name": "get_weather", "args": {"city": city}, "id": f"call-{city}"}
        history += [
            HumanMessage(f"Weather in {city}?"),
            AIMessage("", tool_calls=[call]),
            ToolMessage("sunny", tool_call_id=f"call-{city}"),
            AIMessage(f"Sunny in {city}."),
        ]
    return [*history, HumanMessage(f"Weather in {ask}?")]


class Person(BaseModel):
    name: str
    age: int


def test_server_is_identified_once(gemma_server: LlamaServer) -> None:
    chat = ChatOpenAICompatible(base_url=gemma_server.base_url + "/v1")
    info = chat.server_info()
    assert info.dialect.name == "llama-server"
    assert info.models and info.models[0].endswith("gemma-3-270m-q4_k_m.gguf")
    assert info.n_ctx == 2048  # 4096 over 2 slots
    assert chat.server_info() is info


def test_chat_invoke_and_stream_agree_with_usage(gemma_server: LlamaServer) -> None:
    chat = ChatOpenAICompatible(base_url=gemma_server.base_url, max_tokens=12, temperature=0, seed=1)
    message = chat.invoke("The capital of France is")
    chunks = list(chat.stream("The capital of France is"))
    joined = chunks[0]
    for chunk in chunks[1:]:
        joined = joined + chunk
    assert isinstance(joined, AIMessageChunk)
    assert joined.content == message.content
    assert message.content
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == 12
    assert message.usage_metadata["input_tokens"] > 5
    assert message.response_metadata["finish_reason"] == "length"
    assert message.response_metadata["timings"]["predicted_n"] == 12
    assert sum(1 for c in chunks if c.usage_metadata) == 1


async def test_chat_async_stream(gemma_server: LlamaServer) -> None:
    chat = ChatLlamafile(base_url=gemma_server.base_url, max_tokens=6, temperature=0)
    chunks = [c async for c in chat.astream("Once upon a time")]
    assert chunks[-1].usage_metadata is not None
    assert chunks[-1].usage_metadata["output_tokens"] == 6
    assert (await chat.ainvoke("Once upon a time")).content == "".join(str(c.content) for c in chunks)


def test_structured_output_parses_by_construction(gemma_server: LlamaServer) -> None:
    chat = ChatLlamafile(base_url=gemma_server.base_url, max_tokens=48, temperature=0)
    person = chat.with_structured_output(Person).invoke("Ada Lovelace was 36.")
    assert isinstance(person, Person)
    json_mode = chat.with_structured_output(Person.model_json_schema(), method="json_mode", include_raw=True)
    result = json_mode.invoke("Ada, 36:")
    if result["raw"].response_metadata["finish_reason"] == "length":
        # Gemma 3 270M in JSON mode repeats inside a string until max_tokens: the cut answer is a
        # typed error carrying the raw text, never a partially parsed dict
        assert result["parsed"] is None
        assert isinstance(result["parsing_error"], TruncatedOutputError)
        assert result["parsing_error"].llm_output == result["raw"].content
    else:
        # the grammar sent fits max_tokens: JSON mode closes in time, a whole JSON object (which
        # json_mode then validates against the schema: parsed, or a validation error, never cut)
        assert isinstance(json.loads(result["raw"].content), dict)
        assert isinstance(result["parsed"], dict) or not isinstance(
            result["parsing_error"], TruncatedOutputError
        )


def test_tool_calls_are_parsed_by_the_server(gemma_server: LlamaServer) -> None:
    chat = ChatLlamafile(base_url=gemma_server.base_url, max_tokens=60, temperature=0)
    bound = chat.bind_tools([get_weather], tool_choice="auto")
    history = weather_history(["Paris", "Rome", "Oslo"], "Berlin")
    message = bound.invoke(history)
    assert isinstance(message, AIMessage)
    calls = {(c["name"], json.dumps(c["args"])) for c in message.tool_calls}
    assert calls == {("get_weather", '{"city": "Berlin"}')}  # the model may repeat the call
    assert message.response_metadata["finish_reason"] in ("tool_calls", "length", "stop")
    chunks = list(bound.stream(history))
    joined = chunks[0]
    for chunk in chunks[1:]:
        joined = joined + chunk
    assert isinstance(joined, AIMessageChunk)
    assert [(c["name"], c["args"]) for c in joined.tool_calls] == [
        (c["name"], c["args"]) for c in message.tool_calls
    ]
    assert len({c["id"] for c in joined.tool_calls}) == len(joined.tool_calls)


def test_tool_choice_must_name_a_bound_tool(gemma_server: LlamaServer) -> None:
    chat = ChatLlamafile(base_url=gemma_server.base_url)
    with pytest.raises(InvalidParameterError, match="not one of the tools"):
        chat.bind_tools([get_weather], tool_choice="get_time")


def test_completions_llm_stream_and_json_schema(gemma_server: LlamaServer) -> None:
    llm = OpenAICompatible(base_url=gemma_server.base_url + "/v1/", max_tokens=8, temperature=0)
    text = llm.invoke("The capital of France is")
    assert "".join(llm.stream("The capital of France is")) == text
    info = llm.generate(["The capital of France is"]).generations[0][0].generation_info or {}
    assert (info["finish_reason"], info["completion_tokens"]) == ("length", 8)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    constrained = OpenAICompatible(
        base_url=gemma_server.base_url, max_tokens=40, temperature=0, json_schema=schema
    )
    assert set(json.loads(constrained.invoke("Paris is a city. JSON:"))) == {"city"}
    with pytest.raises(InvalidParameterError, match="not both"):
        llm.invoke("x", grammar='root ::= "a"', json_schema=schema)


@pytest.fixture(scope="module")
def tiny_server(llama_server_binary: Path) -> Iterator[LlamaServer]:
    with LlamaServer(
        tiny_model("chatml"), binary=llama_server_binary, n_ctx=256, threads=1, extra_args=["--jinja"]
    ) as server:
        yield server


def test_llama_server_extras_logprobs_and_context_overflow(tiny_server: LlamaServer) -> None:
    chat = ChatLlamafile(base_url=tiny_server.base_url, max_tokens=4, temperature=0, cache_prompt=True)
    message = chat.invoke("Hello", logprobs=True, top_logprobs=2)
    tokens = message.response_metadata["logprobs"]["content"]
    assert len(tokens) == 4
    assert all(len(t["top_logprobs"]) == 2 for t in tokens)
    with pytest.raises(ContextLengthExceededError) as caught:
        chat.invoke("word " * 400)
    assert caught.value.n_ctx == 256
    assert caught.value.prompt_tokens is not None
    assert caught.value.prompt_tokens > 256


def test_tools_on_a_server_without_jinja_say_how_to_fix(llama_server_binary: Path) -> None:
    with LlamaServer(
        tiny_model("chatml"), binary=llama_server_binary, n_ctx=256, threads=1, extra_args=["--no-jinja"]
    ) as server:
        chat = ChatLlamafile(base_url=server.base_url, max_tokens=4)
        assert chat.invoke("Hello").usage_metadata is not None  # plain chat still works
        with pytest.raises(UnsupportedParameterError, match="--jinja"):
            chat.bind_tools([get_weather]).invoke("Weather in Paris?")


def test_embeddings_match_in_process(
    minilm_path: Path, llama_server_binary: Path, llamacpp_embeddings: LlamaCppEmbeddings
) -> None:
    texts = ["local models run offline", "the sky is blue", "private data stays home"]
    with LlamaServer(
        minilm_path,
        binary=llama_server_binary,
        n_ctx=512,
        threads=1,
        extra_args=["--embeddings", "--pooling", "mean", "-b", "512", "-ub", "512"],
    ) as server:
        emb = OpenAICompatibleEmbeddings(base_url=server.base_url + "/v1")
        vectors = emb.embed_documents(texts)
        local = llamacpp_embeddings.embed_documents(texts)
        assert len(vectors) == 3
        for got, want in zip(vectors, local, strict=True):
            assert sum(a * b for a, b in zip(got, want, strict=True)) > 0.99
        assert emb.embed_query(texts[0]) == pytest.approx(vectors[0], abs=1e-4)


def test_completion_api_renders_with_apply_template(gemma_server: LlamaServer) -> None:
    """chat_api="completion": the server's /apply-template renders, /completion generates."""
    chat = ChatLlamafile(base_url=gemma_server.base_url, max_tokens=10, temperature=0, chat_api="completion")
    message = chat.invoke([("system", "Be brief."), ("human", "The capital of France is")])
    via_chat = ChatLlamafile(base_url=gemma_server.base_url, max_tokens=10, temperature=0).invoke(
        [("system", "Be brief."), ("human", "The capital of France is")]
    )
    assert message.content == via_chat.content  # same template, same greedy tokens
    assert message.usage_metadata == via_chat.usage_metadata
    assert message.response_metadata["finish_reason"] == "length"
    chunks = list(chat.stream("Hello"))
    assert chunks[-1].usage_metadata is not None
    assert chunks[-1].usage_metadata["output_tokens"] == 10
    roomy = chat.model_copy(update={"max_tokens": 60})
    assert isinstance(roomy.with_structured_output(Person).invoke("Ada, 36"), Person)
    with pytest.raises(UnsupportedParameterError, match="no tools"):
        chat.bind_tools([get_weather], tool_choice="any").invoke("Weather?")
