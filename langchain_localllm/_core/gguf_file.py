"""Read a GGUF file's metadata without loading it, and check the file is loadable.

Used to turn "llama.cpp failed to load" into an error that says what is wrong
(missing, a directory, not GGUF, legacy GGML, truncated), and to read what a
model says about itself (chat template, context length, name) cheaply.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from langchain_localllm.errors import InvalidModelFileError, ModelFileNotFoundError

_GGUF_MAGIC = b"GGUF"
# Legacy GGML containers, as their uint32 magic appears on disk (little endian).
_GGML_MAGICS = {b"lmgg": "ggml", b"fmgg": "ggmf", b"tjgg": "ggjt", b"alg": "ggla"}
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# ggml type -> (block size in elements, bytes per block)
_TYPE_SIZES = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 36),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
}
_MAX_ARRAY_KEPT = 64  # longer arrays (vocabularies) are skipped, only their length kept


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF file's header says."""

    path: Path
    version: int
    metadata: dict[str, Any] = field(repr=False)
    tensor_count: int = 0

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def name(self) -> str | None:
        return self.metadata.get("general.name")

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")

    @property
    def context_length(self) -> int | None:
        return self.metadata.get(f"{self.architecture}.context_length")


class _Reader:
    def __init__(self, fh: BinaryIO, path: Path) -> None:
        self.fh, self.path = fh, path

    def read(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise _truncated(self.path, "its header ends early")
        return data

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.read(self.scalar("<Q")).decode("utf-8", errors="replace")

    def value(self, vtype: int, *, whole: bool = False) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type, count = self.scalar("<I"), self.scalar("<Q")
            if whole and item_type in _SCALARS:
                fmt = _SCALARS[item_type]
                return list(struct.unpack(f"<{count}{fmt[1]}", self.read(struct.calcsize(fmt) * count)))
            if count > _MAX_ARRAY_KEPT and not whole:
                self.skip_array(item_type, count)
                return _SkippedArray(count)
            return [self.value(item_type) for _ in range(count)]
        raise InvalidModelFileError(
            f"{self.path} has an unknown GGUF value type {vtype}: the file is corrupt or from a "
            "newer GGUF version than this reader knows; re-download or re-convert it.",
            path=str(self.path),
        )

    def skip_array(self, item_type: int, count: int) -> None:
        if item_type in _SCALARS:
            self.fh.seek(struct.calcsize(_SCALARS[item_type]) * count, os.SEEK_CUR)
        elif item_type == _STRING:
            for _ in range(count):
                self.fh.seek(self.scalar("<Q"), os.SEEK_CUR)
        else:
            for _ in range(count):
                self.value(item_type)


class _SkippedArray(int):
    """The length of a long array that was not read (e.g. a vocabulary)."""


def _truncated(path: Path, why: str) -> InvalidModelFileError:
    return InvalidModelFileError(
        f"{path} is a truncated GGUF file ({why}): the download or copy did not finish. "
        "Download the model again and compare its size or checksum with the source.",
        path=str(path),
    )


def check_model_path(path: str | os.PathLike[str]) -> Path:
    """Resolve ``path`` and raise a typed error unless it is a regular file."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise ModelFileNotFoundError(
            f"Model file not found: {resolved}. Check the path, or download a GGUF model "
            "(for example from Hugging Face) and pass its path.",
            path=str(resolved),
        )
    if resolved.is_dir():
        ggufs = sorted(p.name for p in resolved.glob("*.gguf"))[:5]
        hint = f" It contains: {', '.join(ggufs)}." if ggufs else " It contains no .gguf file."
        raise InvalidModelFileError(
            f"Model path {resolved} is a directory; pass the path of a .gguf file inside it.{hint}",
            path=str(resolved),
        )
    return resolved


def read_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Read and validate a GGUF file's header; raise a typed error if it cannot load."""
    resolved = check_model_path(path)
    stat = resolved.stat()
    return _read_gguf_cached(resolved, stat.st_size, stat.st_mtime_ns)


def _open_header(fh: BinaryIO, path: Path) -> tuple[_Reader, int, int, int]:
    """Check the magic; return a reader at the first metadata key, the version and the counts."""
    magic = fh.read(4)
    if magic != _GGUF_MAGIC:
        raise _not_gguf(path, magic)
    reader = _Reader(fh, path)
    version = reader.scalar("<I")
    count_fmt = "<I" if version == 1 else "<Q"
    tensor_count, kv_count = reader.scalar(count_fmt), reader.scalar(count_fmt)
    return reader, version, tensor_count, kv_count


@lru_cache(maxsize=64)
def _read_gguf_cached(path: Path, size: int, _mtime_ns: int) -> GGUFInfo:
    with path.open("rb") as fh:
        reader, version, tensor_count, kv_count = _open_header(fh, path)
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = reader.string()
            metadata[key] = reader.value(reader.scalar("<I"))
        data_end = 0
        for _ in range(tensor_count):
            reader.string()
            n_dims = reader.scalar("<I")
            n_elements = 1
            for _ in range(n_dims):
                n_elements *= reader.scalar("<Q")
            ggml_type, offset = reader.scalar("<I"), reader.scalar("<Q")
            block, nbytes = _TYPE_SIZES.get(ggml_type, (1, 0))
            data_end = max(data_end, offset + n_elements // block * nbytes)
        alignment = int(metadata.get("general.alignment", 32))
        data_start = -(-fh.tell() // alignment) * alignment
    if data_start + data_end > size:
        raise _truncated(path, f"{size} bytes on disk, {data_start + data_end} expected")
    return GGUFInfo(path=path, version=version, metadata=metadata, tensor_count=tensor_count)


#: The metadata of a GGUF tokenizer (read whole by :func:`read_gguf_vocabulary`).
VOCABULARY_KEYS = frozenset(
    {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"}
)


def read_gguf_vocabulary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``tokenizer.*`` metadata of a GGUF file with the vocabulary arrays read whole."""
    resolved = check_model_path(path)
    stat = resolved.stat()
    return _read_vocabulary_cached(resolved, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _read_vocabulary_cached(path: Path, _size: int, _mtime_ns: int) -> dict[str, Any]:
    with path.open("rb") as fh:
        reader, _, _, kv_count = _open_header(fh, path)
        found: dict[str, Any] = {}
        for _ in range(kv_count):
            key = reader.string()
            value = reader.value(reader.scalar("<I"), whole=key in VOCABULARY_KEYS)
            if key.startswith("tokenizer."):
                found[key] = value
        return found


def _not_gguf(path: Path, magic: bytes) -> InvalidModelFileError:
    legacy = _GGML_MAGICS.get(magic) or _GGML_MAGICS.get(magic[:3])
    if legacy:
        return InvalidModelFileError(
            f"{path} is a legacy GGML model ({legacy} format). GGML files are no longer "
            "supported by llama.cpp or gpt4all; use the GGUF version of this model, or convert "
            "it with llama.cpp's convert_llama_ggml_to_gguf.py.",
            path=str(path),
        )
    if len(magic) < 4:
        return _truncated(path, "it is too short to hold a GGUF header")
    return InvalidModelFileError(
        f"{path} is not a GGUF model file (it starts with {magic!r}, GGUF files start with "
        "b'GGUF'). Pass the path of a .gguf file; safetensors or PyTorch checkpoints must be "
        "converted with llama.cpp's convert_hf_to_gguf.py first.",
        path=str(path),
    )
