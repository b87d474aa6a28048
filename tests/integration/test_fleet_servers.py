"""Fleets of real llama-server processes on loopback (tiny model, 1 thread each)."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_localllm import ChatLlamafile, FleetUnavailableError, Llamafile
from langchain_localllm.chains import summarize_chain
from tests.fixtures.models import tiny_model
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama_server


@pytest.fixture
def three_servers(llama_server_binary: Path) -> Iterator[list[LlamaServer]]:
    servers = [
        LlamaServer(
            tiny_model("chatml"),
            binary=llama_server_binary,
            n_ctx=2048,
            threads=1,
            parallel=2,
            extra_args=["--metrics"],
        )
        for _ in range(3)
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def predicted_total(server: LlamaServer) -> int:
    """Tokens the server says it generated (its own Prometheus counter)."""
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(r"^llamacpp:tokens_predicted_total (\d+)", text, re.MULTILINE)
    assert found, text[:300]
    return int(found.group(1))


def test_requests_spread_evenly(three_servers: list[LlamaServer]) -> None:
    llm = Llamafile(base_url=[s.base_url for s in three_servers], n_predict=5, temperature=0)
    for _ in range(9):
        llm.invoke("Once upon a time")
    assert [predicted_total(s) for s in three_servers] == [15, 15, 15]
    assert [(e.state, e.requests, e.errors) for e in llm.fleet_status()] == [("up", 3, 0)] * 3


async def test_chat_requests_spread_evenly_async(three_servers: list[LlamaServer]) -> None:
    import asyncio

    chat = ChatLlamafile(base_url=[s.base_url for s in three_servers], max_tokens=4, temperature=0)
    await chat.aserver_info()  # identified once first, so the 12 calls are dispatched together
    await asyncio.gather(*(chat.ainvoke("Hello") for _ in range(12)))
    assert [predicted_total(s) for s in three_servers] == [16, 16, 16]


class KillDuringRun(BaseCallbackHandler):
    """Kills a server when the ``at``-th model call starts (others are in flight), and records
    how each prompt ended."""

    def __init__(self, server: LlamaServer, at: int, busy: Callable[[], bool]) -> None:
        self.server, self.at, self.busy, self.calls = server, at, busy, 0
        self.killed_at: int | None = None
        self.prompts: dict[UUID, str] = {}
        self.ended: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def on_llm_start(self, serialized: Any, prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:
        self.calls += 1
        self.prompts[run_id] = prompts[0]
        if self.calls >= self.at and self.server.process is not None and self.busy():
            self.server.process.kill()  # while it is answering another map step
            self.server.process.wait()
            self.killed_at = self.calls

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.ended[self.prompts[run_id]] += 1

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.failed[self.prompts[run_id]] += 1


def test_killing_a_server_mid_map_reduce_still_summarises_every_chunk_once(
    three_servers: list[LlamaServer],
) -> None:
    words = ["sun", "moon", "sea", "ship", "city", "river", "stone", "tree", "king", "queen"]
    text = " ".join(f"Line {i} is about the {words[i % len(words)]}." for i in range(1500))
    llm = Llamafile(
        base_url=[s.base_url for s in three_servers], n_predict=96, ignore_eos=True, temperature=0
    )
    chain = summarize_chain(llm, "map_reduce", return_intermediate_steps=True, max_concurrency=2)
    killer = KillDuringRun(three_servers[0], at=4, busy=lambda: llm.fleet_status()[0].in_flight > 0)
    result = chain.invoke(text, config={"callbacks": [killer]})
    assert isinstance(result["output_text"], str)
    # A step the kill cut before its answer began moved to another server unseen; one cut
    # mid-stream raised (on_llm_error) and the chain ran it again. Either way: once each.
    assert killer.killed_at is not None
    assert killer.killed_at < killer.calls
    assert killer.calls > 6  # the kill happened in the middle: many map steps, then combining
    assert set(killer.ended.values()) == {1}  # every prompt (each chunk's) answered exactly once
    assert set(killer.failed) <= set(killer.ended)
    assert sum(killer.ended.values()) == killer.calls - sum(killer.failed.values())
    first, *others = llm.fleet_status()
    assert first.state in ("down", "probing")
    assert first.errors >= 1
    assert all(e.state == "up" for e in others)


def test_loading_server_is_skipped_until_ready(llama_server_binary: Path, gemma_path: Path) -> None:
    """A llama-server still loading its model answers 503: requests go to the other one
    until it is ready, then it takes its share."""
    ready = LlamaServer(gemma_path, binary=llama_server_binary, n_ctx=512, threads=1).start()
    loading = LlamaServer(
        gemma_path, binary=llama_server_binary, n_ctx=512, threads=1, extra_args=["--load-mode", "none"]
    )
    process = subprocess.Popen(loading.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_status(loading.base_url, 503)
        llm = Llamafile(base_url=[loading.base_url, ready.base_url], n_predict=2, temperature=0)
        llm.invoke("Hello")
        assert [e.state for e in llm.fleet_status()] == ["loading", "up"]
        assert "503" in (llm.fleet_status()[0].last_error or "")
        wait_for_status(loading.base_url, 200)
        for _ in range(40):
            llm.invoke("Hello")
            if llm.fleet_status()[0].state == "up":
                break
            time.sleep(0.1)  # let the backoff run out
        assert llm.fleet_status()[0].state == "up"
        assert llm.fleet_status()[0].requests >= 1
    finally:
        process.kill()
        process.wait()
        ready.stop()


def wait_for_status(base_url: str, status: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=2) as response:
                got = response.status
        except urllib.error.HTTPError as error:
            got = error.code
        except OSError:
            got = None
        if got == status:
            return
        time.sleep(0.02)  # polling an external process
    raise AssertionError(f"{base_url}/health never answered {status}")


def test_all_servers_down_is_one_typed_error_naming_them(three_servers: list[LlamaServer]) -> None:
    llm = Llamafile(base_url=[s.base_url for s in three_servers], n_predict=2)
    assert llm.invoke("Hi") is not None
    for server in three_servers:
        server.stop()
    with pytest.raises(FleetUnavailableError) as caught:
        llm.invoke("Hi")
    for server in three_servers:
        assert server.base_url in str(caught.value)
    assert [e.state for e in llm.fleet_status()] == ["down"] * 3


def test_cli_servers_reports_each_endpoint(
    llama_server: LlamaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_localllm.cli.main import main
    from tests.support.fault_server import refused_url

    dead = refused_url()
    assert main(["servers", llama_server.base_url, dead]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["server", "state"]
    up = next(line for line in lines if line.startswith(llama_server.base_url))
    down = next(line for line in lines if line.startswith(dead))
    assert up.split()[1:5] == ["up", "0", "1", "0"]
    assert down.split()[1:5] == ["down", "0", "0", "1"]
    assert "Could not connect" in down
    assert main(["servers", dead]) == 1
