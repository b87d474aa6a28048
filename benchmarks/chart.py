"""Draw the benchmarks' ratios against their baselines as one chart (the README embeds it).

Reads ``benchmarks/results.json`` (each benchmark's ratio against its named baseline, as its
script measured it) and writes ``docs/benchmarks.png``. Every ratio is drawn as an *advantage*:
the ratio itself where higher is better (tokens/s), its inverse where lower is better (latency,
memory, wall time), on a log scale, so that right of 1 is better than the baseline and left is
worse; the label beside each bar quotes the ratio as measured. Needs matplotlib (the
``notebooks`` extra)::

    python benchmarks/chart.py [--results benchmarks/results.json] [--out docs/benchmarks.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def ratio(result: dict[str, Any]) -> float:
    """Ours / baseline: given, the middle of a measured range, or from the two measurements."""
    if "ratio" in result:
        return float(result["ratio"])
    if "range" in result:
        low, high = result["range"]
        return (float(low) + float(high)) / 2
    return float(result["ours"]) / float(result["theirs"])


def advantage(value: float, better: str) -> float:
    """How many times better than the baseline (above 1: better), whichever way is good."""
    if better not in ("higher", "lower"):
        raise ValueError(f"`better` is 'higher' or 'lower', not {better!r}")
    return value if better == "higher" else 1 / value


def quoted(result: dict[str, Any]) -> str:
    """The ratio as the benchmark reports it, and which way is good."""
    if "range" in result:
        low, high = result["range"]
        text = f"{low:g}-{high:g}x"
    elif "ratio" in result:
        text = f"{result['ratio']:g}x"
    else:
        unit = result.get("unit", "")
        text = f"{result['ours']:,g} vs {result['theirs']:,g} {unit}".rstrip()
    return f"{text} ({result['better']} is better)"


def draw(results: list[dict[str, Any]], out: Path, measured_on: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(reversed(results))  # the first result at the top
    ys = list(range(len(rows)))
    ours = [advantage(ratio(r), r["better"]) for r in rows]
    others = [
        (y, name, advantage(float(v), r["better"]))
        for y, r in zip(ys, rows, strict=True)
        for name, v in r.get("others", {}).items()
    ]
    fig, ax = plt.subplots(figsize=(12, 0.5 * len(rows) + 1.4), facecolor="white")
    ax.hlines(ys, 1, ours, color="tab:blue", linewidth=2, alpha=0.6)
    ax.scatter(ours, ys, s=60, color="tab:blue", zorder=3, label="langchain-localllm")
    markers = {"langchain-community": "D", "round-robin": "X"}
    for name in dict.fromkeys(name for _, name, _ in others):
        points = [(a, y) for y, n, a in others if n == name]
        xs, at = zip(*points, strict=True)
        ax.scatter(xs, at, marker=markers.get(name, "o"), s=40, color="tab:gray", zorder=2, label=name)
    ax.axvline(1, color="black", linewidth=1)
    ax.set_xscale("log")
    values = [*ours, *(a for _, _, a in others)]
    ax.set_xlim(min(values) / 1.5, max(values) * 1.5)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    for y, r in zip(ys, rows, strict=True):
        ax.annotate(quoted(r), (1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=8)
    ax.set_yticks(ys, [f"{r['metric']}\nvs {r['baseline']} ({r['script']})" for r in rows], fontsize=8)
    ax.set_xlabel(
        "advantage over the baseline (x, log scale): the ratio where higher is better, its inverse where "
        "lower is better;\nright of 1 is better than the baseline, left is worse"
    )
    fig.suptitle(
        f"Benchmarks: langchain-localllm against each script's baseline (measured on {measured_on})",
        x=0.01,
        ha="left",
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, metadata={"Software": None})  # no version stamp: same input, same bytes
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.png")
    args = parser.parse_args(argv)
    data = json.loads(args.results.read_text())
    draw(data["results"], args.out, data.get("measured_on", ""))
    print(f"wrote {args.out} ({len(data['results'])} results)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
