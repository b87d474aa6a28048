"""Malformed answers from loopback hostile servers: a typed error, raised fast, on every server class.

Every server LLM and chat model reads its answer through the one exchange
(``_core.server_exchange``); each case here is served to all six classes (or to the ones whose
wire format it breaks), sync and async, and must end in a ``MalformedResponseError`` naming
the endpoint -- never a raw ``RecursionError``, ``AttributeError`` or pydantic
``ValidationError`` -- within a deadline.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseLanguageModel
from pydantic import BaseModel

from langchain_localllm import (
    ChatLlamafile,
    ChatOllama,
    ChatOpenAICompatible,
    Llamafile,
    Ollama,
    OpenAICompatible,
)
from langchain_localllm._core.tools.calling import MAX_TOOL_CALL_ARGUMENTS
from langchain_localllm.errors import MalformedResponseError, TokenBudgetError, TruncatedOutputError
from tests.support.fault_server import FaultServer, respond, stream

DEADLINE = 10.0
"""Seconds a hostile case may take before it counts as a hang (each takes well under one)."""

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
DEEP = b"[" * 100_000 + b"]" * 100_000
"""JSON nested 100,000 deep: valid, and deeper than Python's recursion limit."""


def line(value: Any) -> bytes:
    return (value if isinstance(value, bytes) else json.dumps(value).encode()) + b"\n"


def event(value: Any) -> bytes:
    return b"data: " + (value if isinstance(value, bytes) else json.dumps(value).encode()) + b"\n\n"


def within_deadline(call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` in a thread; the exception it raised (None if it returned), failing past the deadline."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as error:  # handed to the test
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(DEADLINE)
    assert outcome, f"no answer within {DEADLINE}s: a hang"
    return outcome[0]


def invoke(model: BaseLanguageModel[Any], mode: str) -> Callable[[], Any]:
    if mode == "sync":
        return lambda: model.invoke("hi")
    return lambda: asyncio.run(model.ainvoke("hi"))


# --- every server class: one case, the wire format of each ---------------------------------

SERVERS: dict[str, tuple[Callable[[str], BaseLanguageModel[Any]], str, Callable[[bytes], bytes]]] = {
    "Ollama": (lambda url: Ollama(model="m", base_url=url), NDJSON, lambda v: b'{"response": ' + v + b"}\n"),
    "ChatOllama": (
        lambda url: ChatOllama(model="m", base_url=url),
        NDJSON,
        lambda v: b'{"message": {"content": ' + v + b"}}\n",
    ),
    "Llamafile": (lambda url: Llamafile(base_url=url), SSE, lambda v: event(b'{"content": ' + v + b"}")),
    "OpenAICompatible": (
        lambda url: OpenAICompatible(base_url=url, model="m", dialect="vllm"),
        SSE,
        lambda v: event(b'{"choices": [{"text": ' + v + b"}]}"),
    ),
    "ChatOpenAICompatible": (
        lambda url: ChatOpenAICompatible(base_url=url, model="m", dialect="vllm"),
        SSE,
        lambda v: event(b'{"choices": [{"delta": {"content": ' + v + b"}}]}"),
    ),
    "ChatLlamafile": (
        lambda url: ChatLlamafile(base_url=url, model="m"),
        SSE,
        lambda v: event(b'{"choices": [{"delta": {"content": ' + v + b"}}]}"),
    ),
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("server", list(SERVERS))
@pytest.mark.parametrize(
    ("case", "value"),
    [("deeply nested JSON", DEEP), ("an object where text belongs", b'{"a": 1}'), ("a number", b"7")],
)
def test_a_malformed_answer_is_a_typed_error_on_every_server_class(
    server: str, mode: str, case: str, value: bytes
) -> None:
    make, content_type, wrap = SERVERS[server]
    with FaultServer(stream([wrap(value)], content_type)) as fault:
        error = within_deadline(invoke(make(fault.base_url), mode))
    assert isinstance(error, MalformedResponseError), f"{case}: {error!r}"
    assert fault.base_url in str(error)


@pytest.mark.parametrize("server", ["Ollama", "ChatOpenAICompatible"])
def test_a_deeply_nested_whole_answer_is_typed_too(server: str) -> None:
    make, _, _ = SERVERS[server]
    with FaultServer(respond(200, b'{"response": ' + DEEP + b"}")) as fault:
        model = make(fault.base_url).model_copy(update={"streaming": False})
        error = within_deadline(invoke(model, "sync"))
    assert isinstance(error, MalformedResponseError), repr(error)


# --- wrong-typed fields of a chat answer ----------------------------------------------------


@pytest.mark.parametrize(
    ("make", "content_type", "piece"),
    [
        pytest.param(
            lambda url: ChatOpenAICompatible(base_url=url, model="m", dialect="vllm"),
            SSE,
            event({"choices": [{"delta": "a string"}]}),
            id="delta is a string",
        ),
        pytest.param(
            lambda url: ChatOpenAICompatible(base_url=url, model="m", dialect="vllm"),
            SSE,
            event({"choices": "all of them"}),
            id="choices is a string",
        ),
        pytest.param(
            lambda url: ChatOpenAICompatible(base_url=url, model="m", dialect="vllm"),
            SSE,
            event({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": 42}}]}}]}),
            id="a tool call named by a number",
        ),
        pytest.param(
            lambda url: ChatOpenAICompatible(base_url=url, model="m", dialect="vllm"),
            SSE,
            event({"choices": [{"delta": {"tool_calls": [{"index": "first", "function": {"name": "f"}}]}}]}),
            id="a tool call index that is text",
        ),
        pytest.param(
            lambda url: ChatOllama(model="m", base_url=url),
            NDJSON,
            line({"message": "hello", "done": False}),
            id="message is a string",
        ),
        pytest.param(
            lambda url: ChatOllama(model="m", base_url=url),
            NDJSON,
            line({"message": {"content": "", "tool_calls": "f(1)"}, "done": False}),
            id="tool_calls is a string",
        ),
        pytest.param(
            lambda url: Ollama(model="m", base_url=url),
            NDJSON,
            line({"response": {}, "done": True}),
            id="response is an empty object",
        ),
    ],
)
def test_wrong_typed_fields_are_typed_errors(make: Any, content_type: str, piece: bytes) -> None:
    with FaultServer(stream([piece], content_type)) as fault:
        error = within_deadline(invoke(make(fault.base_url), "sync"))
    assert isinstance(error, MalformedResponseError), repr(error)
    assert fault.base_url in str(error)


# --- tool-call arguments are bounded ---------------------------------------------------------


def _streamed_call(pieces: list[str], finish: bool = True) -> list[bytes]:
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    events = [event({"choices": [{"delta": {"tool_calls": [first]}}]})]
    for piece in pieces:
        call = {"index": 0, "function": {"arguments": piece}}
        events.append(event({"choices": [{"delta": {"tool_calls": [call]}}]}))
    if finish:
        events.append(event({"choices": [{"delta": {}, "finish_reason": "tool_calls"}], "usage": _USAGE}))
    return events


_USAGE = {"prompt_tokens": 3, "completion_tokens": 5}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_streamed_tool_call_over_the_argument_limit_is_refused(mode: str) -> None:
    piece = "x" * (MAX_TOOL_CALL_ARGUMENTS // 4)
    hostile = _streamed_call(['{"a": "', *[piece] * 40])  # ten times the limit, in pieces
    with FaultServer(stream(hostile, SSE)) as fault:
        chat = ChatOpenAICompatible(base_url=fault.base_url, model="m", dialect="vllm")
        error = within_deadline(invoke(chat, mode))
    assert isinstance(error, MalformedResponseError), repr(error)
    assert str(MAX_TOOL_CALL_ARGUMENTS) in str(error)
    assert error.limit == MAX_TOOL_CALL_ARGUMENTS  # type: ignore[attr-defined]


def test_a_whole_tool_call_over_the_argument_limit_is_refused() -> None:
    call = {"function": {"name": "f", "arguments": {"a": "x" * (MAX_TOOL_CALL_ARGUMENTS + 1)}}}
    with FaultServer(
        stream([line({"message": {"content": "", "tool_calls": [call]}, "done": False})])
    ) as fault:
        error = within_deadline(invoke(ChatOllama(model="m", base_url=fault.base_url), "sync"))
    assert isinstance(error, MalformedResponseError), repr(error)
    assert "MAX_TOOL_CALL_ARGUMENTS" in str(error)


def test_a_tool_call_within_the_limit_is_kept_whole() -> None:
    value = "x" * (MAX_TOOL_CALL_ARGUMENTS - 100)
    text = json.dumps({"a": value})
    pieces = [text[i : i + 100_000] for i in range(0, len(text), 100_000)]
    with FaultServer(stream(_streamed_call(pieces), SSE)) as fault:
        message = ChatOpenAICompatible(base_url=fault.base_url, model="m", dialect="vllm").invoke("hi")
    assert message.tool_calls[0]["args"] == {"a": value}


# --- a structured answer cut off by max_tokens ------------------------------------------------


class City(BaseModel):
    city: str
    country: str


def _cut_answer(text: str) -> list[bytes]:
    """The SSE answer of a server whose structured answer ran into max_tokens."""
    return [
        event({"choices": [{"delta": {"content": text}}]}),
        event({"choices": [{"delta": {}, "finish_reason": "length"}], "usage": _USAGE}),
    ]


@pytest.mark.parametrize(
    ("method", "text"),
    [
        ("json_schema", '{"city": "Par'),
        ("json_mode", '{"city": "Paris", "country": "Fra'),
        ("function_calling", '{"name": "City", "arguments": {"city": "Paris", "country": "Fr'),
    ],
)
def test_a_cut_off_structured_answer_is_a_typed_error_never_a_value(method: Any, text: str) -> None:
    with FaultServer(stream(_cut_answer(text), SSE)) as fault:
        chat = ChatOpenAICompatible(base_url=fault.base_url, model="m", dialect="llama-server")
        with pytest.raises(TruncatedOutputError) as info:
            chat.with_structured_output(City, method=method).invoke("Where is the Louvre?")
        assert isinstance(info.value, OutputParserException)
        assert "Par" in str(info.value.llm_output)  # the raw text is kept
        result = chat.with_structured_output(City, method=method, include_raw=True).invoke("Louvre?")
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], TruncatedOutputError)
    assert result["raw"].response_metadata["finish_reason"] == "length"


def test_a_cut_off_answer_over_ollama_is_the_same_typed_error() -> None:
    pieces = [
        line({"message": {"content": '{"city": "Lo'}, "done": False}),
        line({"message": {"content": ""}, "done": True, "done_reason": "length", "eval_count": 5}),
    ]
    with FaultServer(stream(pieces)) as fault:
        # num_predict=40 holds the shortest City (24 bytes): the request goes, the answer is cut
        structured = ChatOllama(model="m", base_url=fault.base_url, num_predict=40).with_structured_output(
            City
        )
        with pytest.raises(TruncatedOutputError, match="num_predict"):
            structured.invoke("Where is Big Ben?")
        # num_predict=5 cannot hold it: refused before any request, naming the minimum
        too_small = ChatOllama(model="m", base_url=fault.base_url, num_predict=5).with_structured_output(City)
        with pytest.raises(TokenBudgetError, match="at least 24"):
            too_small.invoke("Where is Big Ben?")
