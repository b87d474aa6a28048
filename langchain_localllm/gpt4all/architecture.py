"""Recognise a model file whose architecture the installed gpt4all cannot run.

gpt4all 2.8 bundles a llama.cpp from mid-2024: newer architectures (``gemma3``,
``qwen3``, ``llama4``...) fail to load with ``Unsupported model architecture: NAME``.
The file's own ``general.architecture`` is preferred over the text of that message.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from langchain_localllm._core.gguf.reader import read_gguf

__all__ = ["gpt4all_version", "unsupported_architecture"]

_UNSUPPORTED = re.compile(r"unsupported model architecture:?\s*'?([\w.-]+)", re.IGNORECASE)


def gpt4all_version() -> str:
    """The installed gpt4all version, or ``"unknown version"``."""
    try:
        return "gpt4all " + metadata.version("gpt4all")
    except metadata.PackageNotFoundError:
        return "unknown version"


def unsupported_architecture(message: str, path: Path) -> str | None:
    """The architecture gpt4all refused in ``message`` (a load error), else None."""
    match = _UNSUPPORTED.search(message)
    if match is None:
        return None
    try:
        return read_gguf(path).architecture or match.group(1)
    except Exception:
        return match.group(1)
