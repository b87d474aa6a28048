"""Every constructor argument of the classes ours replace is accepted: honoured, or warned about.

The peers' ``model_fields`` are walked, so an argument a peer adds later fails here until
ours handles it. Peers: langchain-community's LLMs, embeddings and ChatLlamaCpp, langchain-ollama's.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import pytest
from pydantic.fields import FieldInfo

from langchain_localllm import (
    ChatGPT4All,
    ChatLlamaCpp,
    GPT4All,
    GPT4AllEmbeddings,
    LlamaCpp,
    LlamaCppEmbeddings,
    Llamafile,
    LlamafileEmbeddings,
    Ollama,
    OllamaEmbeddings,
    OllamaLLM,
    UnsupportedParameterWarning,
)

PEERS: list[tuple[str, type, dict[str, Any]]] = [
    ("langchain_community.llms.llamacpp:LlamaCpp", LlamaCpp, {"model_path": "/models/m.gguf"}),
    ("langchain_community.chat_models.llamacpp:ChatLlamaCpp", ChatLlamaCpp, {"model_path": "/models/m.gguf"}),
    ("langchain_community.llms.gpt4all:GPT4All", GPT4All, {"model": "/models/m.gguf"}),
    ("langchain_community.llms.llamafile:Llamafile", Llamafile, {}),
    ("langchain_community.llms.ollama:Ollama", Ollama, {"model": "m"}),
    (
        "langchain_community.embeddings.llamacpp:LlamaCppEmbeddings",
        LlamaCppEmbeddings,
        {"model_path": "/m.gguf"},
    ),
    ("langchain_community.embeddings.gpt4all:GPT4AllEmbeddings", GPT4AllEmbeddings, {"model": "/m.gguf"}),
    ("langchain_community.embeddings.llamafile:LlamafileEmbeddings", LlamafileEmbeddings, {}),
    ("langchain_community.embeddings.ollama:OllamaEmbeddings", OllamaEmbeddings, {"model": "m"}),
    ("langchain_ollama:OllamaLLM", OllamaLLM, {"model": "m"}),
    ("langchain_ollama:OllamaEmbeddings", OllamaEmbeddings, {"model": "m"}),
]
IDS = [spec.split(":")[0].split(".")[0] + ":" + spec.split(":")[1] for spec, _, _ in PEERS]


def peer_fields(spec: str) -> dict[str, FieldInfo]:
    module, name = spec.split(":")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(getattr(importlib.import_module(module), name).model_fields)


@pytest.mark.parametrize(("spec", "ours", "required"), PEERS, ids=IDS)
def test_every_peer_argument_is_a_field_a_rename_or_a_documented_no_op(
    spec: str, ours: Any, required: dict[str, Any]
) -> None:
    known = set(ours.model_fields) | set(ours._peer_renamed) | set(ours._peer_ignored)
    missing = [name for name in peer_fields(spec) if name not in known]
    assert missing == [], f"{ours.__name__} does not accept {missing} of {spec}"


@pytest.mark.parametrize(("spec", "ours", "required"), PEERS, ids=IDS)
def test_each_peer_argument_at_the_peers_default_is_accepted_silently(
    spec: str, ours: Any, required: dict[str, Any]
) -> None:
    for name, field in peer_fields(spec).items():
        if field.is_required() or name in required or name == "callback_manager":
            continue
        value = field.get_default(call_default_factory=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnsupportedParameterWarning)
            ours(**required, **{name: value})


@pytest.mark.parametrize(("spec", "ours", "required"), PEERS, ids=IDS)
def test_a_peer_argument_without_effect_warns_that_it_has_none(
    spec: str, ours: Any, required: dict[str, Any]
) -> None:
    for name in ours._peer_ignored:
        with pytest.warns(UnsupportedParameterWarning, match=rf"{name}=.* has no effect here: ") as caught:
            ours(**required, **{name: object()})
        assert caught[0].filename == __file__  # it points at the caller's line


def test_renamed_peer_arguments_set_our_field() -> None:
    assert Llamafile(request_timeout=7).timeout == 7
    assert LlamafileEmbeddings(request_timeout=7).timeout == 7
    assert GPT4AllEmbeddings(model_name="/m.gguf").model == "/m.gguf"


def test_gpt4all_peer_arguments_reach_the_chat_model_too() -> None:
    assert ChatGPT4All(model="/m.gguf", n_predict=7).max_tokens == 7
    assert GPT4All(model="/m.gguf", n_predict=7, max_tokens=9).max_tokens == 9  # ours wins
    with pytest.warns(UnsupportedParameterWarning, match=r"ChatGPT4All: seed=42 has no effect here: gpt4all"):
        ChatGPT4All(model="/m.gguf", seed=42)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedParameterWarning)
        ChatGPT4All(model="/m.gguf", seed=0)
        GPT4All(model="/m.gguf", seed=None)


def test_gpt4all_kwargs_are_used_or_warned_about() -> None:
    embeddings = GPT4AllEmbeddings(model="/m.gguf", gpt4all_kwargs={"n_threads": 3, "device": "gpu"})
    assert (embeddings.n_threads, embeddings.device) == (3, "gpu")
    assert GPT4AllEmbeddings(model="/m.gguf", n_threads=2, gpt4all_kwargs={"n_threads": 3}).n_threads == 2
    with pytest.warns(UnsupportedParameterWarning, match="allow_download"):
        GPT4AllEmbeddings(model="/m.gguf", gpt4all_kwargs={"allow_download": True})


def test_langchain_ollama_base_url_none_means_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:8000")
    assert Ollama(model="m", base_url=None).base_url == "http://gpu-box:8000"
    assert OllamaEmbeddings(model="m", base_url=None).base_url == "http://gpu-box:8000"


def test_llamacpp_peer_load_arguments_reach_llama_cpp(tiny_model_path: Any) -> None:
    llm = LlamaCpp(model_path=str(tiny_model_path), n_ctx=256, logits_all=True, last_n_tokens_size=32)
    assert llm._load_kwargs["logits_all"] is True
    assert llm.client.scores.shape[0] == llm.client.n_ctx()  # logits kept for every position
    assert llm.client.last_n_tokens_size == 32
    vocab = LlamaCpp(model_path=str(tiny_model_path), n_ctx=256, vocab_only=True)
    assert vocab.client.model_params.vocab_only
