"""A text written as a model's own tokens, for the decoder to write it itself.

The token budget (``llamacpp.budgeted``) counts what an answer still needs in the model's
tokens when the budget is below the answer's bytes, and, when the model's next choice would
leave no room, writes the shortest completion itself. :class:`TokenWriter` gives those tokens:
the model's own tokenization when its pieces give the text back byte for byte (a tokenizer
that adds a space prefix does not), else one byte token per byte (SentencePiece byte
fallback, or a byte-level BPE's single-byte tokens), else nothing (then the budget is counted
in bytes, as for any grammar engine).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from langchain_localllm.llamacpp.runtime import import_llama_cpp

__all__ = ["TokenWriter"]


class TokenWriter:
    """Writes texts as the tokens of one loaded ``llama_cpp.Llama`` (one per model: :meth:`of`)."""

    _writers: weakref.WeakKeyDictionary[Any, TokenWriter] = weakref.WeakKeyDictionary()
    _lock = threading.Lock()

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._pieces: dict[int, bytes] = {}
        self._byte_tokens: dict[int, int] | None = None

    @classmethod
    def of(cls, llm: Any) -> TokenWriter:
        """The model's writer (made on first use, kept while the model lives)."""
        with cls._lock:
            writer = cls._writers.get(llm)
            if writer is None:
                writer = cls._writers[llm] = cls(llm)
            return writer

    def piece(self, token: int) -> bytes:
        """The token's text as the decoding loops emit it."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.llm.detokenize([token], special=True)
        return piece

    def tokens(self, text: str) -> list[int] | None:
        """Tokens whose pieces are exactly ``text``'s bytes, fewest of the two ways; None: none."""
        data = text.encode("utf-8")
        if not data:
            return []
        own = list(self.llm.tokenize(data, add_bos=False, special=False))
        if b"".join(self.piece(t) for t in own) == data:
            return own
        table = self._bytes()
        if all(byte in table for byte in data):
            return [table[byte] for byte in data]
        return None

    def count(self, text: str) -> int:
        """Tokens :meth:`tokens` writes ``text`` in (its bytes when it cannot)."""
        tokens = self.tokens(text)
        return len(tokens) if tokens is not None else len(text.encode("utf-8"))

    def _bytes(self) -> dict[int, int]:
        """byte -> a token that is exactly that byte (found once per model)."""
        if self._byte_tokens is not None:
            return self._byte_tokens
        table: dict[int, int] = {}
        for byte in range(256):  # byte-level BPE: a lone byte is one token of its own
            own = self.llm.tokenize(bytes([byte]), add_bos=False, special=False)
            if len(own) == 1 and self.piece(own[0]) == bytes([byte]):
                table[byte] = own[0]
        if len(table) < 256:  # SentencePiece: the byte-fallback tokens <0x00>..<0xFF>
            llama_cpp = import_llama_cpp()
            vocab = self.llm._model.vocab
            for token in range(int(llama_cpp.llama_vocab_n_tokens(vocab))):
                if llama_cpp.llama_vocab_get_attr(vocab, token) & llama_cpp.LLAMA_TOKEN_ATTR_BYTE:
                    piece = self.piece(token)
                    if len(piece) == 1:
                        table.setdefault(piece[0], token)
        self._byte_tokens = table
        return table
