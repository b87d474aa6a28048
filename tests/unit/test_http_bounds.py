"""Hostile loopback servers: each call ends in its typed error, quickly and in bounded memory.

The calls run in a fresh process (``tests/support/bounded_run.py``) under a timeout, so a
hang fails the test instead of stalling the run, and the process's peak memory is measured
without what the test session allocated before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_SECONDS = 10.0
"""Far above what each case takes (the deadline cases 1 s, the size cases a fraction of it)."""
MAX_RSS_GROWTH_MIB = 64
"""The default event limit is 16 MiB; without a bound the calls would grow without end."""


@pytest.fixture(scope="module")
def outcomes() -> dict[tuple[str, str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.bounded_run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {(row["case"], row["mode"]): row for row in rows}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("case", "limit_mib"),
    [("endless line", 16), ("huge event", 1), ("huge answer", 1)],
)
def test_an_oversized_answer_is_refused_at_its_limit(
    outcomes: dict[tuple[str, str], dict[str, Any]], case: str, limit_mib: int, mode: str
) -> None:
    row = outcomes[(case, mode)]
    assert row["error"] == "MalformedResponseError", row
    setting = "max_response_bytes" if case == "huge answer" else "max_event_bytes"
    assert f"larger than {limit_mib << 20} bytes" in row["message"]
    assert f"{setting}=" in row["message"]  # says how to raise the limit
    assert row["seconds"] < MAX_SECONDS
    assert row["rss_growth_mib"] < MAX_RSS_GROWTH_MIB
    assert row["server_sent_mib"] < limit_mib + 32  # the client stopped reading (socket buffers aside)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("case", ["trickled stream", "trickled answer"])
def test_a_trickling_server_is_stopped_by_the_deadline(
    outcomes: dict[tuple[str, str], dict[str, Any]], case: str, mode: str
) -> None:
    # A byte every 0.2 s never trips the 5 s read timeout; stream_deadline=1.0 ends the call.
    row = outcomes[(case, mode)]
    assert row["error"] == "ServerTimeoutError", row
    assert "stream_deadline=1.0" in row["message"]
    assert 1.0 <= row["seconds"] < MAX_SECONDS
    assert row["server_pieces"] >= 3  # the server kept the call alive past several pings
    assert row["rss_growth_mib"] < MAX_RSS_GROWTH_MIB
