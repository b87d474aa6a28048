"""extraction_chain and `localllm extract` on real runtimes (random-weight models).

The grammar guarantees the records validate whatever the weights; a document the model
cannot take (longer than its context window) fails alone, reported, the others kept.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from pydantic import BaseModel, Field

from langchain_localllm import LlamaCpp
from langchain_localllm.chains import ExtractionResult, extraction_chain
from tests.fixtures.models import tiny_model
from tests.integration.test_cli import localllm


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(max_length=12)
    age: int | None = Field(default=None, ge=0, le=120)
    role: str = Field(json_schema_extra={"enum": ["author", "editor", "reader"]})


DOCS = [
    "Ann (34) wrote the book.",
    "Bob edited it.",
    "Nobody else.",
    "Cy read it twice.",
]


class Concurrency(BaseCallbackHandler):
    """Largest number of model calls running at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.running -= 1


@pytest.fixture(scope="module")
def llm() -> LlamaCpp:
    return LlamaCpp(model_path=str(tiny_model("chatml")), n_ctx=512, max_tokens=200, temperature=1.0, seed=3)


def _check(results: list[ExtractionResult], many: bool) -> None:
    assert [r.index for r in results] == list(range(len(results)))
    for result in results:
        assert result.ok, result.error
        assert all(isinstance(r, Person) for r in result.records)
        assert many or len(result.records) == 1


@pytest.mark.parametrize("many", [False, True])
def test_every_document_gives_validated_records(llm: LlamaCpp, many: bool) -> None:
    counter = Concurrency()
    chain = extraction_chain(llm, Person, many=many, max_concurrency=2)
    results = chain.invoke(DOCS, config={"callbacks": [counter]})
    _check(results, many)
    assert counter.peak <= 2


async def test_async_run_gives_the_same_shape(llm: LlamaCpp) -> None:
    results = await extraction_chain(llm, Person, many=True, max_concurrency=3).ainvoke(DOCS)
    _check(results, many=True)


def test_a_failing_document_is_reported_and_the_others_kept(llm: LlamaCpp) -> None:
    too_long = "word " * 2000  # longer than the 512-token window
    results = extraction_chain(llm, Person).invoke([DOCS[0], too_long, DOCS[1]])
    assert [r.ok for r in results] == [True, False, True]
    assert "ContextLengthExceeded" in (results[1].error or "")
    assert len(results[0].records) == len(results[2].records) == 1


def test_cli_writes_json_lines_and_reports_failures(tmp_path: Path) -> None:
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(Person.model_json_schema()))
    files = []
    for i, text in enumerate([*DOCS[:2], "word " * 3000]):
        path = tmp_path / f"doc{i}.txt"
        path.write_text(text)
        files.append(str(path))
    home = tmp_path / "home"
    home.mkdir()
    model = ("--model", str(tiny_model("chatml")), "--max-tokens", "200", "--n-ctx", "512")
    result = localllm("extract", "--schema", str(schema), "--many", *model, *files, home=home)
    assert result.returncode == 1, result.stderr  # one file failed
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["source"] for line in lines] == files
    assert [line["error"] is None for line in lines] == [True, True, False]
    for line in lines[:2]:
        for record in line["records"]:
            Person.model_validate(record)
    assert "doc2.txt" in result.stderr


def test_cli_bad_schema_is_a_one_line_error(tmp_path: Path) -> None:
    schema = tmp_path / "bad.json"
    schema.write_text("{not json")
    home = tmp_path / "home"
    home.mkdir()
    result = localllm("extract", "--schema", str(schema), "x.txt", home=home)
    assert result.returncode == 1
    assert "not valid JSON" in result.stderr and "Traceback" not in result.stderr
