"""A model's tokenizer rebuilt from the vocabulary in its GGUF file, in pure Python.

For runtimes whose API has no tokenizer (gpt4all): token counts without loading the
weights and without llama-cpp-python. Two vocabulary kinds:

* ``llama`` (SentencePiece: Llama 1/2, Mistral, Gemma, Phi-3...): llama.cpp's algorithm
  (merge the adjacent pair whose joined piece scores highest, bytes ``<0xNN>`` for what
  is left), the model's special tokens matched first. Counts equal llama.cpp's (tested
  against llama-cpp-python on real and generated models).
* ``gpt2`` (byte-level BPE: Llama 3, Qwen, GPT-NeoX...): merges by rank after a
  pre-tokenizer split. The split is an approximation with Python's ``re`` of the model's
  own regular expression (GPT-2's or Llama 3's), so counts may differ from llama.cpp's
  by a token here and there on text with unusual punctuation, digits or scripts.

Other kinds raise ``UnsupportedParameterError`` when asked to encode; any kind decodes
token ids as llama.cpp's ``detokenize(..., special=True)`` does (gpt4all's chat reads
the EOS text that way).

Only ``ChatGPT4All``/``GPT4All``/``GPT4AllEmbeddings`` use this module (llama.cpp has its
own tokenizer): a candidate to live under ``gpt4all/``.
"""

from __future__ import annotations

import heapq
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from langchain_localllm._core.gguf.reader import check_model_path, read_gguf_vocabulary
from langchain_localllm.errors import InvalidModelFileError, UnsupportedParameterError

__all__ = ["GGUFTokenizer", "gguf_tokenizer"]

_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _BYTE = 1, 2, 3, 4, 6
_SPACE = "\u2581"  # SentencePiece's visible space
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")
#: The tokenizer kinds :meth:`GGUFTokenizer.encode` implements.
ENCODED_KINDS = ("llama", "gpt2")
# llama.cpp's special token ids when the file names none.
_DEFAULT_SPECIAL_IDS = {"llama": {"unknown": 0, "bos": 1, "eos": 2}, "gpt2": {"bos": 11, "eos": 11}}

# GPT-2's pre-tokenizer, with \p{L} / \p{N} written for Python's re.
_LETTERS, _NUMBERS = r"[^\W\d_]", r"\d"
_GPT2_SPLIT = re.compile(
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?{_LETTERS}+| ?{_NUMBERS}+| ?(?:(?!{_LETTERS}|{_NUMBERS})\S)+|\s+(?!\S)|\s+"
)
_LLAMA3_SPLIT = re.compile(
    rf"(?i:'s|'t|'re|'ve|'m|'ll|'d)|(?:(?!{_LETTERS}|{_NUMBERS})[^\r\n])?{_LETTERS}+|{_NUMBERS}{{1,3}}"
    rf"| ?(?:(?!{_LETTERS}|{_NUMBERS})\S)+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of bytes to printable characters."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars, strict=True)}


_BYTE_CHARS = _bytes_to_unicode()
_CHAR_BYTES = {char: byte for byte, char in _BYTE_CHARS.items()}


@dataclass
class GGUFTokenizer:
    """Tokenizes text like the model whose GGUF vocabulary it was built from."""

    kind: str
    """``tokenizer.ggml.model``: "llama" (SentencePiece), "gpt2" (byte-level BPE), ..."""
    tokens: list[str]
    """Token texts by id."""
    scores: list[float]
    """SentencePiece scores by id."""
    types: list[int]
    """llama.cpp token types by id (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte)."""
    merges: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Byte-level BPE: rank of each mergeable pair."""
    add_space_prefix: bool = True
    """SentencePiece: a space starts the text (and each piece after a special token)."""
    pre: str = "default"
    """The pre-tokenizer's name (``tokenizer.ggml.pre``)."""
    special_ids: dict[str, int] = field(default_factory=dict)
    """Special token ids by name ("bos", "eos"...)."""
    source: str = ""
    """Where the vocabulary comes from (a file's path), for messages."""
    _ids: dict[str, int] = field(init=False, repr=False)
    _special: re.Pattern[str] | None = field(init=False, repr=False)
    _unknown_id: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ids = {}
        for index, token in enumerate(self.tokens):
            self._ids.setdefault(token, index)
        self._unknown_id = next((i for i, kind in enumerate(self.types) if kind == _UNKNOWN), 0)
        special = [
            token
            for token, kind in zip(self.tokens, self.types, strict=False)
            if kind in (_UNKNOWN, _CONTROL, _USER_DEFINED) and token
        ]
        special.sort(key=len, reverse=True)
        self._special = re.compile("|".join(map(re.escape, special))) if special else None

    # --- public ------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (special tokens written in it count as one; no BOS)."""
        if self.kind not in ENCODED_KINDS:
            raise UnsupportedParameterError(
                f"{self.source or 'This vocabulary'}: cannot count tokens without a runtime for "
                f"tokenizer model {self.kind!r} (known here: 'llama' SentencePiece and 'gpt2' "
                "byte-level BPE). Count with "
                "LlamaCpp(model_path=...).get_num_tokens instead.",
                parameter="tokenizer",
            )
        ids: list[int] = []
        prev_special = True
        for piece, token in self._split_special(text):
            if token is not None:
                ids.append(token)
                prev_special = True
                continue
            if self.kind == "llama":
                prefix = " " if self.add_space_prefix and prev_special else ""
                ids += self._spm((prefix + piece).replace(" ", _SPACE))
            else:
                ids += self._bpe(piece)
            prev_special = False
        return ids

    # --- special tokens ------------------------------------------------------------

    def _split_special(self, text: str) -> list[tuple[str, int | None]]:
        if self._special is None:
            return [(text, None)] if text else []
        parts: list[tuple[str, int | None]] = []
        start = 0
        for match in self._special.finditer(text):
            if match.start() > start:
                parts.append((text[start : match.start()], None))
            parts.append((match.group(), self._ids[match.group()]))
            start = match.end()
        if start < len(text):
            parts.append((text[start:], None))
        return parts

    # --- SentencePiece, as llama.cpp does it -------------------------------------------

    def _spm(self, text: str) -> list[int]:
        symbols = list(text)  # one symbol per character
        if not symbols:
            return []
        nxt = [*range(1, len(symbols)), -1]
        prv = list(range(-1, len(symbols) - 1))
        queue: list[tuple[float, int, int, str]] = []

        def add_bigram(left: int, right: int) -> None:
            if left == -1 or right == -1:
                return
            joined = symbols[left] + symbols[right]
            token = self._ids.get(joined)
            if token is None:
                return
            heapq.heappush(queue, (-self.scores[token], left, right, joined))

        for index in range(1, len(symbols)):
            add_bigram(index - 1, index)
        while queue:
            _, left, right, joined = heapq.heappop(queue)
            if not symbols[left] or not symbols[right] or symbols[left] + symbols[right] != joined:
                continue  # outdated: one side was merged since
            symbols[left], symbols[right] = joined, ""
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prv[nxt[right]] = left
            add_bigram(prv[left], left)
            add_bigram(left, nxt[left])
        out: list[int] = []
        index = 0
        while index != -1:
            self._resegment(symbols[index], out)
            index = nxt[index]
        return out

    def _resegment(self, text: str, out: list[int]) -> None:
        token = self._ids.get(text)
        if token is not None:
            out.append(token)
            return
        for byte in text.encode("utf-8"):
            byte_token = self._ids.get(f"<0x{byte:02X}>")
            out.append(byte_token if byte_token is not None else self._unknown_id)

    # --- byte-level BPE -----------------------------------------------------------------

    def _bpe(self, text: str) -> list[int]:
        split = _LLAMA3_SPLIT if self.pre in ("llama3", "llama-bpe", "llama-v3") else _GPT2_SPLIT
        out: list[int] = []
        for word in split.findall(text):
            out += _bpe_word("".join(_BYTE_CHARS[b] for b in word.encode("utf-8")), self.merges, self._ids)
        return out

    # --- decoding --------------------------------------------------------------------------

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids`` as llama.cpp's ``detokenize(..., special=True)`` gives it."""
        return b"".join(self._piece(token) for token in ids).decode("utf-8", errors="replace")

    def special_text(self, name: str) -> str:
        """The text of the special token ``name`` ("bos", "eos"...), "" if the model has none."""
        token = self.special_ids.get(name)
        return "" if token is None else self.decode([token])

    def _piece(self, token: int) -> bytes:
        if not 0 <= token < len(self.tokens):
            return b""
        text = self.tokens[token]
        kind = self.types[token] if token < len(self.types) else _NORMAL
        if kind in (_UNKNOWN, _CONTROL, _USER_DEFINED):
            return text.encode("utf-8")
        if kind == _NORMAL and self.kind == "gpt2":
            return _byte_level_bytes(text)
        if kind == _NORMAL:
            return text.replace(_SPACE, " ").encode("utf-8")
        if kind == _BYTE and self.kind != "gpt2" and _BYTE_TOKEN.fullmatch(text):
            return bytes([int(text[3:5], 16)])
        return b""  # unused tokens, as llama.cpp


def _byte_level_bytes(text: str) -> bytes:
    """The bytes a byte-level BPE token stands for (llama.cpp's ``llama_decode_text``)."""
    out = bytearray()
    for char in text:
        byte = _CHAR_BYTES.get(char)
        if byte is not None:
            out.append(byte)
        else:  # not in GPT-2's byte alphabet: llama.cpp's marker, as llama.cpp writes it
            out += b"[UNK_BYTE_0x" + char.encode("utf-8").hex().encode() + text.encode("utf-8") + b"]"
    return bytes(out)


def _bpe_word(word: str, merges: Mapping[tuple[str, str], int], ids: dict[str, int]) -> list[int]:
    """Merge ``word``'s characters by rank, lowest first (the leftmost of equal pairs first).

    As llama.cpp and tiktoken do it: the symbols form a linked list, candidate pairs wait in
    a heap by (rank, position) and go stale when a neighbour merges, so a word of n
    characters costs O(n log n), not O(n^2).
    """
    parts = list(word)
    nxt = [*range(1, len(parts)), -1]
    prv = list(range(-1, len(parts) - 1))
    queue: list[tuple[int, int, str, str]] = []

    def add_pair(left: int) -> None:
        right = nxt[left]
        if right != -1:
            rank = merges.get((parts[left], parts[right]))
            if rank is not None:
                heapq.heappush(queue, (rank, left, parts[left], parts[right]))

    for index in range(len(parts) - 1):
        add_pair(index)
    while queue:
        _, left, first, second = heapq.heappop(queue)
        right = nxt[left]
        if right == -1 or parts[left] != first or parts[right] != second:
            continue  # stale: one side merged since
        parts[left], parts[right] = first + second, ""
        nxt[left] = nxt[right]
        if nxt[right] != -1:
            prv[nxt[right]] = left
        if prv[left] != -1:
            add_pair(prv[left])
        add_pair(left)
    return [ids.get(part, 0) for part in parts if part]


def gguf_tokenizer(path: str | os.PathLike[str]) -> GGUFTokenizer:
    """The tokenizer of the GGUF model at ``path`` (built once per file version)."""
    resolved = check_model_path(path)
    stat = resolved.stat()
    return _tokenizer_for(str(resolved), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _tokenizer_for(path: str, _size: int, _mtime_ns: int) -> GGUFTokenizer:
    vocab = read_gguf_vocabulary(path)
    tokens = vocab.tokens
    if vocab.model in ENCODED_KINDS and not tokens:
        raise InvalidModelFileError(
            f"{path} is a malformed GGUF file: its tokenizer is {vocab.model!r} but it has no "
            "tokenizer.ggml.tokens. Re-download or re-convert it.",
            path=path,
        )
    merges: dict[tuple[str, str], int] = {}
    for rank, merge in enumerate(vocab.merges):
        left, _, right = merge.partition(" ")
        merges.setdefault((left, right), rank)
    defaults = {
        name: token
        for name, token in _DEFAULT_SPECIAL_IDS.get(vocab.model, {}).items()
        if token < len(tokens)
    }
    return GGUFTokenizer(
        kind=vocab.model,
        tokens=tokens,
        scores=vocab.scores if vocab.scores is not None else [0.0] * len(tokens),
        types=vocab.types if vocab.types is not None else [_NORMAL] * len(tokens),
        merges=merges,
        add_space_prefix=vocab.add_space_prefix
        if vocab.add_space_prefix is not None
        else vocab.model == "llama",
        pre=vocab.pre or "default",
        special_ids={**defaults, **vocab.special_ids},
        source=path,
    )
