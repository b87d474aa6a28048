"""Where langchain-localllm keeps files on disk: one function per folder, used everywhere."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "models_dir"]


def cache_dir() -> Path:
    """The package's cache folder.

    ``$LOCALLLM_CACHE_DIR``, else ``$XDG_CACHE_HOME/langchain-localllm``, else
    ``~/.cache/langchain-localllm``.
    """
    root = os.environ.get("LOCALLLM_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "langchain-localllm"


def models_dir() -> Path:
    """Generated models (demo model, converted MiniLM).

    ``$LOCALLLM_MODEL_CACHE``, else ``models/`` in :func:`cache_dir`.
    """
    root = os.environ.get("LOCALLLM_MODEL_CACHE")
    return Path(root) if root else cache_dir() / "models"
