"""Malformed and hostile GGUF files: a typed ``InvalidModelFileError``, fast and small, from the
reader and from every class that reads a model file before loading it.

Each case runs under a time limit (pytest-timeout, hypothesis' deadline) and a memory bound
(the peak of Python's allocations, traced, and the growth of the process's peak RSS).
"""

from __future__ import annotations

import itertools
import math
import struct
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from langchain_core.messages import HumanMessage

from langchain_localllm import ChatGPT4All, ChatLlamaCpp, GPT4All, LlamaCpp
from langchain_localllm._core.gguf.reader import GGML_TYPES, read_gguf, read_gguf_vocabulary
from langchain_localllm.errors import InvalidModelFileError, UnsupportedParameterError
from langchain_localllm.gpt4all.runtime import eos_text
from langchain_localllm.gpt4all.tokenizer import ENCODED_KINDS
from langchain_localllm.llamacpp.runtime import resolve_n_ctx
from tests.support.gguf_bytes import (
    ARRAY,
    BOOL,
    FLOAT32,
    FLOAT64,
    GGUF,
    INT8,
    INT16,
    INT32,
    INT64,
    SCALAR_FORMATS,
    STRING,
    UINT8,
    UINT16,
    UINT32,
    UINT64,
    Array,
    Raw,
    Tensor,
    model,
    spm_vocabulary,
)

pytestmark = pytest.mark.timeout(60)

TRACED_PEAK = 8 * 2**20  # the files here are a few KB: any real allocation is a runaway one
RSS_GROWTH = 64 * 2**20


def _peak_rss() -> int:
    if sys.platform == "win32":  # no resource module; the traced peak still bounds allocations
        return 0
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


@contextmanager
def bounded() -> Iterator[None]:
    """Assert that the block allocates little (traced peak, and peak RSS growth)."""
    rss = _peak_rss()
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < TRACED_PEAK, f"allocated {peak} bytes"
    assert _peak_rss() - rss < RSS_GROWTH


_names = itertools.count()


def write(tmp: Path, data: GGUF | bytes) -> Path:
    # A new name per file: the reader caches by path, size and modification time.
    path = tmp / f"m{next(_names)}.gguf"
    path.write_bytes(data if isinstance(data, bytes) else data.to_bytes())
    return path


def rejected(path: Path, match: str, read: Callable[[Path], Any] = read_gguf) -> InvalidModelFileError:
    with bounded(), pytest.raises(InvalidModelFileError, match=match) as caught:
        read(path)
    assert str(path) in str(caught.value)
    return caught.value


# --- the cases of the red-team report, one test each ------------------------------------------


@pytest.mark.parametrize("length", [2**40, 2**64 - 1], ids=["2^40", "2^64-1"])
def test_a_string_longer_than_the_file(tmp_path: Path, length: int) -> None:
    # Was MemoryError (2^40) and OverflowError (2^64-1).
    path = write(tmp_path, model(("general.name", STRING, Raw(struct.pack("<Q", length) + b"abc"))))
    rejected(path, rf"'general\.name'.* needs {length} bytes, \d+ are left")


def test_an_array_count_larger_than_the_file(tmp_path: Path) -> None:
    # Was ValueError (struct format too large) when the vocabulary was read whole.
    tokens = ("tokenizer.ggml.tokens", ARRAY, Array(UINT32, [1, 2, 3], count=2**62))
    path = write(tmp_path, model(tokens))
    rejected(path, r"'tokenizer\.ggml\.tokens'.* claims 4611686018427387904 items")
    rejected(path, "claims 4611686018427387904 items", read_gguf_vocabulary)
    rejected(path, "claims", lambda p: GPT4All(model=str(p)).get_num_tokens("hello"))


def test_alignment_zero(tmp_path: Path) -> None:
    # Was ZeroDivisionError.
    path = write(tmp_path, model(("general.alignment", UINT32, 0)))
    rejected(path, r"'general\.alignment' is the int 0, where a power of two belongs")


def test_arrays_nested_100000_deep(tmp_path: Path) -> None:
    # Was RecursionError.
    nested = struct.pack("<IQ", ARRAY, 1) * 99_999 + struct.pack("<IQ", UINT8, 0)
    path = write(tmp_path, model(("general.tags", ARRAY, Raw(nested))))
    rejected(path, r"arrays nest more than 8 deep \(metadata 'general\.tags'\)")


def test_chat_template_stored_as_an_integer(tmp_path: Path) -> None:
    # Was an AttributeError in ChatLlamaCpp.invoke, where the template was used.
    path = write(tmp_path, model(("tokenizer.chat_template", UINT32, 7)))
    assert read_gguf(path).name == "hostile"  # the file itself loads (llama.cpp would load it)
    match = r"'tokenizer\.chat_template' is the int 7, where a string belongs"
    rejected(path, match, lambda p: read_gguf(p).chat_template)
    rejected(path, match, lambda p: ChatLlamaCpp(model_path=str(p)).chat_template())
    rejected(path, match, lambda p: LlamaCpp(model_path=str(p)).chat_template())
    rejected(
        path, match, lambda p: ChatGPT4All(model=str(p)).get_num_tokens_from_messages([HumanMessage("hi")])
    )


def test_context_length_stored_as_a_string(tmp_path: Path) -> None:
    # Was a TypeError where LlamaCpp resolved its context length.
    path = write(tmp_path, model(("llama.context_length", STRING, "lots")))
    match = r"'llama\.context_length' is the str 'lots', where a non-negative integer belongs"
    rejected(path, match, lambda p: read_gguf(p).context_length)
    rejected(path, match, lambda p: resolve_n_ctx(p, None))


# --- more of the same kind ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ggml_type", "match"),
    [
        (99, r"ggml type 99, which no runtime of this package knows"),
        (36, r"ggml type 36 \(IQ4_NL_4_4\), which llama.cpp removed"),
    ],
)
def test_an_unknown_tensor_type(tmp_path: Path, ggml_type: int, match: str) -> None:
    # Was counted as 0 bytes (so a truncated file passed the size check).
    data = GGUF(metadata=model().metadata, tensors=[Tensor("w", (32, 2), ggml_type, nbytes=64)])
    rejected(write(tmp_path, data), rf"tensor 'w' has {match}")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (GGUF(version=4), "GGUF version 4, which this reader does not know"),
        (GGUF(version=3 << 16), "big-endian"),
        (GGUF(tensors=[Tensor("w", (1, 1, 1, 1, 1))]), "tensor 'w' has 5 dimensions"),
        (
            GGUF(tensors=[Tensor("w", (48,), 2, nbytes=18)]),
            "rows of 48 elements, not a multiple of its block of 32",
        ),
        (GGUF(tensors=[Tensor("w", (8,), offset=3)]), "starts at 3, not a multiple of 32"),
        (
            GGUF(metadata=[("general.name", STRING, "a"), ("general.name", STRING, "b")]),
            r"'general\.name' appears twice",
        ),
        (model(("general.name", 13, Raw(b"\0"))), "unknown GGUF value type 13"),
        (model(("general.alignment", UINT32, 48)), "where a power of two belongs"),
        (model(("general.alignment", FLOAT32, 32.0)), "where a power of two belongs"),
    ],
    ids=[
        "version",
        "big-endian",
        "dims",
        "block",
        "offset",
        "duplicate",
        "value-type",
        "alignment-48",
        "alignment-float",
    ],
)
def test_malformed_headers(tmp_path: Path, data: GGUF, match: str) -> None:
    rejected(write(tmp_path, data), match)


@pytest.mark.parametrize(
    ("field", "count_fmt"), [("metadata", 2), ("tensor list", 1)], ids=["kv-count", "tensor-count"]
)
def test_counts_larger_than_the_file(tmp_path: Path, field: str, count_fmt: int) -> None:
    data = bytearray(GGUF().to_bytes())
    data[8 * count_fmt : 8 * count_fmt + 8] = struct.pack("<Q", 2**62)
    rejected(write(tmp_path, bytes(data)), f"the {field} at byte 24 claims 4611686018427387904 items")


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (
            ("tokenizer.ggml.tokens", ARRAY, Array(INT32, [1, 2])),
            r"tokens' is an array of 2 items, where an array of strings",
        ),
        (("tokenizer.ggml.tokens", STRING, "abc"), r"tokens' is the str 'abc', where an array of strings"),
        (
            ("tokenizer.ggml.scores", ARRAY, Array(FLOAT32, [1.0])),
            r"has \d+ tokens but 1 tokenizer\.ggml\.scores",
        ),
        (("tokenizer.ggml.token_type", ARRAY, Array(STRING, ["x"])), r"token_type' is an array of 1 items"),
        (("tokenizer.ggml.eos_token_id", STRING, "2"), r"eos_token_id' is the str '2'"),
        (("tokenizer.ggml.add_space_prefix", UINT8, 1), r"add_space_prefix' is the int 1, where a boolean"),
        (
            ("tokenizer.ggml.model", ARRAY, Array(STRING, ["llama"])),
            r"model' is an array of 1 items, where a string",
        ),
    ],
    ids=[
        "tokens-ints",
        "tokens-string",
        "scores-length",
        "types-strings",
        "eos-string",
        "prefix-int",
        "model-array",
    ],
)
def test_a_malformed_vocabulary(tmp_path: Path, entry: tuple[str, int, Any], match: str) -> None:
    path = write(tmp_path, model(entry))
    rejected(path, match, lambda p: GPT4All(model=str(p)).get_num_tokens("hello"))
    rejected(path, match, lambda p: ChatGPT4All(model=str(p), chat_format="chatml").get_num_tokens("hello"))


def test_a_vocabulary_without_tokens(tmp_path: Path) -> None:
    path = write(tmp_path, model(("tokenizer.ggml.model", STRING, "gpt2"), vocabulary=False))
    rejected(path, "tokenizer is 'gpt2' but it has no tokenizer.ggml.tokens", lambda p: eos_text(p))


def test_a_well_formed_file_reads_whole(tmp_path: Path) -> None:
    path = write(tmp_path, model(("tokenizer.chat_template", STRING, "{{ messages }}")))
    with bounded():
        info = read_gguf(path)
        assert (info.architecture, info.name, info.context_length) == ("llama", "hostile", 4096)
        assert info.chat_template == "{{ messages }}"
        assert GPT4All(model=str(path)).get_num_tokens("hello world") == 2  # ▁hello ▁world
        assert eos_text(path) == "</s>"


# --- fuzzed ------------------------------------------------------------------------------------

KEYS = [
    "general.architecture",
    "general.name",
    "general.alignment",
    "llama.context_length",
    "tokenizer.chat_template",
    "tokenizer.ggml.model",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.add_space_prefix",
    "tokenizer.ggml.pre",
]
INTEGER_RANGES = {
    UINT8: (0, 2**8 - 1),
    INT8: (-(2**7), 2**7 - 1),
    UINT16: (0, 2**16 - 1),
    INT16: (-(2**15), 2**15 - 1),
    UINT32: (0, 2**32 - 1),
    INT32: (-(2**31), 2**31 - 1),
    UINT64: (0, 2**64 - 1),
    INT64: (-(2**63), 2**63 - 1),
}
# Lengths and counts a hostile file would write: zero, small, just past the file, huge.
HOSTILE_NUMBERS = [0, 1, 7, 99, 2**16, 2**31, 2**32 - 1, 2**40, 2**62, 2**63, 2**64 - 1]


def values(vtype: int, depth: int = 0) -> st.SearchStrategy[Any]:
    if vtype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[vtype]
        return st.integers(low, high)
    if vtype in (FLOAT32, FLOAT64):
        return st.floats(width=32 if vtype == FLOAT32 else 64)
    if vtype == BOOL:
        return st.booleans()
    if vtype == STRING:
        return st.sampled_from(["llama", "gpt2", "bert", "{{ bos_token }}", ""]) | st.text(max_size=12)
    item_types = [*SCALAR_FORMATS, STRING] + ([ARRAY] if depth < 3 else [])
    return st.sampled_from(item_types).flatmap(
        lambda item: st.builds(Array, st.just(item), st.lists(values(item, depth + 1), max_size=80))
    )


value_types = st.sampled_from([*SCALAR_FORMATS, STRING, ARRAY])
entries = st.tuples(st.sampled_from(KEYS) | st.text(max_size=8), value_types).flatmap(
    lambda kv: st.tuples(st.just(kv[0]), st.just(kv[1]), values(kv[1]))
)


@st.composite
def tensors(draw: st.DrawFn) -> Tensor:
    ggml_type = draw(st.sampled_from(list(GGML_TYPES)) | st.integers(0, 50))
    dims = (draw(st.sampled_from([256, 512, 48])), *draw(st.lists(st.integers(1, 3), max_size=3)))
    known = GGML_TYPES.get(ggml_type)
    nbytes = math.prod(dims) // known.block_size * known.type_size if known else draw(st.integers(0, 512))
    return Tensor(draw(st.text(max_size=6)), dims, ggml_type, nbytes=nbytes)


@st.composite
def gguf_files(draw: st.DrawFn) -> bytes:
    metadata = draw(st.lists(entries, max_size=8, unique_by=lambda e: e[0]))
    base = [("general.architecture", STRING, "llama")]
    if draw(st.booleans()):  # a real vocabulary, so that tokenizing goes past the first check
        base += spm_vocabulary()
    metadata = [e for e in base if e[0] not in {k for k, _, _ in metadata}] + metadata
    data = bytearray(
        GGUF(
            metadata=metadata,
            tensors=draw(st.lists(tensors(), max_size=3)),
            version=draw(st.sampled_from([3, 3, 3, 2, 1])),
        ).to_bytes()
    )
    for _ in range(draw(st.integers(0, 3))):  # corrupt it: a hostile number, a byte, a cut
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["u64", "u32", "byte", "cut"]))
        if kind == "cut":
            del data[at:]
        elif kind == "byte":
            data[at : at + 1] = bytes([draw(st.integers(0, 255))])
        else:
            number = draw(st.sampled_from(HOSTILE_NUMBERS)) % (2**64 if kind == "u64" else 2**32)
            packed = struct.pack("<Q" if kind == "u64" else "<I", number)
            data[at : at + len(packed)] = packed
    return bytes(data)


def _readers(path: Path) -> list[Callable[[], Any]]:
    """Everything that reads a model file without loading it."""

    def info() -> Any:
        read = read_gguf(path)
        return read.architecture, read.name, read.chat_template, read.context_length

    hello = [HumanMessage("hello world")]
    return [
        info,
        lambda: read_gguf_vocabulary(path),
        lambda: resolve_n_ctx(path, None),
        lambda: LlamaCpp(model_path=str(path)).chat_template(),
        lambda: ChatLlamaCpp(model_path=str(path)).chat_template(),
        lambda: GPT4All(model=str(path)).get_num_tokens("hello world, <s> again"),
        lambda: ChatGPT4All(model=str(path)).chat_template(),
        lambda: ChatGPT4All(model=str(path), chat_format="chatml").get_num_tokens_from_messages(hello),
        lambda: eos_text(path),
    ]


@pytest.fixture(scope="module")
def fuzz_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


@settings(
    max_examples=200,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=gguf_files())
def test_fuzzed_files_read_or_raise_the_typed_error(fuzz_dir: Path, data: bytes) -> None:
    path = write(fuzz_dir, data)
    with bounded():
        for read in _readers(path):
            try:
                read()
            except UnsupportedParameterError:
                # Only a well-formed vocabulary of a kind this tokenizer does not encode.
                assert read_gguf_vocabulary(path).model not in ENCODED_KINDS
            except InvalidModelFileError as error:
                assert str(path) in str(error)
    path.unlink()
