"""Derived state (load parameters, model files, server answers) follows copies and assignments.

Regression: ``LlamaCpp(n_ctx=512).model_copy(update={"n_ctx": 2048})`` still loaded with 512,
because ``functools.cached_property`` values are copied with the instance's ``__dict__``.
"""

from __future__ import annotations

from pathlib import Path

from langchain_localllm import GPT4All, GPT4AllEmbeddings, LlamaCpp, LlamaCppEmbeddings, Llamafile, Ollama
from tests.support.fault_server import FaultServer, respond


def test_llamacpp_load_parameters_follow_a_copy_and_an_assignment() -> None:
    llm = LlamaCpp(model_path="/models/m.gguf", n_ctx=512)
    assert llm._load_kwargs["n_ctx"] == 512
    copy = llm.model_copy(update={"n_ctx": 2048, "model_kwargs": {"n_ubatch": 64}})
    assert copy._load_kwargs["n_ctx"] == 2048
    assert copy._load_kwargs["n_ubatch"] == 64
    assert llm._load_kwargs["n_ctx"] == 512  # the original is unchanged
    llm.n_ctx = 1024
    assert llm._load_kwargs["n_ctx"] == 1024
    llm.model_kwargs["n_ubatch"] = 32  # changed in place
    assert llm._load_kwargs["n_ubatch"] == 32


def test_llamacpp_embeddings_load_parameters_follow_a_copy() -> None:
    embeddings = LlamaCppEmbeddings(model_path="/models/e.gguf", n_ctx=256)
    assert embeddings._load_kwargs["n_batch"] == 256
    copy = embeddings.model_copy(update={"n_ctx": 512})
    assert (copy._load_kwargs["n_ctx"], copy._load_kwargs["n_batch"]) == (512, 512)
    embeddings.n_batch = 128
    assert embeddings._load_kwargs["n_batch"] == 128


def test_gpt4all_model_file_follows_a_copy_and_an_assignment(tmp_path: Path) -> None:
    llm = GPT4All(model="a.gguf", model_path=str(tmp_path))
    assert llm.model_file == tmp_path / "a.gguf"
    assert llm.model_copy(update={"model": "b.gguf"}).model_file == tmp_path / "b.gguf"
    llm.model_path = str(tmp_path / "sub")
    assert llm.model_file == tmp_path / "sub" / "a.gguf"


def test_gpt4all_embeddings_model_file_follows_a_copy(tmp_path: Path) -> None:
    embeddings = GPT4AllEmbeddings(model="a.gguf", model_path=str(tmp_path))
    assert embeddings.model_file == tmp_path / "a.gguf"
    assert embeddings.model_copy(update={"model": "b.gguf"}).model_file == tmp_path / "b.gguf"


def test_server_answers_are_asked_again_by_a_copy_for_another_server() -> None:
    with (
        FaultServer(respond(200, b'{"chat_template": "first"}')) as first,
        FaultServer(respond(200, b'{"chat_template": "second"}')) as second,
    ):
        llm = Llamafile(base_url=first.base_url)
        assert llm.chat_template() == "first"
        assert llm.chat_template() == "first"
        assert len(first.requests) == 1  # cached
        assert llm.model_copy(update={"base_url": second.base_url}).chat_template() == "second"


def test_ollama_show_is_asked_again_by_a_copy_for_another_model() -> None:
    with FaultServer(respond(200, b'{"template": "{{ .Prompt }}"}')) as server:
        llm = Ollama(model="a", base_url=server.base_url)
        llm.chat_template()
        llm.chat_template()
        llm.model_copy(update={"model": "b"}).chat_template()
    shown = [request.rpartition(b"\r\n\r\n")[2] for request in server.requests]
    assert shown == [b'{"model": "a"}', b'{"model": "b"}']
