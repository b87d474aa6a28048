"""LlamaCpp against the real llama.cpp runtime, on generated GGUF models."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import llama_cpp
import pytest
from langchain_core.callbacks import CallbackManager, StreamingStdOutCallbackHandler

from langchain_localllm import (
    ContextLengthExceededError,
    InvalidModelFileError,
    InvalidParameterError,
    LlamaCpp,
    ModelFileNotFoundError,
)
from langchain_localllm._inprocess.model_cache import MODEL_CACHE
from tests.fixtures.models import tiny_model
from tests.fixtures.runs import LLMEvents as Recorder

PROMPT = "The first man on the moon was"
SAMPLING = {"temperature": 0.0, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}


@pytest.fixture(scope="module")
def raw(tiny_model_path: Path) -> Any:
    return llama_cpp.Llama(model_path=str(tiny_model_path), n_ctx=2048, verbose=False)


@pytest.fixture
def llm(tiny_model_path: Path) -> LlamaCpp:
    return LlamaCpp(model_path=str(tiny_model_path), max_tokens=24, seed=7, **SAMPLING)


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_invoke_equals_raw_llama_cpp(tiny_model_path: Path, raw: Any, temperature: float) -> None:
    params = {**SAMPLING, "temperature": temperature}
    llm = LlamaCpp(model_path=str(tiny_model_path), max_tokens=24, seed=11, **params)
    expected = raw(PROMPT, max_tokens=24, seed=11, **params)["choices"][0]["text"]
    assert expected
    assert llm.invoke(PROMPT) == expected


def test_stream_joins_to_invoke_and_callbacks_see_each_token(llm: LlamaCpp) -> None:
    recorder = Recorder()
    chunks = list(llm.stream(PROMPT, config={"callbacks": [recorder]}))
    assert len([c for c in chunks if c]) > 3
    assert "".join(chunks) == llm.invoke(PROMPT)
    assert "".join(recorder.tokens) == "".join(chunks)
    assert [t for t in recorder.tokens if t] == [c for c in chunks if c]


def test_invoke_fires_token_callbacks_too(llm: LlamaCpp) -> None:
    recorder = Recorder()
    text = llm.invoke(PROMPT, config={"callbacks": [recorder]})
    assert "".join(recorder.tokens) == text
    assert len(recorder.tokens) > 3
    assert recorder.ends == 1


def test_classic_callback_manager_example_streams(
    tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.warns(DeprecationWarning, match="callbacks="):
        llm = LlamaCpp(
            model_path=str(tiny_model_path),
            n_gpu_layers=1,
            n_batch=512,
            n_ctx=2048,
            f16_kv=True,
            callback_manager=CallbackManager([StreamingStdOutCallbackHandler()]),
            verbose=True,
            max_tokens=16,
            temperature=0,
        )
    text = llm.invoke("The first man on the moon was ... Let's think step by step")
    assert text
    assert text in capsys.readouterr().out


def test_stop_sequences_end_generation_and_are_not_returned(llm: LlamaCpp) -> None:
    full = llm.invoke(PROMPT, max_tokens=40)
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    result = llm.generate([PROMPT], stop=[stop], max_tokens=40).generations[0][0]
    assert result.text == full[: full.index(stop)]
    assert stop not in result.text
    assert result.generation_info["finish_reason"] == "stop"


def test_instance_and_call_stops_combine(tiny_model_path: Path, llm: LlamaCpp) -> None:
    full = llm.invoke(PROMPT, max_tokens=40)
    late, early = full[-6:-4], full[6:8]
    both = LlamaCpp(model_path=str(tiny_model_path), max_tokens=40, seed=7, stop=[late], **SAMPLING)
    assert both.invoke(PROMPT) == full[: full.index(late)]
    assert both.invoke(PROMPT, stop=[early]) == full[: min(full.index(early), full.index(late))]


def test_max_tokens_usage_finish_reason_and_timings(llm: LlamaCpp) -> None:
    result = llm.generate([PROMPT, "Hello"], max_tokens=9)
    for (generation,) in result.generations:
        info = generation.generation_info
        assert info["finish_reason"] == "length"
        assert info["usage"]["completion_tokens"] == 9
        assert info["usage"]["total_tokens"] == info["usage"]["prompt_tokens"] + 9
        timings = info["timings"]
        assert timings["predicted_n"] > 0 and timings["predicted_ms"] > 0
        assert timings["predicted_per_second"] > 0
    prompt_tokens = result.generations[0][0].generation_info["usage"]["prompt_tokens"]
    assert prompt_tokens == len(llm.client.tokenize(PROMPT.encode("utf-8"), add_bos=True, special=True))
    usage = result.llm_output["token_usage"]
    assert usage["completion_tokens"] == 18
    assert usage["total_tokens"] == sum(
        g[0].generation_info["usage"]["total_tokens"] for g in result.generations
    )


def test_get_num_tokens_uses_the_model_tokenizer(llm: LlamaCpp, raw: Any) -> None:
    text = "Sure! Here are three queries about the moon"
    assert llm.get_num_tokens(text) == len(raw.tokenize(text.encode(), add_bos=False, special=True))


def test_two_instances_share_one_loaded_model(tiny_model_path: Path) -> None:
    MODEL_CACHE.clear()
    before = MODEL_CACHE.loads
    first = LlamaCpp(model_path=str(tiny_model_path), max_tokens=4)
    second = LlamaCpp(model_path=str(tiny_model_path), max_tokens=8, temperature=0.1)
    assert MODEL_CACHE.loads == before  # constructing loads nothing
    first.invoke("a")
    second.invoke("b")
    assert MODEL_CACHE.loads == before + 1
    assert first.client is second.client


async def test_concurrent_async_and_threads_match_sequential(llm: LlamaCpp) -> None:
    prompts = [f"Question {i}: what is the moon?" for i in range(32)]
    thread_prompts = [f"Thread {i} asks" for i in range(8)]
    sequential = {p: llm.invoke(p, max_tokens=6) for p in prompts + thread_prompts}
    thread_results: dict[str, str] = {}

    def worker(p: str) -> None:
        thread_results[p] = llm.invoke(p, max_tokens=6)

    threads = [threading.Thread(target=worker, args=(p,)) for p in thread_prompts]
    for t in threads:
        t.start()
    results = await asyncio.gather(*(llm.ainvoke(p, max_tokens=6) for p in prompts))
    for t in threads:
        t.join()
    assert dict(zip(prompts, results)) == {p: sequential[p] for p in prompts}
    assert thread_results == {p: sequential[p] for p in thread_prompts}


def test_batch_matches_invoke(llm: LlamaCpp) -> None:
    prompts = ["one", "two", "three", "four"]
    assert llm.batch(prompts, max_tokens=5) == [llm.invoke(p, max_tokens=5) for p in prompts]


async def test_astream_does_not_block_the_event_loop(llm: LlamaCpp) -> None:
    events: list[str] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            events.append("tick")
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    tokens = []
    async for token in llm.astream(PROMPT, max_tokens=40):
        tokens.append(token)
        events.append("token")
    done.set()
    await task
    assert "".join(tokens) == llm.invoke(PROMPT, max_tokens=40)
    first_token = events.index("token")
    # the loop kept running while tokens were produced, not only before or after
    assert "tick" in events[first_token : len(events) - events[::-1].index("token")]


def test_leaving_a_stream_early_stops_generation(llm: LlamaCpp) -> None:
    model = llm.client
    for i, _ in enumerate(llm.stream(PROMPT, max_tokens=200)):
        if i == 2:
            break
    prompt_len = len(model.tokenize(PROMPT.encode(), add_bos=True, special=True))
    assert model.n_tokens < prompt_len + 10  # far fewer than the 200 asked for
    assert not llm.load().lock.locked()  # the model is free for the next call
    assert llm.invoke("next", max_tokens=3)


async def test_leaving_an_async_stream_early_releases_the_model(llm: LlamaCpp) -> None:
    expected = llm.invoke("next", max_tokens=3)
    stream = llm.astream(PROMPT, max_tokens=200)
    async for _ in stream:
        break
    await stream.aclose()
    assert await asyncio.wait_for(llm.ainvoke("next", max_tokens=3), timeout=60) == expected


def test_grammar_constrains_output(llm: LlamaCpp) -> None:
    assert llm.invoke("Answer yes or no:", grammar='root ::= "yes" | "no"') in {"yes", "no"}


def test_json_schema_output_parses(llm: LlamaCpp) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    text = llm.invoke("Give a number as JSON:", json_schema=schema, max_tokens=40)
    assert isinstance(json.loads(text)["n"], int)


def test_bad_grammar_is_a_typed_error(llm: LlamaCpp) -> None:
    with pytest.raises(InvalidParameterError, match="grammar.*expecting"):
        llm.invoke("x", grammar="root ::= (((")


def test_prompt_longer_than_context(tiny_model_path: Path) -> None:
    llm = LlamaCpp(model_path=str(tiny_model_path), n_ctx=256, max_tokens=10)
    with pytest.raises(ContextLengthExceededError, match=r"n_ctx\) is 256") as caught:
        llm.invoke("moon " * 300)
    error = caught.value
    assert error.n_ctx == 256 and error.max_tokens == 10 and error.prompt_tokens > 256
    assert "max_tokens=10" in str(error)


def test_values_not_given_come_from_the_model_file(tmp_path: Path) -> None:
    path = tiny_model("llama2", context_length=1024, rope_freq_base=500000.0)
    llm = LlamaCpp(model_path=str(path), max_tokens=16, seed=3, **SAMPLING)
    assert llm.get_context_window() == 1024
    assert llm.client.n_ctx() == 1024
    own_rope = llama_cpp.Llama(model_path=str(path), n_ctx=1024, verbose=False)
    forced_rope = llama_cpp.Llama(model_path=str(path), n_ctx=1024, rope_freq_base=10000.0, verbose=False)
    kwargs = {"max_tokens": 16, "seed": 3, **SAMPLING}
    ours = llm.invoke(PROMPT)
    assert ours == own_rope(PROMPT, **kwargs)["choices"][0]["text"]
    assert ours != forced_rope(PROMPT, **kwargs)["choices"][0]["text"]  # the override the old wrapper did


def test_n_ctx_zero_is_the_models_full_context(tmp_path: Path) -> None:
    path = tiny_model("llama2", context_length=4096)
    assert LlamaCpp(model_path=str(path), n_ctx=0).get_context_window() == 4096
    assert LlamaCpp(model_path=str(path), n_ctx=256).get_context_window() == 256


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda d: d / "missing.gguf", ModelFileNotFoundError, "not found"),
        (lambda d: d, InvalidModelFileError, "directory"),
        (lambda d: _write(d / "x.gguf", b"PK\x03\x04 zip archive"), InvalidModelFileError, "not a GGUF"),
        (lambda d: _write(d / "old.bin", b"tjgg" + b"\0" * 64), InvalidModelFileError, "GGML"),
    ],
)
def test_bad_model_files(tmp_path: Path, make: Any, error: type[Exception], match: str) -> None:
    llm = LlamaCpp(model_path=str(make(tmp_path)))
    with pytest.raises(error, match=match):
        llm.invoke("hello")


def test_truncated_model(tmp_path: Path, tiny_model_path: Path) -> None:
    data = tiny_model_path.read_bytes()
    path = _write(tmp_path / "cut.gguf", data[: len(data) // 3])
    with pytest.raises(InvalidModelFileError, match="truncated"):
        LlamaCpp(model_path=str(path)).invoke("hello")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_verbose_false_silences_llama_cpp(tmp_path: Path) -> None:
    path = tiny_model("chatml")
    code = (
        "from langchain_localllm import LlamaCpp\n"
        f"print(LlamaCpp(model_path={str(path)!r}, max_tokens=5, verbose=VERBOSE).invoke('hi'))\n"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", code.replace("VERBOSE", "False")], capture_output=True, text=True
    )
    loud = subprocess.run(
        [sys.executable, "-c", code.replace("VERBOSE", "True")], capture_output=True, text=True
    )
    assert quiet.returncode == 0 and loud.returncode == 0
    assert "llama" in loud.stderr  # llama.cpp's log exists...
    assert quiet.stderr == ""  # ...and verbose=False removes all of it


def test_missing_runtime_names_the_extra(tiny_model_path: Path) -> None:
    code = (
        "import sys; sys.modules['llama_cpp'] = None\n"
        "from langchain_localllm import LlamaCpp, MissingDependencyError\n"
        f"try: LlamaCpp(model_path={str(tiny_model_path)!r}).invoke('hi')\n"
        "except MissingDependencyError as e: print('OK', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("OK") and "langchain-localllm[llamacpp]" in out


def test_langchain_metadata(llm: LlamaCpp) -> None:
    assert llm._llm_type == "llamacpp"
    params = llm._get_ls_params(stop=["\n"])
    assert params["ls_provider"] == "llamacpp"
    assert params["ls_model_name"] == "tiny-llama2"
    assert params["ls_model_type"] == "llm"
    assert params["ls_stop"] == ["\n"]
    assert params["ls_max_tokens"] == 24
    assert llm._identifying_params["model_path"] == llm.model_path
    assert llm._identifying_params["n_ctx"] == 2048


def test_a_copy_with_another_n_ctx_loads_with_it(tiny_model_path: Path) -> None:
    # Regression: the copy kept the original's cached load parameters (n_ctx() == 512).
    small = LlamaCpp(model_path=str(tiny_model_path), n_ctx=512)
    assert small.client.n_ctx() == 512
    bigger = small.model_copy(update={"n_ctx": 1024})
    assert bigger.client.n_ctx() == 1024
    small.n_ctx = 768
    assert small.client.n_ctx() == 768


def test_llama_cpp_log_goes_through_its_log_callback_not_to_stderr(
    tiny_model_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from langchain_localllm.llamacpp.runtime import LLAMA_LOG, load_llama

    with LLAMA_LOG.capture() as lines:
        loaded = load_llama(tiny_model_path, n_ctx=384, verbose=False)  # a load no other test makes
    MODEL_CACHE.evict(loaded.key)
    assert any("llama_model_loader" in line for line in lines)
    assert "llama_model_loader" not in capfd.readouterr().err
