"""Run calls against hostile loopback servers in a fresh process and report how each ended.

    python -m tests.support.bounded_run

For every case of :data:`CASES`, sync (``invoke``) then async (``ainvoke``): the error
raised (class and message), the seconds until it was raised, how much the process's peak
resident memory grew during the call (the peak is reset before each call through
``/proc/self/clear_refs``) and how much the server sent. One JSON object per line. A fresh
process keeps the memory figures free of whatever a test session allocated before; the
caller bounds the whole run with a timeout (a hang is a failure, not a stuck test run).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from langchain_localllm import Llamafile, Ollama
from langchain_localllm._core.server.llm import ServerLLM
from tests.support.fault_server import FaultServer, Repeat

MiB = 1 << 20

CASES: dict[str, tuple[Callable[[], Repeat], Callable[[str], ServerLLM]]] = {
    # An NDJSON line that never ends, under the default max_event_bytes (16 MiB).
    "endless line": (
        lambda: Repeat(b"x" * 65536, "application/x-ndjson"),
        lambda url: Ollama(model="m", base_url=url, timeout=5),
    ),
    # One server-sent event whose data lines never stop (each line is short), 1 MiB limit.
    "huge event": (
        lambda: Repeat(b"data: " + b"y" * 65536 + b"\n", "text/event-stream"),
        lambda url: Llamafile(base_url=url, timeout=5, max_event_bytes=MiB),
    ),
    # A non-streamed answer that never ends, 1 MiB limit.
    "huge answer": (
        lambda: Repeat(b" " * 65536, "application/json"),
        lambda url: Llamafile(base_url=url, timeout=5, streaming=False, max_response_bytes=MiB),
    ),
    # Keep-alive comments every 0.2 s, well within the 5 s read timeout: only the deadline ends it.
    "trickled stream": (
        lambda: Repeat(b": keep-alive\n\n", "text/event-stream", every=0.2),
        lambda url: Llamafile(base_url=url, timeout=5, stream_deadline=1.0),
    ),
    # A non-streamed answer trickled one space (valid JSON whitespace) every 0.2 s.
    "trickled answer": (
        lambda: Repeat(b" ", "application/json", every=0.2),
        lambda url: Llamafile(base_url=url, timeout=5, streaming=False, stream_deadline=1.0),
    ),
}


def _status_kib(field: str) -> int:
    found = re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    assert found is not None, field
    return int(found.group(1))


def run(name: str, mode: str) -> dict[str, object]:
    """One call of case ``name`` in ``mode`` (``sync``/``async``), measured."""
    make_server, make_llm = CASES[name]
    behaviour = make_server()
    with FaultServer(behaviour) as server:
        llm = make_llm(server.base_url)
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
        before = _status_kib("VmRSS")
        started = time.monotonic()
        error: BaseException | None = None
        try:
            if mode == "sync":
                llm.invoke("prompt")
            else:
                asyncio.run(llm.ainvoke("prompt"))
        except Exception as caught:
            error = caught
        elapsed = time.monotonic() - started
        growth = _status_kib("VmHWM") - before
    return {
        "case": name,
        "mode": mode,
        "error": type(error).__name__ if error else None,
        "message": str(error) if error else "",
        "seconds": round(elapsed, 3),
        "rss_growth_mib": round(growth / 1024, 1),
        "server_sent_mib": round(behaviour.sent / MiB, 1),
        "server_pieces": behaviour.pieces,
    }


def main() -> None:
    for name in CASES:
        for mode in ("sync", "async"):
            print(json.dumps(run(name, mode)), flush=True)


if __name__ == "__main__":
    main()
