"""``HttpClient``, the layer the embeddings classes reuse: JSON calls, streams, typed errors."""

from __future__ import annotations

import pytest

from langchain_localllm._core.http import LLAMA_SERVER, OLLAMA, HttpClient
from langchain_localllm.errors import (
    InvalidParameterError,
    MalformedResponseError,
    ModelNotFoundError,
    ServerUnreachableError,
)
from tests.support.fault_server import FaultServer, refused_url, respond, stream


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


# --- connections the server closed without answering -------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_requests_closed_without_answer_are_sent_again_on_a_fresh_connection(mode: str) -> None:
    from tests.support.fault_server import close_first

    with FaultServer(close_first(3, respond(200, b'{"status": "ok"}'))) as server:
        client = HttpClient(server.base_url, LLAMA_SERVER, pool_size=4)
        answer = client.get_json("/health") if mode == "sync" else await client.aget_json("/health")
    assert answer == {"status": "ok"}


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_server_that_never_answers_is_a_typed_error(mode: str) -> None:
    from langchain_localllm.errors import ServerError
    from tests.support.fault_server import close_first

    with FaultServer(close_first(100, respond(200, b"{}"))) as server:
        client = HttpClient(server.base_url, LLAMA_SERVER, pool_size=2)
        with pytest.raises(ServerError):
            if mode == "sync":
                client.get_json("/health")
            else:
                await client.aget_json("/health")
