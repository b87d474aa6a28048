"""What a streamed token is, as text."""

from __future__ import annotations

from typing import Any

#: The type LangChain passes to ``on_llm_new_token``: text, or content blocks of chat models.
Token = str | list[str | dict[str, Any]]


def token_text(token: Token) -> str:
    """The text of a streamed token (content blocks are joined; non-text blocks dropped)."""
    if isinstance(token, str):
        return token
    parts = []
    for block in token:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)
