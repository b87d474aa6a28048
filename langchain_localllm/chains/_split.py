"""Split text into chunks that fit a token budget, counting with the model's tokenizer.

Counting every candidate piece would mean thousands of tokenizer calls (HTTP calls
for server backends), so chunks are cut by characters at the text's own
characters-per-token ratio and only the resulting chunks are counted; a chunk
that is still too long is cut again, smaller.
"""

from __future__ import annotations

from collections.abc import Callable

_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]


def split_to_budget(
    text: str, budget: int, count: Callable[[str], int], overlap: int = 0, *, _depth: int = 0
) -> list[str]:
    """Chunks of ``text`` of at most ``budget`` tokens each (``overlap`` tokens shared)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    total = count(text)
    if total <= budget:
        return [text]
    chars_per_token = len(text) / max(total, 1)
    shrink = 0.9 * (0.75**_depth)
    size = max(16, int(budget * chars_per_token * shrink))
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=min(int(overlap * chars_per_token), size // 2),
        separators=_SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    chunks: list[str] = []
    for chunk in splitter.split_text(text):
        if _depth < 6 and count(chunk) > budget:
            chunks.extend(split_to_budget(chunk, budget, count, overlap, _depth=_depth + 1))
        else:
            chunks.append(chunk)
    if _depth or overlap:
        return chunks
    # Headings and short paragraphs left on their own join their neighbours.
    return ["\n\n".join(group) for group in group_to_budget(chunks, budget, count, "\n\n")]


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
