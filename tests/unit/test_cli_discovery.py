"""`localllm models` discovery: GGUF files in the usual folders of a temporary home."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from langchain_localllm.cli.discovery import find_models, model_folders, resolve_model_path
from langchain_localllm.errors import ModelFileNotFoundError

GGUF = b"GGUF\x03\x00\x00\x00" + bytes(64)


def _file(path: Path, data: bytes = GGUF) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _ollama_model(root: Path, namespace: str, model: str, tag: str, digest: str) -> Path:
    blob = _file(root / "blobs" / f"sha256-{digest}")
    _file(root / "blobs" / "sha256-0000", b"{{ .Prompt }}")  # a template layer, not a model
    manifest = {
        "schemaVersion": 2,
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": 72},
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:0000", "size": 13},
        ],
    }
    path = root / "manifests" / "example.invalid" / namespace / model / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return blob


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def test_finds_models_in_every_usual_folder(home: Path, tmp_path: Path) -> None:
    ollama_blob = _ollama_model(home / ".ollama" / "models", "library", "llama3", "8b", "ab12")
    user_blob = _ollama_model(home / ".ollama" / "models", "someone", "tiny", "latest", "cd34")
    gpt4all = _file(home / ".cache" / "gpt4all" / "orca-mini-3b.gguf")
    gpt4all_app = _file(home / ".local" / "share" / "nomic.ai" / "GPT4All" / "phi-3.gguf")
    blob = _file(home / ".cache" / "huggingface" / "hub" / "models--TheOrg--Tiny-GGUF" / "blobs" / "e5f6")
    snapshot = home / ".cache/huggingface/hub/models--TheOrg--Tiny-GGUF/snapshots/0123abc/tiny.Q4_K_M.gguf"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(blob)
    lmstudio = _file(home / ".lmstudio" / "models" / "pub" / "Repo-GGUF" / "repo.Q8_0.gguf")
    extra = _file(tmp_path / "mine" / "sub" / "own.gguf")
    _file(home / ".cache" / "gpt4all" / "notes.txt", b"not a model")
    _file(home / ".cache" / "gpt4all" / "fake.gguf", b"GGML-not-gguf")

    found = find_models(env_for(home, LOCALLLM_MODELS=str(tmp_path / "mine")))
    by_name = {m.name: (m.source, m.path) for m in found}
    assert by_name == {
        "sub/own.gguf": ("LOCALLLM_MODELS", extra),
        "llama3:8b": ("ollama", ollama_blob),
        "someone/tiny:latest": ("ollama", user_blob),
        "orca-mini-3b.gguf": ("gpt4all", gpt4all),
        "phi-3.gguf": ("gpt4all", gpt4all_app),
        "TheOrg/Tiny-GGUF/tiny.Q4_K_M.gguf": ("huggingface", snapshot),
        "pub/Repo-GGUF/repo.Q8_0.gguf": ("lmstudio", lmstudio),
    }
    assert all(m.size == len(GGUF) for m in found)


def test_environment_variables_move_the_stores(tmp_path: Path, home: Path) -> None:
    ollama = _ollama_model(tmp_path / "ollama-store", "library", "mistral", "latest", "9999")
    hf = _file(tmp_path / "hf-home" / "hub" / "models--a--b" / "snapshots" / "r1" / "x.gguf")
    lonely = _file(tmp_path / "single.gguf")
    env = env_for(
        home,
        OLLAMA_MODELS=str(tmp_path / "ollama-store"),
        HF_HOME=str(tmp_path / "hf-home"),
        LOCALLLM_MODELS=os.pathsep.join([str(lonely), str(tmp_path / "missing")]),
    )
    found = {m.name: m.path for m in find_models(env)}
    assert found == {"single.gguf": lonely, "mistral:latest": ollama, "a/b/x.gguf": hf}
    hub_cache = find_models(env_for(home, HF_HUB_CACHE=str(tmp_path / "hf-home" / "hub")))
    assert [m.path for m in hub_cache] == [hf]


def test_a_file_in_two_places_is_listed_once(tmp_path: Path, home: Path) -> None:
    model = _file(home / ".cache" / "gpt4all" / "m.gguf")
    found = find_models(env_for(home, LOCALLLM_MODELS=str(model)))
    assert [(m.source, m.path) for m in found] == [("LOCALLLM_MODELS", model)]


def test_nothing_found_in_an_empty_home(home: Path, tmp_path: Path) -> None:
    env = env_for(home, OLLAMA_MODELS=str(tmp_path / "no-ollama"))
    assert find_models(env) == []
    sources = {f.source for f in model_folders(env)}
    assert sources == {"ollama", "gpt4all", "huggingface", "lmstudio"}


def test_resolve_model_by_path_or_by_name(home: Path) -> None:
    blob = _ollama_model(home / ".ollama" / "models", "library", "llama3", "latest", "ab12")
    gpt4all = _file(home / ".cache" / "gpt4all" / "orca-mini-3b.gguf")
    env = env_for(home)
    assert resolve_model_path(str(gpt4all), env) == gpt4all
    assert resolve_model_path("llama3:latest", env) == blob
    assert resolve_model_path("llama3", env) == blob  # Ollama's implicit :latest
    assert resolve_model_path("orca-mini-3b", env) == gpt4all
    with pytest.raises(ModelFileNotFoundError, match="localllm models"):
        resolve_model_path("no-such-model", env)
