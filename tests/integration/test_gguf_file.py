"""Model-file checks give typed, actionable errors before any native code runs."""

from __future__ import annotations

import ctypes
import re
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from langchain_localllm._core.gguf.reader import GGML_TYPES, read_gguf
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


# --- tensor sizes: the ggml type table --------------------------------------------------------


def runtime_ggml() -> dict[str, tuple[Path, Path]]:
    """The ggml library each runtime links, with the ggml.h it was built from."""
    import gpt4all
    import llama_cpp

    llama = Path(llama_cpp.__file__).parent
    site = llama.parent
    bundled = Path(gpt4all.__file__).parent / "llmodel_DO_NOT_MODIFY"
    return {
        "llama.cpp": (llama / "lib" / "libggml-base.so", site / "include" / "ggml.h"),
        "gpt4all": (next((bundled / "build").glob("libllamamodel-mainline-*.so")), bundled / "ggml.h"),
    }


def ggml_type_sizes(library: Path, header: Path) -> dict[int, tuple[int, int]]:
    """``(ggml_blck_size, ggml_type_size)`` of every type the header declares, asked of the library."""
    lib = ctypes.CDLL(str(library))
    lib.ggml_blck_size.restype = ctypes.c_int64
    lib.ggml_type_size.restype = ctypes.c_size_t
    declared = re.findall(r"^\s*GGML_TYPE_(\w+)\s*=\s*(\d+)", header.read_text(), re.MULTILINE)
    types = [int(number) for name, number in declared if name != "COUNT"]
    assert len(types) > 25
    return {t: (lib.ggml_blck_size(t), lib.ggml_type_size(t)) for t in types}


@pytest.mark.parametrize("runtime", ["llama.cpp", "gpt4all"])
def test_ggml_type_sizes_are_the_runtimes_own(runtime: str) -> None:
    theirs = ggml_type_sizes(*runtime_ggml()[runtime])
    ours = {t: (GGML_TYPES[t].block_size, GGML_TYPES[t].type_size) for t in theirs if t in GGML_TYPES}
    assert ours == theirs  # every type the runtime declares, with its sizes


def test_every_ggml_type_here_is_a_runtimes() -> None:
    known = {t for library, header in runtime_ggml().values() for t in ggml_type_sizes(library, header)}
    assert set(GGML_TYPES) == known


def test_ggml_type_sizes_match_the_gguf_package() -> None:
    # gguf-py still sizes Q8_1 with two float32 scales (40 bytes a block); ggml's block_q8_1
    # has two float16 (36 bytes, static_assert in ggml-common.h), and the runtimes read files.
    assert set(GGML_QUANT_SIZES) <= set(GGML_TYPES)
    differ = {
        GGMLQuantizationType(t).name
        for t, sizes in GGML_QUANT_SIZES.items()
        if (GGML_TYPES[t].block_size, GGML_TYPES[t].type_size) != sizes
    }
    assert differ <= {"Q8_1"}
    assert {GGML_TYPES[t].name for t in GGML_QUANT_SIZES} == {
        GGMLQuantizationType(t).name for t in GGML_QUANT_SIZES
    }


@pytest.mark.parametrize(
    "qtype",
    [t for t in GGML_QUANT_SIZES if t != GGMLQuantizationType.Q8_1],
    ids=lambda t: GGMLQuantizationType(t).name,
)
def test_tensors_of_each_type_are_sized_exactly(tmp_path: Path, qtype: GGMLQuantizationType) -> None:
    # Written by the gguf package, which sizes the data itself: the file reads whole, and one
    # byte less is truncated (so neither too many nor too few bytes are expected).
    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), arch="llama")
    for name in ("a", "b"):
        shape = gguf.quant_shape_to_byte_shape((2, 4096), qtype)
        writer.add_tensor(name, np.zeros(shape, dtype=np.uint8), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert read_gguf(path).tensor_count == 2
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(InvalidModelFileError, match="truncated"):
        read_gguf(cut)
