"""GGUF files written byte by byte, valid or not, without numpy or the ``gguf`` package.

For the base-install tests of the reader: every length, count and type is the caller's
to choose, including the ones a real writer would never produce.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
SCALAR_FORMATS = {
    UINT8: "<B",
    INT8: "<b",
    UINT16: "<H",
    INT16: "<h",
    UINT32: "<I",
    INT32: "<i",
    FLOAT32: "<f",
    BOOL: "<?",
    UINT64: "<Q",
    INT64: "<q",
    FLOAT64: "<d",
}
F32 = 0


@dataclass(frozen=True)
class Raw:
    """Bytes written as they are where a value would go (its type tag is given separately)."""

    data: bytes


@dataclass(frozen=True)
class Array:
    """A GGUF array of ``item_type`` (``count`` overrides the number of items written)."""

    item_type: int
    items: list[Any]
    count: int | None = None


@dataclass(frozen=True)
class Tensor:
    """A tensor's description (its data is zeros, written after the header)."""

    name: str
    dims: tuple[int, ...]
    ggml_type: int = F32
    offset: int | None = None
    nbytes: int | None = None
    """Data bytes to write for it (None: dims' product times 4, for F32)."""


@dataclass
class GGUF:
    """A GGUF file to write: metadata as (key, value type, value), tensors."""

    metadata: list[tuple[str, int, Any]] = field(default_factory=list)
    tensors: list[Tensor] = field(default_factory=list)
    version: int = 3
    alignment: int = 32

    def to_bytes(self) -> bytes:
        out = bytearray(b"GGUF" + struct.pack("<I", self.version))
        count = "<I" if self.version == 1 else "<Q"
        out += struct.pack(count, len(self.tensors)) + struct.pack(count, len(self.metadata))
        for key, vtype, value in self.metadata:
            out += string(key) + struct.pack("<I", vtype) + encode(vtype, value)
        offset, sizes = 0, []
        for tensor in self.tensors:
            size = tensor.nbytes if tensor.nbytes is not None else 4 * _product(tensor.dims)
            at = tensor.offset if tensor.offset is not None else offset
            out += string(tensor.name) + struct.pack("<I", len(tensor.dims))
            out += b"".join(struct.pack("<Q", d) for d in tensor.dims)
            out += struct.pack("<IQ", tensor.ggml_type, at)
            sizes.append(size)
            offset = -(-(at + size) // self.alignment) * self.alignment
        if self.tensors:
            out += b"\0" * (-len(out) % self.alignment)
            out += b"\0" * offset
        return bytes(out)


def string(text: str | bytes, length: int | None = None) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data) if length is None else length) + data


def encode(vtype: int, value: Any) -> bytes:
    if isinstance(value, Raw):
        return value.data
    if vtype in SCALAR_FORMATS:
        return struct.pack(SCALAR_FORMATS[vtype], value)
    if vtype == STRING:
        return string(value)
    assert vtype == ARRAY and isinstance(value, Array)
    count = len(value.items) if value.count is None else value.count
    head = struct.pack("<IQ", value.item_type, count)
    return head + b"".join(encode(value.item_type, item) for item in value.items)


def _product(dims: tuple[int, ...]) -> int:
    result = 1
    for d in dims:
        result *= d
    return result


def spm_vocabulary(eos: str = "</s>") -> list[tuple[str, int, Any]]:
    """Metadata of a small SentencePiece vocabulary (byte fallback, a control EOS)."""
    pieces = ["\u2581", *"abcdefghijklmnopqrstuvwxyz", "\u2581h", "\u2581he", "\u2581hel", "\u2581hell"]
    pieces += ["\u2581hello", "\u2581w", "\u2581wo", "\u2581wor", "\u2581worl", "\u2581world"]
    tokens = ["<unk>", "<s>", eos, *(f"<0x{b:02X}>" for b in range(256)), *pieces]
    types = [2, 3, 3, *([6] * 256), *([1] * len(pieces))]
    scores = [0.0] * (3 + 256) + [float(len(p)) for p in pieces]
    return [
        ("tokenizer.ggml.model", STRING, "llama"),
        ("tokenizer.ggml.tokens", ARRAY, Array(STRING, tokens)),
        ("tokenizer.ggml.scores", ARRAY, Array(FLOAT32, scores)),
        ("tokenizer.ggml.token_type", ARRAY, Array(INT32, types)),
        ("tokenizer.ggml.bos_token_id", UINT32, 1),
        ("tokenizer.ggml.eos_token_id", UINT32, 2),
    ]


def model(*extra: tuple[str, int, Any], vocabulary: bool = True) -> GGUF:
    """A small well-formed file: llama architecture, a vocabulary, one tensor, ``extra`` keys."""
    metadata: list[tuple[str, int, Any]] = [
        ("general.architecture", STRING, "llama"),
        ("general.name", STRING, "hostile"),
        ("llama.context_length", UINT32, 4096),
        *(spm_vocabulary() if vocabulary else []),
    ]
    keys = {key for key, _, _ in extra}
    metadata = [entry for entry in metadata if entry[0] not in keys] + list(extra)
    return GGUF(metadata=metadata, tensors=[Tensor("token_embd.weight", (8, 4))])
