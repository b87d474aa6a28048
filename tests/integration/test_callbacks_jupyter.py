"""The Jupyter handler in a real IPython kernel (nbclient), streaming a real LlamaCpp model."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).parents[2]


def run_cells(*sources: str) -> list[list[dict]]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    resources = {"metadata": {"path": str(REPO)}}
    NotebookClient(nb, timeout=180, kernel_name="python3", resources=resources).execute()
    return [cell.outputs for cell in nb.cells]


def setup_cell(model: Path, **handler_args: object) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in handler_args.items())
    return (
        "from langchain_localllm import LlamaCpp\n"
        "from langchain_localllm.callbacks import JupyterStreamingCallbackHandler\n"
        f"llm = LlamaCpp(model_path={str(model)!r}, max_tokens=24, temperature=0, verbose=False)\n"
        f"handler = JupyterStreamingCallbackHandler({args})\n"
    )


@pytest.fixture(scope="module")
def outputs(tiny_model_path: Path) -> list[list[dict]]:
    return run_cells(
        setup_cell(tiny_model_path, markdown=True, min_interval=0.0, prefix="**Answer:** "),
        "text = llm.invoke('The first man on the moon was', config={'callbacks': [handler]})",
        "print(handler.updates); print(repr(text))",
        "fast = JupyterStreamingCallbackHandler(min_interval=3600)\n"
        "text2 = llm.invoke('Once upon a time', config={'callbacks': [fast]})",
        "print(fast.updates); print(repr(text2))",
    )


def _printed(outputs: list[dict]) -> list[str]:
    return "".join(o["text"] for o in outputs if o["output_type"] == "stream").splitlines()


def test_one_live_output_area_holds_the_whole_answer(outputs: list[list[dict]]) -> None:
    streamed = outputs[1]
    assert len(streamed) == 1  # updated in place, not one output per token
    assert streamed[0]["output_type"] == "display_data"
    updates, text = _printed(outputs[2])
    assert int(updates) > 1  # it really was updated while streaming
    assert streamed[0]["data"]["text/markdown"] == "**Answer:** " + eval(text)


def test_updates_are_throttled_and_the_end_is_always_shown(outputs: list[list[dict]]) -> None:
    streamed = outputs[3]
    assert len(streamed) == 1
    updates, text = _printed(outputs[4])
    assert int(updates) == 2  # the first token, then the final text; nothing in between
    assert streamed[0]["data"] == {"text/plain": eval(text)}
