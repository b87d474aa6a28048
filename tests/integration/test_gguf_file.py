"""Model-file checks give typed, actionable errors before any native code runs."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from langchain_localllm._core.gguf_file import read_gguf
from langchain_localllm.demo_models import write_tiny_model
from langchain_localllm.errors import InvalidModelFileError, LocalLLMError, ModelFileNotFoundError
from tests.fixtures.chat_templates import CHAT_TEMPLATES


def test_reads_what_the_model_says_about_itself(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "m.gguf", chat_format="chatml", context_length=1234, name="demo")
    info = read_gguf(path)
    assert info.architecture == "llama"
    assert info.name == "demo"
    assert info.context_length == 1234
    assert info.chat_template == CHAT_TEMPLATES["chatml"]
    assert info.metadata["llama.rope.freq_base"] == pytest.approx(10000.0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileNotFoundError, match="not found") as caught:
        read_gguf(tmp_path / "nope.gguf")
    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value, LocalLLMError)


def test_directory_lists_the_gguf_files_inside(tmp_path: Path) -> None:
    write_tiny_model(tmp_path / "inside.gguf")
    with pytest.raises(InvalidModelFileError, match=r"directory.*inside\.gguf"):
        read_gguf(tmp_path)


def test_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b'{"__metadata__": {}}' + b"\0" * 64)
    with pytest.raises(InvalidModelFileError, match="not a GGUF") as caught:
        read_gguf(path)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("magic", [0x67676D6C, 0x67676A74, 0x67676D66])
def test_legacy_ggml_says_gguf_is_needed(tmp_path: Path, magic: int) -> None:
    path = tmp_path / "ggml-model-q4_0.bin"
    path.write_bytes(struct.pack("<I", magic) + b"\0" * 128)
    with pytest.raises(InvalidModelFileError, match="GGML.*no longer supported.*GGUF"):
        read_gguf(path)


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_file(tmp_path: Path, keep: float) -> None:
    full = write_tiny_model(tmp_path / "full.gguf").read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(full[: int(len(full) * keep)])
    with pytest.raises(InvalidModelFileError, match="truncated"):
        read_gguf(path)


def test_empty_file_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(InvalidModelFileError, match="truncated"):
        read_gguf(path)
