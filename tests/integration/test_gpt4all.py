"""GPT4All against the real gpt4all runtime, on generated GGUF models."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import gpt4all
import pytest

from langchain_localllm import (
    ContextLengthExceededError,
    GPT4All,
    InvalidModelFileError,
    InvalidParameterError,
    ModelFileNotFoundError,
    UnsupportedParameterWarning,
)
from langchain_localllm._inprocess.model_cache import MODEL_CACHE
from tests.fixtures.runs import LLMEvents as Recorder

PROMPT = "The first man on the moon was"
# One thread: the tiny model is faster that way and does not fight other processes for cores.
THREADS = 1
SAMPLING = {"temp": 0.0, "top_k": 40, "top_p": 0.4, "min_p": 0.0, "repeat_penalty": 1.18, "repeat_last_n": 64}


@pytest.fixture(scope="module")
def raw(tiny_model_path: Path) -> Any:
    return gpt4all.GPT4All(
        tiny_model_path.name,
        model_path=str(tiny_model_path.parent),
        allow_download=False,
        device="cpu",
        n_threads=THREADS,
    )


@pytest.fixture
def llm(tiny_model_path: Path) -> GPT4All:
    return GPT4All(model=str(tiny_model_path), max_tokens=16, n_threads=THREADS, **SAMPLING)


def test_invoke_equals_raw_gpt4all(llm: GPT4All, raw: Any) -> None:
    expected = raw.generate(PROMPT, max_tokens=16, n_batch=128, **SAMPLING)
    assert expected
    assert llm.invoke(PROMPT) == expected


def test_model_name_inside_model_path(tiny_model_path: Path, raw: Any) -> None:
    llm = GPT4All(
        model=tiny_model_path.name,
        model_path=str(tiny_model_path.parent),
        max_tokens=8,
        n_threads=THREADS,
        **SAMPLING,
    )
    assert llm.invoke(PROMPT) == raw.generate(PROMPT, max_tokens=8, n_batch=128, **SAMPLING)


def test_stream_is_token_by_token_and_joins_to_invoke(llm: GPT4All) -> None:
    recorder = Recorder()
    chunks = [c for c in llm.stream(PROMPT, config={"callbacks": [recorder]}) if c]
    assert len(chunks) >= 8  # real tokens, not one blob nor characters
    assert any(len(c) > 1 for c in chunks)
    assert "".join(chunks) == llm.invoke(PROMPT)
    assert recorder.tokens == chunks


def test_max_tokens_is_honoured(llm: GPT4All) -> None:
    result = llm.generate([PROMPT], max_tokens=5).generations[0][0]
    info = result.generation_info
    assert info["usage"]["completion_tokens"] == 5
    assert info["finish_reason"] == "length"
    assert info["usage"]["prompt_tokens"] > 0
    assert info["timings"]["predicted_ms"] >= 0
    longer = llm.invoke(PROMPT, max_tokens=10)
    assert longer.startswith(result.text) and len(longer) > len(result.text)


def test_stop_sequence_stops_at_once_without_partial_text(llm: GPT4All) -> None:
    full = llm.invoke(PROMPT, max_tokens=24)
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    recorder = Recorder()
    result = llm.generate([PROMPT], stop=[stop], max_tokens=24, callbacks=[recorder]).generations[0][0]
    assert result.text == full[: full.index(stop)]
    assert "".join(recorder.tokens) == result.text  # no partial stop string reached the callbacks
    assert result.generation_info["finish_reason"] == "stop"
    assert result.generation_info["usage"]["completion_tokens"] < 24  # generation really stopped


def test_instance_stop_is_used(tiny_model_path: Path, llm: GPT4All) -> None:
    full = llm.invoke(PROMPT, max_tokens=24)
    stop = full[5:7]
    with_stop = GPT4All(model=str(tiny_model_path), max_tokens=24, stop=[stop], n_threads=THREADS, **SAMPLING)
    assert with_stop.invoke(PROMPT) == full[: full.index(stop)]


def test_seed_warns_instead_of_being_ignored(tiny_model_path: Path) -> None:
    with pytest.warns(UnsupportedParameterWarning, match="no seed"):
        GPT4All(model=str(tiny_model_path), seed=42)


def test_n_predict_is_the_old_name_of_max_tokens(tiny_model_path: Path) -> None:
    assert GPT4All(model=str(tiny_model_path), n_predict=7).max_tokens == 7


async def test_concurrent_calls_share_one_model_and_match_sequential(
    tiny_model_path: Path, llm: GPT4All
) -> None:
    MODEL_CACHE.clear()
    loads = MODEL_CACHE.loads
    prompts = [f"Question {i}" for i in range(8)]
    sequential = {p: llm.invoke(p, max_tokens=4) for p in prompts}
    other = GPT4All(model=str(tiny_model_path), max_tokens=4, n_threads=THREADS, **SAMPLING)
    threaded: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda p=p: threaded.__setitem__(p, other.invoke(p))) for p in prompts[:4]
    ]
    for t in threads:
        t.start()
    results = await asyncio.gather(*(llm.ainvoke(p, max_tokens=4) for p in prompts))
    for t in threads:
        t.join()
    assert dict(zip(prompts, results)) == sequential
    assert threaded == {p: sequential[p] for p in prompts[:4]}
    assert MODEL_CACHE.loads == loads + 1


def test_leaving_a_stream_early_frees_the_model(llm: GPT4All) -> None:
    for i, _ in enumerate(llm.stream(PROMPT, max_tokens=100)):
        if i == 1:
            break
    assert not llm.load().lock.locked()
    assert llm.invoke(PROMPT, max_tokens=4)


def test_prompt_longer_than_context(tiny_model_path: Path) -> None:
    llm = GPT4All(model=str(tiny_model_path), n_ctx=128, max_tokens=10, n_threads=THREADS)
    with pytest.raises(ContextLengthExceededError, match=r"n_ctx=128.*max_tokens=10") as caught:
        llm.invoke("moon " * 300)
    assert caught.value.partial_text == ""


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ModelFileNotFoundError, match="not found"):
        GPT4All(model=str(tmp_path / "missing.gguf")).invoke("hi")
    with pytest.raises(ModelFileNotFoundError):
        GPT4All(model="missing.gguf", model_path=str(tmp_path)).invoke("hi")
    (tmp_path / "ggml.bin").write_bytes(b"lmgg" + b"\0" * 32)
    with pytest.raises(InvalidModelFileError, match="GGML"):
        GPT4All(model=str(tmp_path / "ggml.bin")).invoke("hi")
    with pytest.raises(InvalidParameterError, match="temp=-1"):
        GPT4All(model="x.gguf", temp=-1)
    with pytest.raises(InvalidParameterError, match="max_tokens=0"):
        GPT4All(model="x.gguf", max_tokens=0)


def test_get_num_tokens_uses_the_model_vocabulary(llm: GPT4All, tiny_model_path: Path) -> None:
    import llama_cpp

    text = "the first man on the moon was"
    vocab = llama_cpp.Llama(model_path=str(tiny_model_path), vocab_only=True, verbose=False)
    assert llm.get_num_tokens(text) == len(vocab.tokenize(text.encode(), add_bos=False, special=True))
    assert llm.get_num_tokens(text) < len(text) / 2  # words, not characters or bytes


def test_langchain_metadata(llm: GPT4All) -> None:
    assert llm._llm_type == "gpt4all"
    params = llm._get_ls_params()
    assert params["ls_provider"] == "gpt4all"
    assert params["ls_model_name"] == "tiny-llama2"
    assert params["ls_max_tokens"] == 16
