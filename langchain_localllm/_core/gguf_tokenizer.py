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

Other kinds raise ``UnsupportedParameterError``.
"""

from __future__ import annotations

import heapq
import itertools
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from langchain_localllm._core.gguf_file import read_gguf_vocabulary
from langchain_localllm.errors import UnsupportedParameterError

__all__ = ["GGUFTokenizer", "gguf_tokenizer"]

_UNKNOWN, _CONTROL, _USER_DEFINED, _BYTE = 2, 3, 4, 6
_SPACE = "\u2581"  # SentencePiece's visible space

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


@dataclass
class GGUFTokenizer:
    """Tokenizes text like the model whose GGUF vocabulary it was built from."""

    kind: str
    tokens: list[str]
    scores: list[float]
    types: list[int]
    merges: dict[tuple[str, str], int] = field(default_factory=dict)
    add_space_prefix: bool = True
    pre: str = "default"
    _ids: dict[str, int] = field(init=False, repr=False)
    _special: re.Pattern[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ids = {}
        for index, token in enumerate(self.tokens):
            self._ids.setdefault(token, index)
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
            out.append(byte_token if byte_token is not None else self._unknown())

    def _unknown(self) -> int:
        return next((i for i, kind in enumerate(self.types) if kind == _UNKNOWN), 0)

    # --- byte-level BPE -----------------------------------------------------------------

    def _bpe(self, text: str) -> list[int]:
        split = _LLAMA3_SPLIT if self.pre in ("llama3", "llama-bpe", "llama-v3") else _GPT2_SPLIT
        out: list[int] = []
        for word in split.findall(text):
            out += _bpe_word("".join(_BYTE_CHARS[b] for b in word.encode("utf-8")), self.merges, self._ids)
        return out


def _bpe_word(word: str, merges: dict[tuple[str, str], int], ids: dict[str, int]) -> list[int]:
    parts = list(word)
    while len(parts) > 1:
        ranked = [(merges.get((a, b)), i) for i, (a, b) in enumerate(itertools.pairwise(parts))]
        candidates = [(rank, i) for rank, i in ranked if rank is not None]
        if not candidates:
            break
        _, i = min(candidates)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return [ids.get(part, 0) for part in parts]


def gguf_tokenizer(path: str | os.PathLike[str]) -> GGUFTokenizer:
    """The tokenizer of the GGUF model at ``path`` (built once per file)."""
    return _tokenizer_for(os.path.abspath(os.fspath(path)))


@lru_cache(maxsize=4)
def _tokenizer_for(path: str) -> GGUFTokenizer:
    meta: dict[str, Any] = read_gguf_vocabulary(path)
    kind = str(meta.get("tokenizer.ggml.model", ""))
    tokens = list(meta.get("tokenizer.ggml.tokens") or [])
    if kind not in ("llama", "gpt2") or not tokens:
        raise UnsupportedParameterError(
            f"{path}: cannot count tokens without a runtime for tokenizer model {kind!r} "
            "(known here: 'llama' SentencePiece and 'gpt2' byte-level BPE). Count with "
            "LlamaCpp(model_path=...).get_num_tokens instead.",
            parameter="tokenizer",
        )
    merges: dict[tuple[str, str], int] = {}
    for rank, merge in enumerate(meta.get("tokenizer.ggml.merges") or []):
        left, _, right = str(merge).partition(" ")
        merges.setdefault((left, right), rank)
    return GGUFTokenizer(
        kind=kind,
        tokens=tokens,
        scores=list(meta.get("tokenizer.ggml.scores") or [0.0] * len(tokens)),
        types=list(meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)),
        merges=merges,
        add_space_prefix=bool(meta.get("tokenizer.ggml.add_space_prefix", kind == "llama")),
        pre=str(meta.get("tokenizer.ggml.pre", "default")),
    )
