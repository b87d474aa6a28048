"""Faults from a loopback socket server: each one gives its typed error, sync and async.

The tokens streamed before a fault reach the callbacks and are attached to the error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from langchain_localllm import Llamafile, Ollama
from langchain_localllm._core.server.llm import ServerLLM
from langchain_localllm.errors import (
    GenerationError,
    LocalLLMError,
    MalformedResponseError,
    ServerResponseError,
    ServerTimeoutError,
    ServerUnreachableError,
    StreamInterruptedError,
)
from tests.fixtures.runs import LLMEvents as Tokens
from tests.support.fault_server import FaultServer, close_first, hang, refused_url, respond, stall, stream


def ollama_line(text: str) -> bytes:
    return (
        json.dumps(
            {"model": "m", "created_at": "2024-05-24T20:48:36Z", "response": text, "done": False}
        ).encode()
        + b"\n"
    )


def sse_event(text: str) -> bytes:
    return b"data: " + json.dumps({"content": text, "stop": False}).encode() + b"\n\n"


OLLAMA_FINAL = b'{"model":"m","response":"","done":true,"done_reason":"stop"}\n'
SSE_FINAL = b'data: {"content":"","stop":true,"stop_type":"eos"}\n\n'


class Backend:
    def __init__(self, name: str, make: Callable[..., ServerLLM], piece: Callable[[str], bytes]) -> None:
        self.name, self.make, self.piece = name, make, piece
        self.content_type = "application/x-ndjson" if name == "ollama" else "text/event-stream"

    def __repr__(self) -> str:
        return self.name

    def error_piece(self, message: str) -> bytes:
        if self.name == "ollama":
            return json.dumps({"error": message}).encode() + b"\n"
        return (
            b"data: "
            + json.dumps({"error": {"code": 500, "message": message, "type": "server_error"}}).encode()
            + b"\n\n"
        )


BACKENDS = [
    Backend("ollama", lambda url, **kw: Ollama(model="m", base_url=url, **kw), ollama_line),
    Backend("llamafile", lambda url, **kw: Llamafile(base_url=url, **kw), sse_event),
]


async def run(llm: ServerLLM, mode: str, handler: Tokens) -> str:
    config: Any = {"callbacks": [handler]}
    if mode == "sync":
        return llm.invoke("prompt", config=config)
    return await llm.ainvoke("prompt", config=config)


pytestmark = [
    pytest.mark.parametrize("backend", BACKENDS, ids=repr),
    pytest.mark.parametrize("mode", ["sync", "async"]),
]


async def test_refused_connection(backend: Backend, mode: str) -> None:
    url = refused_url()
    with pytest.raises(ServerUnreachableError) as info:
        await run(backend.make(url), mode, Tokens())
    message = str(info.value)
    assert url in message
    assert ("ollama serve" if backend.name == "ollama" else "--server --nobrowser") in message
    assert isinstance(info.value, ConnectionError)
    assert info.value.url.startswith(url)


async def test_500_with_body(backend: Backend, mode: str) -> None:
    with (
        FaultServer(respond(500, b'{"error":"CUDA out of memory"}')) as server,
        pytest.raises(ServerResponseError) as info,
    ):
        await run(backend.make(server.base_url), mode, Tokens())
    assert info.value.status_code == 500
    assert "CUDA out of memory" in info.value.body
    assert "CUDA out of memory" in str(info.value)


async def test_truncated_stream(backend: Backend, mode: str) -> None:
    handler = Tokens()
    pieces = [backend.piece("Hel"), backend.piece("lo")]
    with (
        FaultServer(stream(pieces, backend.content_type, complete=False)) as server,
        pytest.raises(StreamInterruptedError) as info,
    ):
        await run(backend.make(server.base_url), mode, handler)
    assert handler.tokens == ["Hel", "lo"]
    assert info.value.partial_text == "Hello"
    assert isinstance(info.value, ConnectionError)


async def test_stream_that_ends_without_a_final_event(backend: Backend, mode: str) -> None:
    with (
        FaultServer(stream([backend.piece("a")], backend.content_type, complete=True)) as server,
        pytest.raises(StreamInterruptedError, match="ended before the server said") as info,
    ):
        await run(backend.make(server.base_url), mode, Tokens())
    assert info.value.partial_text == "a"


async def test_garbage_line(backend: Backend, mode: str) -> None:
    handler = Tokens()
    pieces = [
        backend.piece("ok"),
        b"data: <<garbage>>\n\n" if backend.name == "llamafile" else b"<<garbage>>\n",
    ]
    with (
        FaultServer(stream(pieces, backend.content_type)) as server,
        pytest.raises(MalformedResponseError) as info,
    ):
        await run(backend.make(server.base_url), mode, handler)
    assert "<<garbage>>" in str(info.value)
    assert info.value.partial_text == "ok"
    assert handler.tokens == ["ok"]


async def test_error_reported_mid_stream(backend: Backend, mode: str) -> None:
    handler = Tokens()
    pieces = [
        backend.piece("one "),
        backend.piece("two"),
        backend.error_piece("runner process has terminated"),
    ]
    with (
        FaultServer(stream(pieces, backend.content_type)) as server,
        pytest.raises(GenerationError) as info,
    ):
        await run(backend.make(server.base_url), mode, handler)
    assert handler.tokens == ["one ", "two"]
    assert info.value.partial_text == "one two"
    assert "runner process has terminated" in str(info.value)


async def test_server_too_slow_to_answer(backend: Backend, mode: str) -> None:
    with FaultServer(hang()) as server, pytest.raises(ServerTimeoutError) as info:
        await run(backend.make(server.base_url, timeout=0.3), mode, Tokens())
    assert isinstance(info.value, TimeoutError)
    assert "timeout" in str(info.value)


async def test_server_stalls_mid_stream(backend: Backend, mode: str) -> None:
    handler = Tokens()
    with (
        FaultServer(stall([backend.piece("slow")], backend.content_type)) as server,
        pytest.raises(ServerTimeoutError) as info,
    ):
        await run(backend.make(server.base_url, timeout=0.3), mode, handler)
    assert info.value.partial_text == "slow"
    assert handler.tokens == ["slow"]


async def test_a_complete_stream_still_works(backend: Backend, mode: str) -> None:
    final = OLLAMA_FINAL if backend.name == "ollama" else SSE_FINAL
    with FaultServer(stream([backend.piece("fine"), final], backend.content_type)) as server:
        text = await run(backend.make(server.base_url), mode, Tokens())
    assert text == "fine"


def test_every_fault_error_is_a_local_llm_error(backend: Backend, mode: str) -> None:
    for cls in (
        ServerUnreachableError,
        ServerTimeoutError,
        StreamInterruptedError,
        MalformedResponseError,
        GenerationError,
    ):
        assert issubclass(cls, LocalLLMError)


async def test_a_server_that_closes_without_answering_gets_the_request_once(
    backend: Backend, mode: str
) -> None:
    # Regression: it received 11 identical POSTs (resent until the pool was exhausted).
    with (
        FaultServer(close_first(100, respond(200, b"{}"))) as server,
        pytest.raises(StreamInterruptedError),
    ):
        await run(backend.make(server.base_url), mode, Tokens())
    assert len(server.requests) == 1
