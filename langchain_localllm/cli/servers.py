"""``localllm servers``: the state of each server of a fleet (health-checked now)."""

from __future__ import annotations

import argparse

from langchain_localllm.cli.console import out

#: --kind -> (class that speaks the server's API, default URL)
KINDS = {
    "llamafile": ("langchain_localllm.llamafile.llms:Llamafile", "http://localhost:8080"),
    "ollama": ("langchain_localllm.ollama.llms:Ollama", "http://localhost:11434"),
    "openai": ("langchain_localllm.openai_compatible.llms:OpenAICompatible", "http://localhost:8000"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``servers`` command."""
    help_text = "health-check each server of a fleet: state, requests in flight, errors, latency"
    p = sub.add_parser("servers", help=help_text, description=help_text)
    p.add_argument("urls", metavar="URL", nargs="*", help="server root URLs (default: the kind's local one)")
    p.add_argument(
        "--kind", choices=sorted(KINDS), default="llamafile", help="server API (default: llamafile)"
    )
    p.set_defaults(func=cmd_servers)


def cmd_servers(args: argparse.Namespace) -> int:
    """Probe every URL once and print one line per server; exit status 1 if none is up."""
    import importlib

    target, default = KINDS[args.kind]
    module, name = target.split(":")
    cls = getattr(importlib.import_module(module), name)
    urls = list(args.urls) or [default]
    extra = {"model": "-"} if args.kind == "ollama" else {}
    model = cls(base_url=urls if len(urls) > 1 else urls[0], **extra)
    rows = model.fleet_status(probe=True)
    width = max(len(row.url) for row in rows)
    out(f"{'server':<{width}}  {'state':<8} {'in flight':>9} {'requests':>8} {'errors':>6} {'latency':>10}\n")
    for row in rows:
        latency = f"{row.latency_ms:.1f} ms" if row.latency_ms is not None else "-"
        counts = f"{row.in_flight:>9} {row.requests:>8} {row.errors:>6}"
        line = f"{row.url:<{width}}  {row.state:<8} {counts} {latency:>10}"
        out(line + (f"  {row.last_error}" if row.last_error else "") + "\n")
    return 0 if any(row.state == "up" for row in rows) else 1
