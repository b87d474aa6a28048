"""The pure-Python byte-level BPE: the same merges as the straightforward algorithm, in work
that grows as n log n with the length of a word (not n^2); token texts as llama.cpp gives them."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, strategies as st

from langchain_localllm.gpt4all.tokenizer import GGUFTokenizer


def reference_bpe(word: str, merges: dict[tuple[str, str], int]) -> list[str]:
    """Merge the lowest-ranked adjacent pair (the leftmost of equals) until none is left: the
    textbook algorithm, rescanning the whole word after every merge (quadratic)."""
    parts = list(word)
    while len(parts) > 1:
        ranked = [(merges[pair], i) for i, pair in enumerate(itertools.pairwise(parts)) if pair in merges]
        if not ranked:
            break
        _, i = min(ranked)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts


class CountingMerges(dict[tuple[str, str], int]):
    """Merge ranks that count how often they are looked up: the tokenizer's work."""

    lookups = 0

    def get(self, key: tuple[str, str], default: int | None = None) -> int | None:  # type: ignore[override]
        self.lookups += 1
        return super().get(key, default)


def bpe_tokenizer(merges: dict[tuple[str, str], int]) -> GGUFTokenizer:
    tokens = list(dict.fromkeys([*"abcd", *(a + b for a, b in merges)]))
    return GGUFTokenizer(
        kind="gpt2", tokens=tokens, scores=[0.0] * len(tokens), types=[1] * len(tokens), merges=merges
    )


@st.composite
def merge_tables(draw: st.DrawFn) -> dict[tuple[str, str], int]:
    """Merges as BPE training makes them: each joins two tokens that exist already."""
    tokens, merges = list("abcd"), {}
    for _ in range(draw(st.integers(0, 40))):
        pair = (draw(st.sampled_from(tokens)), draw(st.sampled_from(tokens)))
        if pair not in merges:
            merges[pair] = len(merges)
            tokens.append(pair[0] + pair[1])
    return merges


@given(merges=merge_tables(), word=st.text(alphabet="abcd", min_size=1, max_size=60))
def test_merges_equal_the_textbook_algorithms(merges: dict[tuple[str, str], int], word: str) -> None:
    tokenizer = bpe_tokenizer(merges)
    assert [tokenizer.tokens[i] for i in tokenizer.encode(word)] == reference_bpe(word, merges)


def merge_work(word: str, merges: dict[tuple[str, str], int]) -> int:
    counting = CountingMerges(merges)
    tokenizer = bpe_tokenizer(counting)
    pieces = [tokenizer.tokens[i] for i in tokenizer.encode(word)]
    assert "".join(pieces) == word
    assert len(pieces) < len(word)  # it merged (the same way as the textbook: tested above)
    return counting.lookups


def test_work_grows_linearly_with_the_length_of_a_word() -> None:
    # "aaaa...": every pair merges, up to pieces of 256 characters (the worst case of the old
    # algorithm, which rescanned the word after each of its ~n merges: 5.9 s for 8,000 chars).
    doubling = {("a" * 2**k, "a" * 2**k): k for k in range(8)}
    rng = random.Random(0)
    irregular = "".join(rng.choice("abcd") for _ in range(8_000))
    trained = {("a", "b"): 0, ("c", "d"): 1, ("ab", "cd"): 2, ("b", "a"): 3, ("ab", "ab"): 4, ("d", "a"): 5}
    for word, merges in (("a" * 8_000, doubling), (irregular, trained)):
        short, long = merge_work(word[:1_000], merges), merge_work(word, merges)
        assert long <= 8 * short * 1.1, (short, long)  # 8x the characters, about 8x the lookups
        assert long <= 3 * len(word)  # each merge looks up the two new pairs it makes, no more


def test_token_texts_as_llama_cpp_gives_them() -> None:
    # Byte-level BPE: text in GPT-2's byte alphabet ("Ġ" is a space); SentencePiece: "▁" is a
    # space, <0xNN> a byte; control and user-defined tokens as written; unused ones nothing.
    bpe = GGUFTokenizer(
        "gpt2", ["Ġhello", "<|eot|>", "Ã©", "x"], [0.0] * 4, [1, 3, 1, 5], special_ids={"eos": 1}
    )
    assert bpe.decode([0, 2, 3, 1]) == " helloé<|eot|>"
    assert bpe.special_text("eos") == "<|eot|>"
    assert bpe.special_text("bos") == ""
    # A character outside the byte alphabet (command-r's vocabulary has 1,403 such tokens):
    # llama.cpp writes a marker with the character's UTF-8 bytes and the token's text.
    assert GGUFTokenizer("gpt2", ["\u2122"], [0.0], [1]).decode([0]) == "[UNK_BYTE_0xe284a2\u2122]"
    spm = GGUFTokenizer("llama", ["\u2581hi", "<0x41>", "</s>", "<tool>"], [0.0] * 4, [1, 6, 3, 4])
    assert spm.decode([0, 1, 2, 3]) == " hiA</s><tool>"
