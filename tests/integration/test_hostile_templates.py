"""Template bombs from every place a template comes from end in the typed error, bounded.

The red-team pass of issue 20 found five templates that hang or blow up ``ChatLlamaCpp.invoke``,
``ChatGPT4All.invoke`` and ``prompt_format(...)`` before any model loads: two nested
``range(100000)`` loops, a huge integer power, ``messages.append`` while looping over
``messages``, string multiplication to gigabytes, a macro calling itself. Each is set off here
where users meet it, with the default limits, in a child process with a hard timeout: as the
``tokenizer.chat_template`` of a generated GGUF file through the real in-process chat models
(the error comes before the model is loaded), and as the template a loopback Ollama
(``/api/show``) or llama-server (``/props``) reports, through ``prompt_format``. Each must be
a ``ChatTemplateLimitError`` naming the file or the server, within the time limit plus a
margin, adding less than 150 MB of peak memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from langchain_localllm.demo_models import write_tiny_model
from langchain_localllm.prompts.sandbox import DEFAULT_LIMITS
from tests.support.fault_server import FaultServer, respond
from tests.support.hostile_templates import BOMBS, Outcome, run_isolated, table

ISSUE_CASES = ["nested range loops", "integer power", "append while looping", "string multiplication"]
ISSUE_CASES += ["recursive macro"]
DEADLINE = DEFAULT_LIMITS.seconds + 2.0  # the time limit, plus the margin of a loaded machine


def _check(outcomes: dict[str, Outcome], source_of: dict[str, str]) -> None:
    print("\n" + table(outcomes))  # the figures for the issue's closing note (pytest -s)
    for name, outcome in outcomes.items():
        assert (outcome["error"], outcome["limit"]) == ("ChatTemplateLimitError", BOMBS[name][1]), outcome
        assert outcome["source"] == source_of[name]
        assert source_of[name] in outcome["message"]
        assert outcome["seconds"] < DEADLINE, name
        assert outcome["peak_mb"] < 150, name
        assert outcome["models_loaded"] == 0, name


@pytest.fixture(scope="module")
def bomb_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    return {
        name: write_tiny_model(
            folder / f"bomb-{index}.gguf",
            extra_metadata={"tokenizer.chat_template": BOMBS[name][0]},
            chat_format=None,
        )
        for index, name in enumerate(ISSUE_CASES)
    }


@pytest.mark.parametrize("kind", ["chat_llamacpp", "chat_gpt4all"])
def test_a_bomb_in_a_gguf_file_stops_the_chat_model_before_it_loads(
    kind: str, bomb_files: dict[str, Path]
) -> None:
    payloads = {name: {"path": str(path)} for name, path in bomb_files.items()}
    outcomes = run_isolated(kind, payloads, timeout=60 + DEADLINE * len(payloads))
    _check(outcomes, {name: f"GGUF file {path}" for name, path in bomb_files.items()})


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> Iterator[dict[str, FaultServer]]:
    """One loopback server per bomb, answering every request with ``request.param(template)``."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                FaultServer(respond(200, json.dumps(request.param(BOMBS[name][0])).encode()))
            )
            for name in ISSUE_CASES
        }


def _show(template: str) -> dict[str, Any]:
    return {"template": template, "parameters": "", "details": {"family": "llama"}, "model_info": {}}


def _props(template: str) -> dict[str, Any]:
    return {"chat_template": template, "default_generation_settings": {"n_ctx": 4096}, "model_path": "m.gguf"}


@pytest.mark.parametrize("servers", [_show], indirect=True)
def test_a_bomb_in_ollamas_api_show_stops_prompt_format(servers: dict[str, FaultServer]) -> None:
    payloads = {name: {"model": "evil:latest", "base_url": s.base_url} for name, s in servers.items()}
    outcomes = run_isolated("ollama_prompt_format", payloads, timeout=60 + DEADLINE * len(payloads))
    sources = {
        name: f"Ollama /api/show of model 'evil:latest' at {s.base_url}" for name, s in servers.items()
    }
    _check(outcomes, sources)


@pytest.mark.parametrize("servers", [_props], indirect=True)
def test_a_bomb_in_llama_servers_props_stops_prompt_format(servers: dict[str, FaultServer]) -> None:
    payloads = {name: {"base_url": server.base_url} for name, server in servers.items()}
    outcomes = run_isolated("llamafile_prompt_format", payloads, timeout=60 + DEADLINE * len(payloads))
    _check(outcomes, {name: f"llama-server /props at {s.base_url}" for name, s in servers.items()})
