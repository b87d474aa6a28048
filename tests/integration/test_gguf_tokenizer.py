"""Token counts read from a GGUF vocabulary equal llama.cpp's, and GPT4All needs no llama.cpp for them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import llama_cpp
import pytest

from langchain_localllm import GPT4All, GPT4AllEmbeddings
from langchain_localllm._core.gguf_tokenizer import gguf_tokenizer
from tests.fixtures.models import tiny_model

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data" / "book_of_ruth_kjv.txt"
TEXTS = [
    "Hello world, this is a test.",
    " leading space and trailing ",
    "Two  spaces\nand a newline\n\n",
    "<s> special </s> tokens",
    "Numbers 1234567 and 3.14159!",
    "Ünïcödé café naïve 日本語 🙂",
    "",
    "tabs\tand\tmore",
    DATA.read_text()[:4000],
]


@pytest.mark.parametrize("spec", [{}, {"size": "small"}], ids=["tiny", "small"])
def test_spm_ids_equal_llama_cpps(spec: dict[str, str]) -> None:
    path = tiny_model("llama2", **spec)
    reference = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    ours = gguf_tokenizer(path)
    for text in TEXTS:
        assert ours.encode(text) == reference.tokenize(text.encode(), add_bos=False, special=True), text[:40]


def test_gpt4all_counts_tokens_without_llama_cpp(tiny_model_path: Path) -> None:
    # Regression: GPT4All.get_num_tokens loaded llama.cpp (MissingDependencyError with only
    # the [gpt4all] extra, so summarize_chain(GPT4All(...)) failed). Here llama_cpp cannot
    # be imported at all.
    text = DATA.read_text()[:2000]
    script = (
        "import sys, json; sys.modules['llama_cpp'] = None\n"
        "from langchain_localllm import GPT4All, GPT4AllEmbeddings\n"
        f"llm = GPT4All(model={str(tiny_model_path)!r})\n"
        f"text = {text!r}\n"
        "counts = [llm.get_num_tokens(text), GPT4AllEmbeddings(model=llm.model).get_num_tokens(text)]\n"
        "print(json.dumps([*counts, sys.modules['llama_cpp'] is not None]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    llm_count, embeddings_count, imported = json.loads(done.stdout)
    reference = llama_cpp.Llama(model_path=str(tiny_model_path), vocab_only=True, verbose=False)
    expected = len(reference.tokenize(text.encode(), add_bos=False, special=True))
    assert llm_count == embeddings_count == expected
    assert not imported
    assert GPT4All(model=str(tiny_model_path)).get_num_tokens(text) == expected
    assert GPT4AllEmbeddings(model=str(tiny_model_path)).get_num_tokens(text) == expected
