"""Every walkthrough in notebooks/ runs top to bottom, against real local servers.

The notebooks read their endpoints the way user code does: ``OLLAMA_HOST`` and
``OLLAMA_MODEL`` for Ollama, ``LLAMAFILE_BASE_URL`` for a llamafile/llama-server,
``LLAMAFILE_FLEET_URLS`` for several of them, ``LOCALLLM_MODEL_PATH`` for a GGUF file
(default: the embedded Gemma 3 270M). This
harness starts the servers that stand in for the user's (the Ollama emulator and a real
llama-server, both serving Gemma 3 270M) and sets those variables for the kernel.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from langchain_localllm.demo_models.gemma import gemma_gguf_path
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaTestServer

ROOT = Path(__file__).parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_walkthroughs() -> None:
    assert len(NOTEBOOKS) >= 4


def test_notebooks_use_no_test_machinery() -> None:
    for path in NOTEBOOKS:
        source = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        assert "tests." not in source, f"{path.name} imports test code; read endpoints from variables"


@pytest.fixture(scope="module")
def user_environment(llama_server_binary: Path) -> Iterator[dict[str, str]]:
    """The servers a user would run, and the variables pointing at them."""
    gemma = gemma_gguf_path()
    with (
        OllamaTestServer({"gemma3:270m": gemma}, n_ctx=2048, n_threads=2) as ollama,
        LlamaServer(gemma, binary=llama_server_binary, n_ctx=4096, parallel=4, threads=2) as llama_server,
        LlamaServer(gemma, binary=llama_server_binary, n_ctx=2048, parallel=2, threads=1) as second,
        LlamaServer(gemma, binary=llama_server_binary, n_ctx=2048, parallel=2, threads=1) as third,
    ):
        yield {
            "OLLAMA_HOST": ollama.base_url,
            "OLLAMA_MODEL": "gemma3:270m",
            "LLAMAFILE_BASE_URL": llama_server.base_url,
            "LLAMAFILE_FLEET_URLS": ",".join(s.base_url for s in (llama_server, second, third)),
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
            # The kernel imports this checkout's package, as the tests do.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }


@pytest.mark.notebook
@pytest.mark.real_model
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, user_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        f"{path.name} has outputs committed; strip them (outputs are not kept in git)"
    )
    for name, value in user_environment.items():
        monkeypatch.setenv(name, value)  # the kernel inherits the environment
    monkeypatch.delenv("LOCALLLM_MODEL_PATH", raising=False)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert any(c.get("outputs") for c in notebook.cells if c.cell_type == "code")
