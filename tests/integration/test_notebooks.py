"""Every walkthrough in notebooks/ runs top to bottom against real local servers, and its stored
outputs are the ones it produces now.

The notebooks read their endpoints the way user code does: ``OLLAMA_HOST`` and
``OLLAMA_MODEL`` for Ollama, ``LLAMAFILE_BASE_URL`` for a llamafile/llama-server,
``LLAMAFILE_FLEET_URLS`` for several of them, ``LOCALLLM_MODEL_PATH`` for a GGUF file
(default: the embedded Gemma 3 270M). ``tests.support.notebooks`` starts the servers that stand
in for the user's (the Ollama emulator and real llama-servers, all serving Gemma 3 270M), executes
the notebooks and compares outputs; ``python -m tests.support.notebooks --write`` regenerates them.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.support.fault_server import refused_url
from tests.support.notebooks import (
    BATCH_DEPENDENT,
    MACHINE_DEPENDENT,
    NEEDS_SERVER,
    REGENERATE,
    canonical,
    differences,
    errors,
    execute,
    notebook_paths,
    user_servers,
)

NOTEBOOKS = notebook_paths()


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in notebook.cells if c.cell_type == "code"]


def test_there_are_walkthroughs() -> None:
    assert len(NOTEBOOKS) >= 4


def test_notebooks_use_no_test_machinery() -> None:
    for path in NOTEBOOKS:
        source = "\n".join(cell.source for cell in _read(path).cells)
        assert "tests." not in source, f"{path.name} imports test code; read endpoints from variables"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_opens_by_saying_what_it_needs(path: Path) -> None:
    first = _read(path).cells[0]
    assert first.cell_type == "markdown"
    assert "**Needs:**" in first.source, f"{path.name}: the first cell says what the notebook needs"
    assert "pip install" in first.source, f"{path.name}: ... and how to install it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_executed_without_volatile_metadata(path: Path) -> None:
    stored = _read(path)
    code = _code(stored)
    assert all(c.execution_count for c in code) and any(c.get("outputs") for c in code), (
        f"{path.name} is stored unexecuted; store it with its outputs: {REGENERATE} {path.stem}"
    )
    assert errors(stored) == []
    assert canonical(copy.deepcopy(stored)) == stored, (
        f"{path.name} carries volatile metadata (timestamps, kernel versions); {REGENERATE} {path.stem}"
    )


# --- the comparison itself ---------------------------------------------------------------------


def _notebook(text: str, *, tags: tuple[str, ...] = (), image: bool = False) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("print(timings)", metadata={"tags": list(tags)} if tags else {})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    if image:
        png = nbformat.v4.new_output(
            "display_data", data={"image/png": "iVBORw0K" + text, "text/plain": "<Figure>"}
        )
        cell.outputs.append(png)
    return nbformat.v4.new_notebook(cells=[cell])


def test_text_outputs_must_match_exactly_and_the_message_shows_the_line_and_the_command() -> None:
    stored = _notebook("first line\nanswer: 42 tokens\n")
    assert differences(stored, _notebook("first line\nanswer: 42 tokens\n"), "nb") == []
    [message] = differences(stored, _notebook("first line\nanswer: 43 tokens\n"), "nb")
    assert "code cell 1" in message
    assert "output line 3" in message  # the first line is the stream's name
    assert "'answer: 42 tokens'" in message
    assert "'answer: 43 tokens'" in message
    assert f"{REGENERATE} nb" in message


def test_machine_dependent_cells_are_compared_by_shape() -> None:
    tags = (MACHINE_DEPENDENT,)
    stored = _notebook("time to first token =   21.42 ms\n63 runs, 203.15 tokens/s\n", tags=tags, image=True)
    same_shape = _notebook("time to first token =  121.4 ms\n7 runs, 1e3 tokens/s\n", tags=tags, image=True)
    assert differences(stored, same_shape, "nb") == []
    other_words = _notebook(
        "time to first byte = 21.42 ms\n63 runs, 203.15 tokens/s\n", tags=tags, image=True
    )
    assert differences(stored, other_words, "nb") != []
    fewer_lines = _notebook("time to first token = 21.42 ms\n", tags=tags, image=True)
    assert differences(stored, fewer_lines, "nb") != []
    no_picture = _notebook("time to first token = 21.42 ms\n63 runs, 203.15 tokens/s\n", tags=tags)
    [message] = differences(stored, no_picture, "nb")
    assert "by shape" in message
    assert "image/png" in message


def test_batch_dependent_cells_are_compared_by_kind() -> None:
    tags = (BATCH_DEPENDENT,)
    stored = _notebook(" The story of Ruth is about a widow.\n", tags=tags)
    assert (
        differences(stored, _notebook(" The story of Ruth is about a servant.\n\nAnd more.", tags=tags), "nb")
        == []
    )
    [message] = differences(stored, _notebook("\n", tags=tags), "nb")
    assert "by kind" in message
    assert differences(stored, _notebook("", tags=tags, image=True), "nb") != []


def test_volatile_values_are_replaced_before_comparing() -> None:
    stored = _notebook("{'id': 'call_d44e8a1fa648487d8417e830'} at http://127.0.0.1:41234 in /tmp/x\n")
    fresh = _notebook(
        f"{{'id': 'call_182005f4ddc34c8087eaba34'}} at http://127.0.0.1:5123 in {tempfile.gettempdir()}/x\n"
    )
    assert differences(stored, fresh, "nb") == []
    assert differences(
        stored, _notebook("{'id': 'call_d44e8a1fa648487d8417e830'} at http://10.0.0.1:41234\n"), "nb"
    )


def test_a_changed_picture_matches_but_a_missing_one_does_not() -> None:
    stored = _notebook("scores\n", image=True)
    redrawn = _notebook("scores\n", image=True)
    redrawn.cells[0].outputs[1].data["image/png"] = "iVBORw0Kother"
    assert differences(stored, redrawn, "nb") == []
    assert differences(stored, _notebook("scores\n"), "nb") != []


def test_streams_are_compared_as_displayed() -> None:
    stored = canonical(_notebook("bar 100%\n"))
    fresh = _notebook("bar 0%\rbar 50%\rbar 100%\n")
    fresh.cells[0].outputs.insert(0, nbformat.v4.new_output("stream", name="stdout", text=""))
    assert differences(stored, canonical(fresh), "nb") == []


# --- executing the notebooks -------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(llama_server_binary: Path) -> Iterator[dict[str, str]]:
    """The servers a user would run, and the variables pointing at them."""
    with user_servers(llama_server_binary) as variables:
        yield variables


@pytest.mark.notebook
@pytest.mark.real_model
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_outputs_are_the_stored_ones(path: Path, servers: dict[str, str]) -> None:
    stored = _read(path)
    fresh = execute(stored, servers, allow_errors=True)
    assert errors(fresh) == []
    problems = differences(canonical(stored), fresh, path.stem)
    assert not problems, "\n\n".join(problems)


SERVER_NOTEBOOKS = [
    p for p in NOTEBOOKS if any(NEEDS_SERVER in c.metadata.get("tags", []) for c in _code(_read(p)))
]


def test_the_server_cells_are_tagged() -> None:
    assert len(SERVER_NOTEBOOKS) >= 3


@pytest.mark.notebook
@pytest.mark.parametrize("path", SERVER_NOTEBOOKS, ids=[p.stem for p in SERVER_NOTEBOOKS])
def test_a_cell_whose_server_is_down_says_so_in_one_line(path: Path) -> None:
    """The notebook's first code cell, then each cell tagged needs-server, with every server
    variable pointing at a port where nothing listens: one line each, no traceback."""
    notebook = _read(path)
    code = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    tagged = [i for i in code if NEEDS_SERVER in notebook.cells[i].metadata.get("tags", [])]
    down = refused_url()
    nowhere = {
        "OLLAMA_HOST": down,
        "OLLAMA_MODEL": "gemma3:270m",
        "LLAMAFILE_BASE_URL": down,
        "LLAMAFILE_FLEET_URLS": ",".join(refused_url() for _ in range(3)),
    }
    run = execute(notebook, nowhere, cells=[code[0], *tagged], allow_errors=True)
    assert errors(run) == []
    for cell in run.cells[1:]:
        outputs = [(o.output_type, o.get("name"), o.get("text", "")) for o in cell.outputs]
        assert len(outputs) == 1, f"{path.name}: {cell.source[:60]!r} printed {outputs}"
        kind, name, text = outputs[0]
        assert (kind, name) == ("stream", "stdout")
        assert len(text.strip().splitlines()) == 1, f"{path.name}: {cell.source[:60]!r} printed {text!r}"
        assert "127.0.0.1:" in text, f"{path.name}: the line names the server: {text!r}"
