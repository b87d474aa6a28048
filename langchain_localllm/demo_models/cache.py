"""The folder where this package keeps the model files it makes on the user's machine."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "model_cache_dir"]


def cache_dir() -> Path:
    """``$LOCALLLM_CACHE_DIR``, else ``$XDG_CACHE_HOME/langchain-localllm``, else ``~/.cache/...``."""
    root = os.environ.get("LOCALLLM_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "langchain-localllm"


def model_cache_dir() -> Path:
    """``$LOCALLLM_MODEL_CACHE``, else ``models/`` in :func:`cache_dir` (demo, Gemma, MiniLM files)."""
    root = os.environ.get("LOCALLLM_MODEL_CACHE")
    return Path(root) if root else cache_dir() / "models"
