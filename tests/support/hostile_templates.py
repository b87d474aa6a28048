"""Chat-template bombs, and a runner that sets each off in a child process, timed and measured.

:data:`BOMBS` holds the hostile templates of the red-team pass (issue 20) and their kin, each
with the bound it must trip. :func:`run_isolated` renders them in a fresh Python process
(``python -m tests.support.hostile_templates``) through one of :data:`CALLS` (the renderer,
an in-process chat model over a GGUF file, ``prompt_format`` of a server LLM), with a hard
timeout, and reports for each case the error raised, the seconds it took and the peak memory
it added (``VmHWM`` of ``/proc/self/status``, reset before each case), and whether a model
was loaded. A child process, so that a bound that fails hangs or eats memory there, not in
the test run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["BOMBS", "CALLS", "Outcome", "run_isolated", "table"]

ROOT = Path(__file__).resolve().parents[2]

#: name -> (template, the bound it must trip)
BOMBS: dict[str, tuple[str, str]] = {
    "nested range loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "time",
    ),
    "integer power": ("{{ 10 ** (10 ** 10) }}", "size"),
    "append while looping": ("{% for m in messages %}{% set _ = messages.append(m) %}{% endfor %}", "time"),
    "string multiplication": ("{% set s = 'x' * 1000000 %}{{ s * 8000 }}", "size"),
    "string doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "size",
    ),
    "recursive macro": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion"),
    "aliased nesting": (
        "{% set ns = namespace(a=['xxxxxxxx']) %}{% for i in range(64) %}{% set ns.a = [ns.a, ns.a] %}"
        "{% endfor %}{{ ns.a }}",
        "size",
    ),
    "join of repeats": ("{{ (['x' * 100000] * 100000) | join }}", "size"),
    "format width": ("{{ '{:>99999999999}'.format(1) }}", "size"),
    "printf width": ("{{ '%0999999999d' % 1 }}", "size"),
    "padding method": ("{{ 'x'.ljust(10 ** 10) }}", "size"),
    "indent of many lines": ("{{ ('a\\n' * 1000000) | indent(1000) }}", "size"),
    "kept strings": (
        "{% set kept = [] %}{% for i in range(100000) %}{% set _ = kept.append('x' * 4000000) %}{% endfor %}",
        "size",
    ),
    "empty loop with output kept": (
        "{% macro m() %}{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}"
        "{% endfor %}{% endmacro %}{% set _ = m() %}",
        "time",
    ),
}

Outcome = dict[str, Any]
"""``{"error", "limit", "source", "message", "seconds", "peak_mb", "models_loaded"}``."""


def _peak_kb() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))  # type: ignore[union-attr]


def _rss_kb() -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))  # type: ignore[union-attr]


def _render(payload: dict[str, Any]) -> None:
    from langchain_localllm.prompts import ChatTemplateLimits, SourcedTemplate, render_chat_template

    limits = ChatTemplateLimits(**payload.get("limits", {}))
    template = SourcedTemplate(payload["template"], payload["source"])
    render_chat_template(template, [{"role": "user", "content": "hi"}], tools=[], limits=limits)


def _chat_llamacpp(payload: dict[str, Any]) -> None:
    from langchain_localllm import ChatLlamaCpp

    ChatLlamaCpp(model_path=payload["path"], n_ctx=256, max_tokens=4, verbose=False).invoke("hi")


def _chat_gpt4all(payload: dict[str, Any]) -> None:
    from langchain_localllm import ChatGPT4All

    ChatGPT4All(model=payload["path"], n_ctx=256, max_tokens=4, device="cpu").invoke("hi")


def _ollama_prompt_format(payload: dict[str, Any]) -> None:
    from langchain_localllm import Ollama
    from langchain_localllm.prompts import prompt_format

    prompt_format(Ollama(model=payload["model"], base_url=payload["base_url"], timeout=5))


def _llamafile_prompt_format(payload: dict[str, Any]) -> None:
    from langchain_localllm import Llamafile
    from langchain_localllm.prompts import prompt_format

    prompt_format(Llamafile(base_url=payload["base_url"], timeout=5))


#: kind -> the modules the child imports before the first case (imports are not the case's cost).
IMPORTS: dict[str, tuple[str, ...]] = {
    "render": ("langchain_localllm.prompts",),
    "chat_llamacpp": ("langchain_localllm.llamacpp.chat_models", "llama_cpp"),
    "chat_gpt4all": ("langchain_localllm.gpt4all.chat_models", "gpt4all"),
    "ollama_prompt_format": ("langchain_localllm.ollama.llms", "langchain_localllm.prompts"),
    "llamafile_prompt_format": ("langchain_localllm.llamafile.llms", "langchain_localllm.prompts"),
}

#: kind -> what sets a case off in the child process.
CALLS: dict[str, Callable[[dict[str, Any]], None]] = {
    "render": _render,
    "chat_llamacpp": _chat_llamacpp,
    "chat_gpt4all": _chat_gpt4all,
    "ollama_prompt_format": _ollama_prompt_format,
    "llamafile_prompt_format": _llamafile_prompt_format,
}


def _run_case(kind: str, payload: dict[str, Any]) -> Outcome:
    from langchain_localllm._inprocess.model_cache import MODEL_CACHE

    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _rss_kb()
    start = time.monotonic()
    outcome: Outcome = {"error": None, "limit": None, "source": None, "message": ""}
    try:
        CALLS[kind](payload)
    except Exception as error:
        outcome.update(
            error=type(error).__name__,
            limit=getattr(error, "limit", None),
            source=getattr(error, "source", None),
            message=str(error),
        )
    outcome["seconds"] = round(time.monotonic() - start, 3)
    outcome["peak_mb"] = round(max(_peak_kb() - before, 0) / 1024, 1)
    outcome["models_loaded"] = len(MODEL_CACHE)
    MODEL_CACHE.clear()
    return outcome


def run_isolated(kind: str, payloads: dict[str, dict[str, Any]], timeout: float) -> dict[str, Outcome]:
    """Run each payload through ``CALLS[kind]`` in one child process; its outcome by name."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.hostile_templates", kind],
        input=json.dumps(payloads),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    if child.returncode != 0:
        raise AssertionError(f"the child process failed ({child.returncode}):\n{child.stderr[-3000:]}")
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


def table(outcomes: dict[str, Outcome]) -> str:
    """A Markdown table of outcomes: case, error raised, time to raise, peak memory."""
    lines = ["| case | error raised | time to raise | peak memory |", "|---|---|---|---|"]
    for name, outcome in outcomes.items():
        error = f"{outcome['error']} ({outcome['limit']})" if outcome["limit"] else str(outcome["error"])
        lines.append(f"| {name} | {error} | {outcome['seconds']:.2f} s | +{outcome['peak_mb']:.0f} MB |")
    return "\n".join(lines)


def _main() -> None:
    import importlib

    kind = sys.argv[1]
    payloads = json.loads(sys.stdin.read())
    for module in IMPORTS[kind]:
        importlib.import_module(module)
    outcomes = {name: _run_case(kind, payload) for name, payload in payloads.items()}
    print(json.dumps(outcomes))


if __name__ == "__main__":
    _main()
