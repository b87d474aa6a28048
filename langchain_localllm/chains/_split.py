"""Split text into chunks that fit a token budget, counting with the model's tokenizer.

Counting every candidate piece would mean thousands of tokenizer calls (HTTP calls
for server backends), so chunks are cut by characters at the text's own
characters-per-token ratio and only the resulting chunks are counted; a chunk
that is still too long is cut again, smaller.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]


def split_to_budget(text: str, budget: int, count: Callable[[str], int], overlap: int = 0) -> list[str]:
    """Chunks of ``text`` of at most ``budget`` tokens each (``overlap`` tokens shared).

    The chunks are balanced: as few as the budget allows, of about equal size, so that
    concurrent map steps finish together instead of leaving a straggler. The text is cut
    into small pieces at paragraph, line, sentence and word boundaries, and the pieces
    are packed into chunks.
    """
    total = count(text)
    if total <= budget:
        return [text]
    chars_per_token = len(text) / max(total, 1)
    # Packing works on estimates: keep room for their error, and for the overlap.
    limit = max(16.0, budget * 0.95 - overlap)
    pieces = _pieces(text, max(16, int(limit * chars_per_token / 8)))
    sizes = [len(piece) / chars_per_token for piece in pieces]
    fewest = max(1, math.ceil(sum(sizes) / limit))
    groups = min(
        (_pack(sizes, n, limit) for n in range(fewest, fewest + 6)),
        key=lambda g: (len(g), max(sum(sizes[i] for i in group) for group in g)),
    )
    chunks: list[str] = []
    for group in groups:
        chunk = "".join(pieces[i] for i in group).strip()
        if count(chunk) > budget:  # the estimate was off: cut this one by its own ratio
            chunks.extend(_split_plain(chunk, budget, count))
        else:
            chunks.append(chunk)
    if overlap:
        tail = int(overlap * chars_per_token)
        chunks = [chunks[0]] + [_tail(prev, tail) + cur for prev, cur in itertools.pairwise(chunks)]
    return chunks


def _pieces(text: str, size: int) -> list[str]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size, chunk_overlap=0, separators=_SEPARATORS, keep_separator="end", strip_whitespace=False
    )
    return splitter.split_text(text)


def _pack(sizes: list[float], n: int, limit: float) -> list[list[int]]:
    """Consecutive groups, each at most ``limit``, cut as near as possible to n equal shares."""
    share = sum(sizes) / n
    groups: list[list[int]] = []
    current: list[int] = []
    used = done = 0.0
    for i, size in enumerate(sizes):
        boundary = share * (len(groups) + 1)
        overshoot = done + size - boundary
        if current and (used + size > limit or overshoot > boundary - done):
            groups.append(current)
            current, used = [], 0.0
        current.append(i)
        used += size
        done += size
    groups.append(current)
    return groups


def _split_plain(text: str, budget: int, count: Callable[[str], int], depth: int = 0) -> list[str]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    chars_per_token = len(text) / max(count(text), 1)
    size = max(16, int(budget * chars_per_token * 0.9 * 0.75**depth))
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size, chunk_overlap=0, separators=_SEPARATORS, keep_separator="end"
    )
    chunks: list[str] = []
    for chunk in splitter.split_text(text):
        if depth < 5 and count(chunk) > budget:
            chunks.extend(_split_plain(chunk, budget, count, depth + 1))
        else:
            chunks.append(chunk)
    return chunks


def _tail(text: str, chars: int) -> str:
    """About the last ``chars`` characters of ``text``, starting at a word."""
    if chars <= 0:
        return ""
    cut = text[-chars:]
    space = cut.find(" ")
    return (cut[space + 1 :] if 0 <= space < len(cut) - 1 else cut) + "\n"


def group_to_budget(
    texts: list[str], budget: int, count: Callable[[str], int], joiner: str
) -> list[list[str]]:
    """Consecutive groups of ``texts`` whose joined token count stays within ``budget``."""
    groups: list[list[str]] = []
    current: list[str] = []
    used = 0
    sep = count(joiner) if joiner.strip() else 1
    for text in texts:
        size = count(text)
        if current and used + sep + size > budget:
            groups.append(current)
            current, used = [], 0
        used += (sep if current else 0) + size
        current.append(text)
    if current:
        groups.append(current)
    return groups
