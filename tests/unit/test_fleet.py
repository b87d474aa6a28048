"""Fleets (``base_url=[...]``) over loopback servers that answer, refuse, fail or stall on purpose."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

import langchain_localllm._core.http.fleet as fleet_module
from langchain_localllm import Llamafile, LlamafileEmbeddings
from langchain_localllm._core.http.errors import LLAMA_SERVER
from langchain_localllm._core.http.fleet import FleetClient
from langchain_localllm.errors import (
    FleetUnavailableError,
    InvalidParameterError,
    ServerUnreachableError,
    StreamInterruptedError,
)
from tests.support.fault_server import FaultServer, refused_url, respond, serial, stall, stream, switch

OK = respond(200, b'{"ok": true}')
LOADING = respond(503, b'{"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}')


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet_module, "BACKOFF_START", 0.05)


def servers(*behaviours: object) -> Iterator[list[FaultServer]]:
    with ExitStack() as stack:
        yield [stack.enter_context(FaultServer(b)) for b in behaviours]  # type: ignore[arg-type]


def test_sequential_requests_rotate_evenly_over_the_endpoints() -> None:
    for group in servers(OK, OK, OK):
        client = FleetClient([s.base_url for s in group], LLAMA_SERVER)
        for _ in range(30):
            assert client.get_json("/health") == {"ok": True}
        assert [len(s.requests) for s in group] == [10, 10, 10]
        assert [e.requests for e in client.fleet.status()] == [10, 10, 10]


def test_weights_share_the_load_in_proportion() -> None:
    for group in servers(OK, OK):
        client = FleetClient([s.base_url for s in group], LLAMA_SERVER, weights=[3.0, 1.0])
        for _ in range(40):
            client.get_json("/health")
        assert [len(s.requests) for s in group] == [30, 10]


def test_refused_endpoint_is_marked_down_and_skipped_while_backing_off() -> None:
    dead = refused_url()
    for group in servers(OK):
        client = FleetClient([dead, group[0].base_url], LLAMA_SERVER)
        for _ in range(5):
            assert client.get_json("/health") == {"ok": True}
        assert len(group[0].requests) == 5
        down, up = client.fleet.status()
        assert (down.state, down.errors, down.in_flight) == ("down", 1, 0)
        assert "Could not connect" in (down.last_error or "")
        assert down.retry_in_s is not None
        assert (up.state, up.requests, up.errors) == ("up", 5, 0)
        assert up.latency_ms is not None


def test_loading_server_is_skipped_then_probed_back_in(fast_backoff: None) -> None:
    for group in servers(switch(2, LOADING, OK), OK):
        client = FleetClient([s.base_url for s in group], LLAMA_SERVER)
        assert client.get_json("/health") == {"ok": True}  # 503 from the first, answered by the second
        assert client.fleet.status()[0].state == "loading"
        client.get_json("/health")
        assert len(group[0].requests) == 1  # still skipped while backing off
        for _ in range(100):  # the second probe gets 503 again, the third 200
            client.get_json("/health")
            if client.fleet.status()[0].state == "up":
                break
            threading.Event().wait(0.02)  # let the backoff run out
        status = client.fleet.status()[0]
        assert (status.state, status.errors) == ("up", 2)
        assert len(group[0].requests) == 3


def test_all_endpoints_down_gives_one_error_naming_each() -> None:
    urls = [refused_url(), refused_url()]
    for group in servers(LOADING):
        client = FleetClient([*urls, group[0].base_url], LLAMA_SERVER)
        with pytest.raises(FleetUnavailableError) as caught:
            client.get_json("/health")
        error = caught.value
        assert isinstance(error, ServerUnreachableError)
        for url in [*urls, group[0].base_url]:
            assert url in str(error)
        assert "loading" in str(error)
        assert len(error.endpoints) == 3
        # a second request tries them again (each is the one due soonest) rather than failing unasked
        with pytest.raises(FleetUnavailableError):
            client.get_json("/health")
        assert len(group[0].requests) == 2


def test_client_errors_are_not_sent_elsewhere() -> None:
    bad = respond(400, b'{"error": {"code": 400, "message": "bad grammar", "type": "invalid_request_error"}}')
    for group in servers(bad, bad):
        client = FleetClient([s.base_url for s in group], LLAMA_SERVER)
        with pytest.raises(InvalidParameterError):
            client.post_json("/completion", {"prompt": "x"})
        assert sorted(len(s.requests) for s in group) == [0, 1]
        assert all(e.state == "up" for e in client.fleet.status())


def test_stream_cut_after_it_began_raises_and_is_not_sent_again() -> None:
    first = b'data: {"content": "Hello", "stop": false}\n\n'
    for group in servers(stream([first], "text/event-stream", complete=False), OK):
        client = FleetClient([s.base_url for s in group], LLAMA_SERVER)
        received = []
        with pytest.raises(StreamInterruptedError):
            for event in client.stream_events("/completion", {"stream": True}, "sse"):
                received.append(event)
        assert received == [{"content": "Hello", "stop": False}]
        assert len(group[1].requests) == 0  # never a silent second generation


def test_stream_refused_before_its_first_byte_moves_to_another_endpoint() -> None:
    events = [b'data: {"content": "Hi", "stop": false}\n\n', b'data: {"content": "!", "stop": true}\n\n']
    for group in servers(LOADING, stream(events, "text/event-stream")):
        client = FleetClient([refused_url(), *(s.base_url for s in group)], LLAMA_SERVER)
        for _ in range(3):
            got = [e["content"] for e in client.stream_events("/completion", {"stream": True}, "sse")]
            assert got == ["Hi", "!"]
        assert [e.state for e in client.fleet.status()] == ["down", "loading", "up"]


def test_concurrency_limit_per_endpoint_is_never_exceeded() -> None:
    slow = [serial(0.05, OK), serial(0.05, OK)]
    for group in servers(*slow):
        client = FleetClient([s.base_url for s in group], LLAMA_SERVER, max_concurrency=[1, 1])
        threads = [threading.Thread(target=client.get_json, args=("/health",)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [b.active_peak for b in slow] == [1, 1]  # type: ignore[attr-defined]
        assert [len(s.requests) for s in group] == [4, 4]
        assert client.fleet.capacity(4) == 2


async def test_async_requests_wait_for_a_free_slot_and_spread() -> None:
    slow = [serial(0.03, OK) for _ in range(3)]
    for group in servers(*slow):
        client = FleetClient([s.base_url for s in group], LLAMA_SERVER, max_concurrency=[1, 1, 1])
        answers = await asyncio.gather(*(client.aget_json("/health") for _ in range(9)))
        assert answers == [{"ok": True}] * 9
        assert [len(s.requests) for s in group] == [3, 3, 3]
        assert [b.active_peak for b in slow] == [1, 1, 1]  # type: ignore[attr-defined]
        await client.aclose()


async def test_async_failover_and_all_down() -> None:
    for group in servers(OK):
        client = FleetClient([refused_url(), group[0].base_url], LLAMA_SERVER)
        assert await client.aget_json("/health") == {"ok": True}
        assert client.fleet.status()[0].state == "down"
        await client.aclose()
    lonely = FleetClient([refused_url(), refused_url()], LLAMA_SERVER)
    with pytest.raises(FleetUnavailableError):
        await lonely.aget_json("/health")


def test_classes_accept_a_list_of_urls_and_report_fleet_status() -> None:
    answer = {"content": "Paris", "stop": True, "stop_type": "eos", "tokens_predicted": 1}
    for group in servers(
        respond(200, json.dumps(answer).encode()), respond(200, json.dumps(answer).encode())
    ):
        llm = Llamafile(base_url=[refused_url(), *(s.base_url for s in group)], streaming=False)
        assert [llm.invoke("The capital of France is") for _ in range(4)] == ["Paris"] * 4
        states = [(e.state, e.requests) for e in llm.fleet_status()]
        assert states == [("down", 0), ("up", 2), ("up", 2)]
        assert llm.fleet_capacity(4) == 12


def test_embeddings_split_batches_over_the_fleet() -> None:
    body = json.dumps([{"index": 0, "embedding": [[0.1, 0.2]]}]).encode()
    slow = [serial(0.02, respond(200, body)) for _ in range(3)]
    for group in servers(*slow):
        emb = LlamafileEmbeddings(base_url=[s.base_url for s in group], batch_size=1, normalize=False)
        assert emb.embed_documents([f"text {i}" for i in range(6)]) == [[0.1, 0.2]] * 6
        assert [len(s.requests) for s in group] == [2, 2, 2]


def test_bad_fleet_settings_are_typed_errors() -> None:
    with pytest.raises(InvalidParameterError, match="empty list"):
        Llamafile(base_url=[])
    with pytest.raises(InvalidParameterError, match="twice"):
        Llamafile(base_url=["http://127.0.0.1:1", "http://127.0.0.1:1/"])
    llm = Llamafile(base_url=["http://127.0.0.1:1", "http://127.0.0.1:2"], endpoint_weights=[1.0])
    with pytest.raises(InvalidParameterError, match="one value per URL"):
        _ = llm.client


def test_a_stalled_stream_does_not_count_as_unanswered() -> None:
    for group in servers(stall([b'data: {"content": "a", "stop": false}\n\n'], "text/event-stream"), OK):
        client = FleetClient([s.base_url for s in group], LLAMA_SERVER, read_timeout=0.3)
        with pytest.raises(Exception, match="sent nothing"):
            list(client.stream_events("/completion", {"stream": True}, "sse"))
        assert len(group[1].requests) == 0
        group[0].released.set()


def test_probe_sends_every_endpoint_one_health_check() -> None:
    for group in servers(OK, LOADING):
        llm = Llamafile(base_url=[refused_url(), *(s.base_url for s in group)])
        assert [(e.state, e.errors) for e in llm.fleet_status(probe=True)] == [
            ("down", 1),
            ("up", 0),
            ("loading", 1),
        ]
        assert [len(s.requests) for s in group] == [1, 1]
        assert all(s.requests[0].startswith(b"GET /health ") for s in group)


def test_one_server_is_a_fleet_of_one_that_raises_its_own_error() -> None:
    # One client type serves one endpoint or many: with one there is nowhere to move, so its
    # own error is raised (not FleetUnavailableError) and a backoff never holds a call back.
    url = refused_url()
    llm = Llamafile(base_url=url, streaming=False)
    for _ in range(2):
        with pytest.raises(ServerUnreachableError) as info:
            llm.invoke("x")
        assert not isinstance(info.value, FleetUnavailableError)
        assert info.value.unanswered
    (status,) = llm.fleet_status()
    assert (status.url, status.state, status.errors) == (url, "down", 2)
    for group in servers(respond(200, b'{"content": "Hi", "stop": true, "stop_type": "eos"}')):
        alone = Llamafile(base_url=group[0].base_url, streaming=False)
        assert [alone.invoke("x") for _ in range(3)] == ["Hi"] * 3
        assert [(e.state, e.requests) for e in alone.fleet_status()] == [("up", 3)]


def test_a_stream_cut_after_its_status_line_is_not_sent_again() -> None:
    # The server answered (headers, then nothing): it may have started generating.
    for group in servers(stream([], "text/event-stream", complete=False), OK):
        client = FleetClient([s.base_url for s in group], LLAMA_SERVER)
        with pytest.raises(StreamInterruptedError) as info:
            list(client.stream_events("/completion", {"stream": True}, "sse"))
        assert not info.value.unanswered
        assert len(group[1].requests) == 0
