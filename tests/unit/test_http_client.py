"""``HttpClient``, the layer the embeddings classes reuse: JSON calls, streams, typed errors."""

from __future__ import annotations

import pytest

from langchain_localllm._core.http.client import LLAMA_SERVER, OLLAMA, HttpClient
from langchain_localllm.errors import (
    InvalidParameterError,
    MalformedResponseError,
    ModelNotFoundError,
    ServerError,
    ServerTimeoutError,
    ServerUnreachableError,
    StreamInterruptedError,
)
from tests.support.fault_server import (
    FaultServer,
    KeepAliveThenClose,
    close_first,
    hang,
    refused_url,
    respond,
    stream,
)


def test_post_json_sends_headers_and_decodes() -> None:
    with FaultServer(respond(200, b'{"embeddings": [[0.1, 0.2]]}')) as server:
        client = HttpClient(server.base_url + "/", OLLAMA, headers={"X-Test": "1"})
        assert client.post_json("/api/embed", {"model": "m", "input": ["a"]}) == {"embeddings": [[0.1, 0.2]]}
    assert server.requests[0].startswith(b"POST /api/embed HTTP/1.1")
    assert b"X-Test: 1" in server.requests[0]
    assert server.requests[0].endswith(b'{"model": "m", "input": ["a"]}')


async def test_apost_json() -> None:
    with FaultServer(respond(200, b'{"embedding": [1.0]}')) as server:
        client = HttpClient(server.base_url, LLAMA_SERVER)
        assert await client.apost_json("/embedding", {"content": "a"}) == {"embedding": [1.0]}
        await client.aclose()


def test_non_json_answer_is_malformed() -> None:
    with (
        FaultServer(respond(200, b"<html>hello</html>", "text/html")) as server,
        pytest.raises(MalformedResponseError, match="not JSON"),
    ):
        HttpClient(server.base_url, LLAMA_SERVER).get_json("/props")


async def test_404_model_maps_to_model_not_found_async() -> None:
    body = b'{"error":"model \\"x\\" not found, try pulling it first"}'
    with FaultServer(respond(404, body)) as server, pytest.raises(ModelNotFoundError, match="ollama pull x"):
        await HttpClient(server.base_url, OLLAMA).apost_json("/api/embed", {}, model="x")


def test_stream_events_directly() -> None:
    lines = [b'{"status":"pulling manifest"}\n', b'{"status":"success"}\n']
    with FaultServer(stream(lines)) as server:
        events = list(
            HttpClient(server.base_url, OLLAMA).stream_events("/api/pull", {"model": "m"}, "ndjson")
        )
    assert events == [{"status": "pulling manifest"}, {"status": "success"}]


def test_unreachable_names_url_and_how_to_start() -> None:
    url = refused_url()
    with pytest.raises(ServerUnreachableError) as info:
        HttpClient(url, LLAMA_SERVER).get_json("/health")
    assert f"{url}/health" in str(info.value)
    assert "llama-server -m model.gguf" in str(info.value)


def test_bad_base_url() -> None:
    with pytest.raises(InvalidParameterError):
        HttpClient("127.0.0.1:8080", LLAMA_SERVER)


# --- connections the server closed without answering: one resend rule, sync and async ------


async def _get(client: HttpClient, mode: str) -> object:
    return client.get_json("/health") if mode == "sync" else await client.aget_json("/health")


async def _post(client: HttpClient, mode: str) -> object:
    payload = {"model": "m", "prompt": "hi"}
    if mode == "sync":
        return client.post_json("/api/generate", payload)
    return await client.apost_json("/api/generate", payload)


async def _close(client: HttpClient, mode: str) -> None:
    """Close the pooled connections, so the server's threads see the end of them."""
    if mode == "sync":
        client.close()
    else:
        await client.aclose()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_reused_connection_closed_unanswered_is_resent_once(mode: str) -> None:
    behaviour = KeepAliveThenClose()
    with FaultServer(behaviour) as server:
        client = HttpClient(server.base_url, LLAMA_SERVER)
        try:
            assert await _get(client, mode) == {"status": "ok"}  # leaves a kept-alive connection
            assert await _get(client, mode) == {"status": "ok"}  # goes out on it, is dropped, resent
        finally:
            await _close(client, mode)
    assert len(server.requests) == 2  # two connections
    assert (behaviour.answered, behaviour.dropped) == (2, 1)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_fresh_connection_closed_unanswered_is_never_resent(mode: str) -> None:
    # Regression: a server that reads the request and closes without answering got 11
    # identical POSTs (one per pooled connection and one more).
    with FaultServer(close_first(100, respond(200, b"{}"))) as server:
        client = HttpClient(server.base_url, OLLAMA)
        with pytest.raises(StreamInterruptedError, match="closed before the answer"):
            await _post(client, mode)
    assert len(server.requests) == 1
    assert server.requests[0].startswith(b"POST /api/generate ")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_malformed_answer_on_a_reused_connection_is_never_resent(mode: str) -> None:
    behaviour = KeepAliveThenClose(then=b"NOT-HTTP garbage\r\n\r\n")
    with FaultServer(behaviour) as server:
        client = HttpClient(server.base_url, OLLAMA)
        try:
            await _get(client, mode)  # leaves a kept-alive connection
            with pytest.raises(ServerError):
                await _post(client, mode)
        finally:
            await _close(client, mode)
    assert len(server.requests) == 1  # no second connection: nothing was resent
    assert (behaviour.answered, behaviour.dropped) == (1, 1)


# --- the overall deadline -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_silent_server_is_stopped_by_the_deadline_not_the_longer_read_timeout(mode: str) -> None:
    # Each read waits no longer than what is left of stream_deadline (here 0.3 s of 30 s).
    with FaultServer(hang()) as server:
        client = HttpClient(server.base_url, LLAMA_SERVER, read_timeout=30, stream_deadline=0.3)
        with pytest.raises(ServerTimeoutError, match=r"stream_deadline=0\.3") as info:
            await _get(client, mode)
        server.released.set()
    assert info.value.deadline == 0.3
    assert isinstance(info.value, TimeoutError)


def test_an_answer_too_large_names_the_setting_that_raises_the_limit() -> None:
    body = b'{"embedding": [' + b"0.5, " * 1000 + b"0.5]}"
    with FaultServer(respond(200, body)) as server:
        small = HttpClient(server.base_url, LLAMA_SERVER, max_response_bytes=1000)
        with pytest.raises(MalformedResponseError, match="max_response_bytes=") as info:
            small.get_json("/embedding")
        assert info.value.limit == 1000
        assert len(HttpClient(server.base_url, LLAMA_SERVER).get_json("/embedding")["embedding"]) == 1001
