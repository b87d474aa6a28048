"""Run one measurement with the package imported from two source trees, side by side.

A benchmark with ``--baseline-tree PATH`` (e.g. a checkout of the base commit) measures the
same thing with ``langchain_localllm`` imported from this repository and from ``PATH``: one
worker process per tree (``PYTHONPATH=<tree>``, checked at start), both running *this*
repository's measurement code, called in interleaved rounds (the order alternates every
round) so that a machine getting slower or faster affects both alike. :func:`print_table`
prints the medians and the ratio current / baseline.

A measurement is a top-level function of the benchmark script taking JSON arguments and
returning ``{metric: value}``; the worker imports the script by path and keeps it (and
whatever it caches: clients, pools) between rounds.

    results = side_by_side(Path(__file__), "measure", [{"tokens": 200}], baseline, rounds=7)
    print_table("client cost", results, lower_is_better={"us/token"})
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

Results = dict[str, dict[str, list[float]]]
"""``{tree label: {metric: [value per round]}}``."""


class Worker:
    """A process that imports the package from ``tree`` and runs measurements on request."""

    def __init__(self, label: str, tree: Path, script: Path) -> None:
        self.label = label
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(script), str(tree)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tree,
        )
        self.package = self._read()["package"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.label} worker exited (see its stderr above)")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.label} worker: {answer['error']}")
        return answer

    def run(self, function: str, arguments: dict[str, Any]) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"function": function, "arguments": arguments}) + "\n")
        self.process.stdin.flush()
        return self._read()["result"]  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def side_by_side(
    script: Path, function: str, calls: Sequence[dict[str, Any]], baseline: Path, rounds: int
) -> Results:
    """``function(**arguments)`` of ``script`` for each of ``calls`` per round, in both trees
    (after one warm-up call each, not counted)."""
    workers = [Worker("current", REPO, script), Worker("baseline", baseline.resolve(), script)]
    for worker in workers:
        print(f"   {worker.label:<9} package: {worker.package}", flush=True)
    results: Results = {worker.label: {} for worker in workers}
    try:
        for arguments in calls:
            for worker in workers:
                worker.run(function, arguments)
        for round_index in range(rounds):
            order = workers if round_index % 2 == 0 else workers[::-1]
            for arguments in calls:
                for worker in order:
                    for metric, value in worker.run(function, arguments).items():
                        results[worker.label].setdefault(metric, []).append(value)
    finally:
        for worker in workers:
            worker.close()
    return results


def print_table(title: str, results: Results, lower_is_better: Collection[str] = ()) -> None:
    """Medians per tree and the ratio current / baseline, one metric per row."""
    current, baseline = results["current"], results["baseline"]
    print(f"\n{title}\n")
    header = f"   {'metric':<40}{'current':>12}{'baseline':>12}{'ratio':>8}"
    print(header)
    print("   " + "-" * (len(header) - 3))
    for metric, values in current.items():
        mine = statistics.median(values)
        theirs = statistics.median(baseline.get(metric) or [float("nan")])
        ratio = mine / theirs if theirs else float("nan")
        better = "lower" if any(word in metric for word in lower_is_better) else "higher"
        print(f"   {metric:<40}{mine:>12.2f}{theirs:>12.2f}{ratio:>8.3f}  ({better} is better)")
    print(f"   ratio = current / baseline; medians of {len(next(iter(current.values()), []))} rounds")


def add_argument(parser: Any) -> None:
    """The ``--baseline-tree`` option of a benchmark script."""
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="also run with langchain_localllm imported from this source tree and print both "
        "side by side (e.g. a checkout of the base commit)",
    )


def _worker(script: Path, tree: Path) -> None:
    protocol, sys.stdout = sys.stdout, sys.stderr  # what the measurement prints goes to stderr

    def say(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    import langchain_localllm

    package = Path(langchain_localllm.__file__).resolve()
    if tree.resolve() not in package.parents:
        say({"error": f"langchain_localllm was imported from {package}, not from {tree}"})
        return
    spec = importlib.util.spec_from_file_location("_measured", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    say({"package": str(package.parent)})
    for line in sys.stdin:
        request = json.loads(line)
        say({"result": getattr(module, request["function"])(**request["arguments"])})


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    sys.path.remove(str(Path(__file__).resolve().parent))  # benchmarks/ itself: not a package root
    _worker(Path(sys.argv[2]), Path(sys.argv[3]))
