"""The package's one GGUF reader: a model file's metadata, read without loading the model.

Used to turn "llama.cpp failed to load" into an error that says what is wrong
(missing, a directory, not GGUF, legacy GGML, truncated, malformed), to read what a
model says about itself (chat template, context length, name) and its vocabulary
cheaply, in pure Python (no numpy, no ``gguf`` package: that one only writes the
generated test and demo models).

A model file is untrusted input. Every length and count in it is checked against the
bytes left in the file before anything is allocated, arrays nest at most
:data:`MAX_ARRAY_NESTING` deep, tensor sizes come from the block size of every ggml
type (:data:`GGML_TYPES`), and the accessors check the type of each value they hand
out: whatever is wrong with a file is an :class:`~langchain_localllm.errors.InvalidModelFileError`
saying what and where, raised after reading at most the file once, never a
``MemoryError``, ``RecursionError`` or a wrong-typed value found later.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from langchain_localllm.errors import InvalidModelFileError, ModelFileNotFoundError

__all__ = [
    "GGML_TYPES",
    "MAX_ARRAY_NESTING",
    "GGMLType",
    "GGUFArray",
    "GGUFInfo",
    "GGUFVocabulary",
    "check_model_path",
    "read_gguf",
    "read_gguf_vocabulary",
]

_GGUF_MAGIC = b"GGUF"
# Legacy GGML containers, as their uint32 magic appears on disk (little endian).
_GGML_MAGICS = {b"lmgg": "ggml", b"fmgg": "ggmf", b"tjgg": "ggjt", b"alg": "ggla"}
_VERSIONS = (1, 2, 3)

# GGUF value types: scalars by their struct format, then string (8) and array (9).
_SCALARS = {
    0: struct.Struct("<B"),
    1: struct.Struct("<b"),
    2: struct.Struct("<H"),
    3: struct.Struct("<h"),
    4: struct.Struct("<I"),
    5: struct.Struct("<i"),
    6: struct.Struct("<f"),
    7: struct.Struct("<?"),
    10: struct.Struct("<Q"),
    11: struct.Struct("<q"),
    12: struct.Struct("<d"),
}
_STRING, _ARRAY = 8, 9
_U32, _U64 = _SCALARS[4], _SCALARS[10]
# The fewest bytes a value of each type takes: a string is its 8-byte length, an array its
# 4-byte item type and 8-byte count (then maybe nothing).
_MIN_SIZE = {**{t: s.size for t, s in _SCALARS.items()}, _STRING: 8, _ARRAY: 12}
_MIN_KV = 8 + 4 + 1  # key length, value type, a one-byte value
_MIN_TENSOR_INFO = 8 + 4 + 4 + 8  # name length, n_dims, ggml type, offset
_MAX_DIMS = 4  # GGML_MAX_DIMS

#: Arrays inside arrays nest at most this deep (llama.cpp reads none nested at all).
MAX_ARRAY_NESTING = 8
_MAX_ARRAY_KEPT = 64  # longer arrays (vocabularies) are skipped, only their length kept


class GGMLType(NamedTuple):
    """How a ggml tensor type stores its elements."""

    name: str
    """ggml's name of the type."""
    block_size: int
    """Elements per block."""
    type_size: int
    """Bytes per block."""


#: Every ggml tensor type a runtime of this package can load, by its number in GGUF files:
#: llama.cpp's (``ggml_blck_size`` / ``ggml_type_size``) and gpt4all 2.8's, whose older
#: llama.cpp still reads types 31-33. Checked against both libraries and the ``gguf``
#: package's ``GGML_QUANT_SIZES`` in ``tests/integration/test_gguf_file.py``.
GGML_TYPES: dict[int, GGMLType] = {
    0: GGMLType("F32", 1, 4),
    1: GGMLType("F16", 1, 2),
    2: GGMLType("Q4_0", 32, 18),
    3: GGMLType("Q4_1", 32, 20),
    6: GGMLType("Q5_0", 32, 22),
    7: GGMLType("Q5_1", 32, 24),
    8: GGMLType("Q8_0", 32, 34),
    9: GGMLType("Q8_1", 32, 36),
    10: GGMLType("Q2_K", 256, 84),
    11: GGMLType("Q3_K", 256, 110),
    12: GGMLType("Q4_K", 256, 144),
    13: GGMLType("Q5_K", 256, 176),
    14: GGMLType("Q6_K", 256, 210),
    15: GGMLType("Q8_K", 256, 292),
    16: GGMLType("IQ2_XXS", 256, 66),
    17: GGMLType("IQ2_XS", 256, 74),
    18: GGMLType("IQ3_XXS", 256, 98),
    19: GGMLType("IQ1_S", 256, 50),
    20: GGMLType("IQ4_NL", 32, 18),
    21: GGMLType("IQ3_S", 256, 110),
    22: GGMLType("IQ2_S", 256, 82),
    23: GGMLType("IQ4_XS", 256, 136),
    24: GGMLType("I8", 1, 1),
    25: GGMLType("I16", 1, 2),
    26: GGMLType("I32", 1, 4),
    27: GGMLType("I64", 1, 8),
    28: GGMLType("F64", 1, 8),
    29: GGMLType("IQ1_M", 256, 56),
    30: GGMLType("BF16", 1, 2),
    31: GGMLType("Q4_0_4_4", 32, 18),
    32: GGMLType("Q4_0_4_8", 32, 18),
    33: GGMLType("Q4_0_8_8", 32, 18),
    34: GGMLType("TQ1_0", 256, 54),
    35: GGMLType("TQ2_0", 256, 66),
    39: GGMLType("MXFP4", 32, 17),
    40: GGMLType("NVFP4", 64, 36),
    41: GGMLType("Q1_0", 128, 18),
    42: GGMLType("Q2_0", 64, 18),
}
# Types llama.cpp once had and removed: no runtime here reads them.
_REMOVED_TYPES = {4: "Q4_2", 5: "Q4_3", 36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8"}


class _SkippedArray(int):
    """The length of a long array that was not read (e.g. a vocabulary)."""


class GGUFArray(list[Any]):
    """An array value: a list of its items, with their GGUF value type."""

    __slots__ = ("item_type",)

    def __init__(self, item_type: int, items: Iterable[Any]) -> None:
        super().__init__(items)
        self.item_type = item_type


def _describe(value: Any) -> str:
    if isinstance(value, _SkippedArray):
        return f"an array of {int(value)} items"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"the {type(value).__name__} {shown}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool | _SkippedArray)


def _wrong_type(path: Path, key: str, value: Any, expected: str) -> InvalidModelFileError:
    return InvalidModelFileError(
        f"{path} is a malformed GGUF file: its metadata {key!r} is {_describe(value)}, where "
        f"{expected} belongs. The file was written wrongly or damaged; re-download or re-convert it.",
        path=str(path),
        key=key,
    )


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF file's header says. The properties check the type of what they return."""

    path: Path
    version: int
    metadata: dict[str, Any] = field(repr=False)
    """Every key/value; arrays longer than 64 items are only counted (an int)."""
    tensor_count: int = 0

    def string(self, key: str) -> str | None:
        """``metadata[key]``: a string, None when absent; another type is a typed error."""
        value = self.metadata.get(key)
        if value is None or isinstance(value, str):
            return value
        raise _wrong_type(self.path, key, value, "a string")

    def integer(self, key: str) -> int | None:
        """``metadata[key]``: a non-negative integer, None when absent; else a typed error."""
        value = self.metadata.get(key)
        if value is None or (_is_int(value) and value >= 0):
            return value
        raise _wrong_type(self.path, key, value, "a non-negative integer")

    @property
    def architecture(self) -> str | None:
        return self.string("general.architecture")

    @property
    def name(self) -> str | None:
        return self.string("general.name")

    @property
    def chat_template(self) -> str | None:
        return self.string("tokenizer.chat_template")

    @property
    def context_length(self) -> int | None:
        architecture = self.architecture
        return None if architecture is None else self.integer(f"{architecture}.context_length")


@dataclass(frozen=True)
class GGUFVocabulary:
    """A GGUF file's tokenizer (``tokenizer.ggml.*``), each value of its declared type."""

    model: str
    """``tokenizer.ggml.model``: "llama" (SentencePiece), "gpt2" (byte-level BPE), ...; "" if absent."""
    tokens: list[str]
    """The token texts, by id (empty if absent)."""
    scores: list[float] | None
    """One score per token, or None."""
    types: list[int] | None
    """One llama.cpp token type per token (1 normal, 2 unknown, 3 control...), or None."""
    merges: list[str]
    """Byte-level BPE merges, ``"left right"``, by rank (empty if absent)."""
    special_ids: dict[str, int] = field(default_factory=dict)
    """``tokenizer.ggml.<name>_token_id`` by name ("bos", "eos"...), only ids inside the vocabulary."""
    add_space_prefix: bool | None = None
    """``tokenizer.ggml.add_space_prefix``, None if absent."""
    pre: str | None = None
    """``tokenizer.ggml.pre`` (the pre-tokenizer's name), None if absent."""


class _Reader:
    """Reads GGUF values from ``fh``, never past ``size`` nor allocating more than is left."""

    def __init__(self, fh: BinaryIO, path: Path, size: int) -> None:
        self.fh, self.path, self.size = fh, path, size
        self.pos = 0
        self.key = ""  # the metadata key being read, for messages

    def _where(self) -> str:
        return f" (metadata {self.key!r})" if self.key else ""

    def _check_left(self, n: int, what: str) -> None:
        left = self.size - self.pos
        if n > left:
            raise _truncated(
                self.path, f"{what}{self._where()} at byte {self.pos} needs {n} bytes, {left} are left"
            )

    def read(self, n: int, what: str) -> bytes:
        self._check_left(n, what)
        data = self.fh.read(n)
        if len(data) != n:  # the file shrank while being read
            raise _truncated(self.path, f"it ends at byte {self.pos + len(data)}")
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        self._check_left(n, what)
        self.fh.seek(n, os.SEEK_CUR)
        self.pos += n

    def scalar(self, fmt: struct.Struct, what: str = "a number") -> Any:
        return fmt.unpack(self.read(fmt.size, what))[0]

    def string(self, what: str = "a string") -> str:
        n = self.scalar(_U64, what)
        return self.read(n, what).decode("utf-8", errors="replace")

    def count(self, n: int, each: int, what: str) -> int:
        """``n`` items of at least ``each`` bytes: a typed error unless they can fit in what is left."""
        left = self.size - self.pos
        if n * each > left:
            raise InvalidModelFileError(
                f"{self.path} is a malformed GGUF file: {what}{self._where()} at byte {self.pos} "
                f"claims {n} items, more than the {left} bytes left can hold. The file is damaged or "
                "was written wrongly; re-download or re-convert it.",
                path=str(self.path),
            )
        return n

    def value_type(self) -> int:
        vtype = self.scalar(_U32, "a value type")
        if vtype not in _MIN_SIZE:
            raise InvalidModelFileError(
                f"{self.path} has an unknown GGUF value type {vtype}{self._where()} at byte "
                f"{self.pos - 4}: the file is corrupt or from a newer GGUF version than this reader "
                "knows; re-download or re-convert it.",
                path=str(self.path),
            )
        return vtype

    def value(self, vtype: int, *, whole: bool = False, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        item_type = self._array_header(depth)
        count = self.count(self.scalar(_U64, "an array length"), _MIN_SIZE[item_type], "an array")
        if count > _MAX_ARRAY_KEPT and not whole:
            self.skip_items(item_type, count, depth + 1)
            return _SkippedArray(count)
        if item_type in _SCALARS:
            fmt = _SCALARS[item_type]
            data = self.read(fmt.size * count, "an array")
            return GGUFArray(item_type, struct.unpack(f"<{count}{fmt.format[1:]}", data))
        if item_type == _STRING:
            return GGUFArray(item_type, self.strings(count))
        return GGUFArray(
            item_type, [self.value(item_type, whole=whole, depth=depth + 1) for _ in range(count)]
        )

    def strings(self, count: int, *, keep: bool = True) -> list[str]:
        """``count`` strings in a row (a vocabulary: the loop that must be fast), or skip them."""
        fh, unpack, size, pos = self.fh, _U64.unpack, self.size, self.pos
        out: list[str] = []
        for _ in range(count):
            head = fh.read(8)
            n = unpack(head)[0] if len(head) == 8 else size
            if n > size - pos - 8:  # raise the error this string deserves, where it is
                fh.seek(-len(head), os.SEEK_CUR)
                self.pos = pos
                self.string("a string")
            pos += 8 + n
            if not keep:
                fh.seek(n, os.SEEK_CUR)
                continue
            data = fh.read(n)
            if len(data) != n:  # the file shrank while being read
                raise _truncated(self.path, f"it ends at byte {pos - n + len(data)}")
            out.append(data.decode("utf-8", errors="replace"))
        self.pos = pos
        return out

    def _array_header(self, depth: int) -> int:
        if depth >= MAX_ARRAY_NESTING:
            raise InvalidModelFileError(
                f"{self.path} is a malformed GGUF file: arrays nest more than {MAX_ARRAY_NESTING} deep"
                f"{self._where()} at byte {self.pos}. No model needs that; the file is damaged or "
                "hostile. Re-download or re-convert it.",
                path=str(self.path),
            )
        return self.value_type()

    def skip_items(self, item_type: int, count: int, depth: int) -> None:
        if item_type in _SCALARS:
            self.skip(_SCALARS[item_type].size * count, "an array")
        elif item_type == _STRING:
            self.strings(count, keep=False)
        else:
            for _ in range(count):
                self.value(item_type, depth=depth)


def _truncated(path: Path, why: str) -> InvalidModelFileError:
    return InvalidModelFileError(
        f"{path} is a truncated or damaged GGUF file ({why}): the download or copy did not "
        "finish, or the file is corrupt. Download the model again and compare its size or "
        "checksum with the source.",
        path=str(path),
    )


def _malformed(path: Path, what: str) -> InvalidModelFileError:
    return InvalidModelFileError(
        f"{path} is a malformed GGUF file: {what}. The file was written wrongly or damaged; "
        "re-download or re-convert it.",
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


def _open_header(fh: BinaryIO, path: Path, size: int) -> tuple[_Reader, int, int, int]:
    """Check the magic and version; return a reader at the first metadata key, the version and
    the tensor and key/value counts."""
    magic = fh.read(4)
    if magic != _GGUF_MAGIC:
        raise _not_gguf(path, magic)
    reader = _Reader(fh, path, size)
    reader.pos = 4
    version = reader.scalar(_U32, "the version")
    if version not in _VERSIONS:
        if version & 0xFFFF == 0 and (version >> 16) in _VERSIONS:
            raise InvalidModelFileError(
                f"{path} is a big-endian GGUF file; llama.cpp and gpt4all read little-endian ones. "
                "Convert the model again without --bigendian.",
                path=str(path),
            )
        raise InvalidModelFileError(
            f"{path} is GGUF version {version}, which this reader does not know (it reads versions "
            f"{_VERSIONS[0]}-{_VERSIONS[-1]}): the file is damaged or from a newer GGUF. Re-download "
            "it, or re-convert it with a llama.cpp matching your runtime.",
            path=str(path),
        )
    count_fmt = _U32 if version == 1 else _U64
    tensor_count = reader.scalar(count_fmt, "the tensor count")
    kv_count = reader.scalar(count_fmt, "the metadata count")
    reader.count(kv_count, _MIN_KV, "the metadata")
    return reader, version, tensor_count, kv_count


def _read_metadata(reader: _Reader, kv_count: int, whole: frozenset[str] = frozenset()) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for index in range(kv_count):
        reader.key = ""
        key = reader.string(f"the key of metadata entry {index}")
        if key in metadata:
            raise _malformed(reader.path, f"its metadata key {key!r} appears twice")
        reader.key = key
        metadata[key] = reader.value(reader.value_type(), whole=key in whole)
    reader.key = ""
    return metadata


def _alignment(path: Path, metadata: dict[str, Any]) -> int:
    alignment = metadata.get("general.alignment", 32)
    if not _is_int(alignment) or alignment <= 0 or alignment & (alignment - 1):
        raise _wrong_type(path, "general.alignment", alignment, "a power of two")
    return int(alignment)


def _tensor_bytes(reader: _Reader, alignment: int) -> int:
    """Read one tensor's description; return where its data ends (past the data section's start)."""
    name = reader.string("a tensor name")
    n_dims = reader.scalar(_U32, "a tensor's dimension count")
    if n_dims > _MAX_DIMS:
        raise _malformed(reader.path, f"tensor {name!r} has {n_dims} dimensions (ggml has at most 4)")
    dims = [reader.scalar(_U64, "a tensor dimension") for _ in range(n_dims)]
    type_id, offset = reader.scalar(_U32, "a tensor type"), reader.scalar(_U64, "a tensor offset")
    ggml_type = GGML_TYPES.get(type_id)
    if ggml_type is None:
        removed = _REMOVED_TYPES.get(type_id)
        why = (
            f"ggml type {type_id} ({removed}), which llama.cpp removed: quantize the model again "
            "(llama.cpp's llama-quantize) or download a current file"
            if removed
            else f"ggml type {type_id}, which no runtime of this package knows: the file is damaged, "
            "or from a llama.cpp newer than this package (update langchain-localllm and the runtime)"
        )
        raise InvalidModelFileError(f"{reader.path}: tensor {name!r} has {why}.", path=str(reader.path))
    if dims and dims[0] % ggml_type.block_size:
        raise _malformed(
            reader.path,
            f"tensor {name!r} is {ggml_type.name} with rows of {dims[0]} elements, not a multiple "
            f"of its block of {ggml_type.block_size}",
        )
    if offset % alignment:
        raise _malformed(reader.path, f"tensor {name!r} starts at {offset}, not a multiple of {alignment}")
    return offset + math.prod(dims) // ggml_type.block_size * ggml_type.type_size


@lru_cache(maxsize=64)
def _read_gguf_cached(path: Path, size: int, _mtime_ns: int) -> GGUFInfo:
    with path.open("rb") as fh:
        reader, version, tensor_count, kv_count = _open_header(fh, path, size)
        metadata = _read_metadata(reader, kv_count)
        alignment = _alignment(path, metadata)
        reader.count(tensor_count, _MIN_TENSOR_INFO, "the tensor list")
        data_end = max((_tensor_bytes(reader, alignment) for _ in range(tensor_count)), default=0)
        data_start = -(-reader.pos // alignment) * alignment
    if data_start + data_end > size:
        raise _truncated(path, f"{size} bytes on disk, {data_start + data_end} expected")
    return GGUFInfo(path=path, version=version, metadata=metadata, tensor_count=tensor_count)


_STRINGS, _FLOATS = frozenset({_STRING}), frozenset({6, 12})
_INTEGERS = frozenset(_SCALARS) - _FLOATS - {7}  # not floats, not bool
_NUMBERS = _INTEGERS | _FLOATS
_VOCABULARY_ARRAYS = frozenset(
    {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"}
)


def read_gguf_vocabulary(path: str | os.PathLike[str]) -> GGUFVocabulary:
    """The tokenizer of a GGUF file, its arrays read whole and every value type-checked."""
    resolved = check_model_path(path)
    stat = resolved.stat()
    return _read_vocabulary_cached(resolved, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _read_vocabulary_cached(path: Path, size: int, _mtime_ns: int) -> GGUFVocabulary:
    with path.open("rb") as fh:
        reader, _, _, kv_count = _open_header(fh, path, size)
        metadata = _read_metadata(reader, kv_count, whole=_VOCABULARY_ARRAYS)
    return _vocabulary(path, metadata)


def _vocabulary(path: Path, metadata: dict[str, Any]) -> GGUFVocabulary:
    info = GGUFInfo(path=path, version=0, metadata=metadata)

    def array(key: str, item_types: frozenset[int], expected: str) -> GGUFArray | None:
        value = metadata.get(f"tokenizer.ggml.{key}")
        if value is None:
            return None
        if not isinstance(value, GGUFArray) or (value and value.item_type not in item_types):
            raise _wrong_type(path, f"tokenizer.ggml.{key}", value, expected)
        return value

    tokens: list[str] = array("tokens", _STRINGS, "an array of strings") or []
    scores = array("scores", _NUMBERS, "an array of numbers")
    types = array("token_type", _INTEGERS, "an array of integers")
    for key, values in (("scores", scores), ("token_type", types)):
        if values is not None and len(values) != len(tokens):
            raise _malformed(path, f"it has {len(tokens)} tokens but {len(values)} tokenizer.ggml.{key}")
    add_space_prefix = metadata.get("tokenizer.ggml.add_space_prefix")
    if add_space_prefix is not None and not isinstance(add_space_prefix, bool):
        raise _wrong_type(path, "tokenizer.ggml.add_space_prefix", add_space_prefix, "a boolean")
    special_ids = {}
    for key in metadata:
        if key.startswith("tokenizer.ggml.") and key.endswith("_token_id"):
            token_id = info.integer(key)
            if token_id is not None and token_id < len(tokens):  # llama.cpp ignores others too
                special_ids[key.removeprefix("tokenizer.ggml.").removesuffix("_token_id")] = token_id
    return GGUFVocabulary(
        model=info.string("tokenizer.ggml.model") or "",
        tokens=tokens,
        scores=scores if scores is None or scores.item_type in _FLOATS else [float(s) for s in scores],
        types=types,
        merges=array("merges", _STRINGS, "an array of strings") or [],
        special_ids=special_ids,
        add_space_prefix=add_space_prefix,
        pre=info.string("tokenizer.ggml.pre"),
    )


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
