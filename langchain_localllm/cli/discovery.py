"""Find GGUF model files in the places local-LLM tools keep them.

* ``LOCALLLM_MODELS``: files or folders separated by ``os.pathsep``;
* Ollama's store (``$OLLAMA_MODELS``, ``~/.ollama/models``, the Linux service's
  ``/usr/share/ollama/.ollama/models``): ``manifests/<host>/<namespace>/<model>/<tag>``
  are JSON manifests whose ``application/vnd.ollama.image.model`` layer names a
  GGUF blob ``blobs/sha256-<hex>``;
* GPT4All's model folders (``~/.cache/gpt4all`` for the Python package, the desktop
  app's ``~/.local/share/nomic.ai/GPT4All`` and macOS/Windows equivalents);
* the Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub``, ``~/.cache/huggingface/hub``):
  ``models--<org>--<name>/snapshots/<revision>/...gguf``;
* LM Studio (``~/.lmstudio/models``, ``~/.cache/lm-studio/models``): ``<publisher>/<model>/*.gguf``.

Only the local file system is read.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from langchain_localllm.errors import ModelFileNotFoundError

_OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"


@dataclass(frozen=True)
class FoundModel:
    """A GGUF file found on this machine."""

    name: str
    """A short name: the Ollama ``model:tag``, ``org/repo/file.gguf``, or the file name."""
    path: Path
    """The file to load."""
    source: str
    """Where it was found: ``ollama``, ``gpt4all``, ``huggingface``, ``lmstudio`` or ``LOCALLLM_MODELS``."""

    @property
    def size(self) -> int:
        """File size in bytes (0 if it vanished)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


@dataclass(frozen=True)
class ModelFolder:
    """A folder searched for models."""

    source: str
    path: Path


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def model_folders(env: Mapping[str, str] | None = None) -> list[ModelFolder]:
    """The folders searched, in order (existing or not)."""
    env = _env(env)
    home = _home(env)
    xdg_cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else home / ".cache"
    xdg_data = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else home / ".local" / "share"
    folders: list[ModelFolder] = [
        ModelFolder("LOCALLLM_MODELS", Path(p).expanduser())
        for p in env.get("LOCALLLM_MODELS", "").split(os.pathsep)
        if p.strip()
    ]
    if env.get("OLLAMA_MODELS"):
        folders.append(ModelFolder("ollama", Path(env["OLLAMA_MODELS"]).expanduser()))
    else:
        folders.append(ModelFolder("ollama", home / ".ollama" / "models"))
        folders.append(ModelFolder("ollama", Path("/usr/share/ollama/.ollama/models")))
    folders += [
        ModelFolder("gpt4all", xdg_cache / "gpt4all"),
        ModelFolder("gpt4all", xdg_data / "nomic.ai" / "GPT4All"),
    ]
    if sys.platform == "darwin":
        app_support = home / "Library" / "Application Support"
        folders.append(ModelFolder("gpt4all", app_support / "nomic.ai" / "GPT4All"))
    if env.get("LOCALAPPDATA"):
        folders.append(ModelFolder("gpt4all", Path(env["LOCALAPPDATA"]) / "nomic.ai" / "GPT4All"))
    if env.get("HF_HUB_CACHE"):
        hub = Path(env["HF_HUB_CACHE"]).expanduser()
    elif env.get("HF_HOME"):
        hub = Path(env["HF_HOME"]).expanduser() / "hub"
    else:
        hub = xdg_cache / "huggingface" / "hub"
    folders.append(ModelFolder("huggingface", hub))
    folders += [
        ModelFolder("lmstudio", home / ".lmstudio" / "models"),
        ModelFolder("lmstudio", xdg_cache / "lm-studio" / "models"),
    ]
    return folders


def _is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def _gguf_files(folder: Path) -> Iterator[Path]:
    if folder.is_file():
        if _is_gguf(folder):
            yield folder
        return
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() == ".gguf" and path.is_file() and _is_gguf(path):
            yield path


def _ollama_models(root: Path) -> Iterator[FoundModel]:
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(manifests.rglob("*")):
        if not manifest.is_file():
            continue
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers") or []
        except (OSError, ValueError, AttributeError):
            continue
        parts = manifest.relative_to(manifests).parts  # host/namespace/model/tag
        if len(parts) < 2:
            continue
        *prefix, model, tag = parts
        namespace = [p for p in prefix[1:] if p != "library"]
        name = "/".join([*namespace, model]) + f":{tag}"
        for layer in layers:
            if isinstance(layer, dict) and layer.get("mediaType") == _OLLAMA_MODEL_LAYER:
                blob = root / "blobs" / str(layer.get("digest", "")).replace(":", "-")
                if blob.is_file() and _is_gguf(blob):
                    yield FoundModel(name, blob, "ollama")


def _hf_name(hub: Path, path: Path) -> str:
    parts = path.relative_to(hub).parts  # models--org--name/snapshots/rev/...file
    repo = parts[0].removeprefix("models--").replace("--", "/")
    return f"{repo}/{'/'.join(parts[3:])}" if len(parts) > 3 else f"{repo}/{path.name}"


def find_models(env: Mapping[str, str] | None = None) -> list[FoundModel]:
    """All GGUF files in :func:`model_folders`, each file once (the first place wins)."""
    found: list[FoundModel] = []
    seen: set[Path] = set()
    for folder in model_folders(env):
        if folder.source == "ollama":
            candidates = list(_ollama_models(folder.path))
        else:
            candidates = []
            for path in _gguf_files(folder.path):
                if folder.source == "huggingface":
                    name = _hf_name(folder.path, path)
                elif folder.source == "lmstudio" or (
                    folder.source == "LOCALLLM_MODELS" and folder.path.is_dir()
                ):
                    name = path.relative_to(folder.path).as_posix()
                else:
                    name = path.name
                candidates.append(FoundModel(name, path, folder.source))
        for model in candidates:
            key = model.path.resolve()
            if key not in seen:
                seen.add(key)
                found.append(model)
    return found


def resolve_model_path(model: str, env: Mapping[str, str] | None = None) -> Path:
    """The GGUF file for ``--model``: a path, else a model found by name.

    A name matches a found model's name, file name or file stem (``llama3:8b`` from
    Ollama's store, ``mistral-7b-instruct-v0.2.Q4_K_M`` from the Hugging Face cache...).
    """
    path = Path(model).expanduser()
    if path.exists():
        return path
    matches = [m for m in find_models(env) if model in (m.name, m.path.name, m.path.stem)]
    if not matches and ":" not in model:
        matches = [m for m in find_models(env) if m.source == "ollama" and m.name == f"{model}:latest"]
    if matches:
        return matches[0].path
    raise ModelFileNotFoundError(
        f"Model {model!r} not found: it is not a file, and no GGUF model of that name is in the "
        "usual folders. Run `localllm models` to list the models on this machine, or pass the path "
        "of a .gguf file.",
        model=model,
    )
