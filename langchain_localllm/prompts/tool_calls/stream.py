"""Incremental tool-call parsing: text in, message content and tool calls out.

:class:`ToolCallParser` reads a model's output piece by piece (as it streams) in one
registered syntax. Text before a tool-call section is released as content as soon as it
cannot be the start of a marker; each call is released once complete. However the output
is split, the same content and the same calls come out; a call that does not parse
becomes an invalid call carrying its raw text, never an exception or lost text.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from langchain_core.messages import InvalidToolCall, ToolCall, ToolCallChunk
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk

from langchain_localllm.prompts.tool_calls.registry import RawCall, ToolCallSyntax

__all__ = ["ParsedOutput", "ToolCallParser", "parse_tool_calls"]


@dataclass
class ParsedOutput:
    """Content and calls released by one step of a :class:`ToolCallParser`."""

    content: str = ""
    calls: list[RawCall] = field(default_factory=list)
    first_index: int = 0
    """Index of ``calls[0]`` among all the calls of the output."""

    def tool_calls(self) -> list[ToolCall]:
        """The valid calls as LangChain ``ToolCall`` dicts."""
        return [
            tool_call(name=c.name or "", args=c.args, id=c.id)
            for c in self.calls
            if c.error is None and isinstance(c.args, dict)
        ]

    def invalid_tool_calls(self) -> list[InvalidToolCall]:
        """The calls that did not parse, with their raw text and the reason."""
        return [
            invalid_tool_call(
                name=c.name,
                args=c.args if isinstance(c.args, str) else json.dumps(c.args),
                id=c.id,
                error=c.error,
            )
            for c in self.calls
            if c.error is not None or not isinstance(c.args, dict)
        ]

    def tool_call_chunks(self) -> list[ToolCallChunk]:
        """Every call as a ``ToolCallChunk``.

        An invalid call's raw text is sent as a JSON string literal: LangChain reads
        chunk arguments leniently (a cut-off object would pass as a call with half its
        arguments), and a string is never taken for arguments, so the call stays in
        ``invalid_tool_calls`` with its text kept.
        """
        return [
            tool_call_chunk(
                name=c.name,
                args=json.dumps(c.args) if c.error is None else json.dumps(str(c.args)),
                id=c.id,
                index=self.first_index + i,
            )
            for i, c in enumerate(self.calls)
        ]


class ToolCallParser:
    """Parse one model output, fed in pieces, in ``syntax`` (None: all text is content)."""

    def __init__(self, syntax: ToolCallSyntax | None) -> None:
        self.syntax = syntax
        self._buffer = ""
        self._section: str | None = "" if syntax is not None and syntax.implicit else None
        self._leading_open = syntax is not None and bool(syntax.leading)
        self._released = 0
        self._finished = False

    def feed(self, text: str) -> ParsedOutput:
        """Read more output; returns what can be released now."""
        if self._section is not None:
            self._section += text
            return self._section_step(final=False)
        self._buffer += text
        return self._content_step()

    @property
    def section_text(self) -> str | None:
        """The tool-call section read so far (from its start marker), or None outside one."""
        return self._section if self._section is not None and not self._finished else None

    @property
    def released(self) -> int:
        """How many calls were released so far."""
        return self._released

    def finish(self) -> ParsedOutput:
        """The output ended: release the rest (an unfinished call becomes invalid)."""
        if self._finished:
            return ParsedOutput(first_index=self._released)
        self._finished = True
        if self._section is None:
            content, self._buffer = self._buffer, ""
            return ParsedOutput(content, first_index=self._released)
        return self._section_step(final=True)

    # -- content before a section ------------------------------------------------------
    def _content_step(self) -> ParsedOutput:
        assert self.syntax is not None or self._section is None
        if self.syntax is None:
            content, self._buffer = self._buffer, ""
            return ParsedOutput(content)
        if self._leading_open:
            stripped = self._buffer.lstrip()
            if not stripped:
                return ParsedOutput()
            self._leading_open = False
            for marker in self.syntax.leading:
                if stripped.startswith(marker) or marker.startswith(stripped):
                    if marker.startswith(stripped) and not stripped.startswith(marker):
                        self._leading_open = True  # still could become the marker
                        return ParsedOutput()
                    return self._open_section(len(self._buffer) - len(stripped))
        starts = [(self._buffer.find(m), m) for m in self.syntax.start]
        found = [s for s in starts if s[0] >= 0]
        if found:
            return self._open_section(min(found)[0])
        hold = _held_back(self._buffer, self.syntax.start)
        content = self._buffer[: len(self._buffer) - hold]
        self._buffer = self._buffer[len(content) :]
        return ParsedOutput(content)

    def _open_section(self, at: int) -> ParsedOutput:
        content = self._buffer[:at]
        self._section, self._buffer = self._buffer[at:], ""
        out = self._section_step(final=False)
        out.content = content + out.content
        return out

    # -- the tool-call section -----------------------------------------------------------
    def _section_step(self, *, final: bool) -> ParsedOutput:
        assert self.syntax is not None
        assert self._section is not None
        parsed = self.syntax.parse(self._section, final)
        new = parsed.calls[self._released :]
        for call in new:
            if call.id is None:
                call.id = f"call_{uuid.uuid4().hex[:24]}"
        out = ParsedOutput(parsed.text if final else "", new, self._released)
        self._released += len(new)
        return out


def _held_back(text: str, markers: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that is the beginning of a marker."""
    longest = 0
    for marker in markers:
        for n in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:n]):
                longest = n
                break
    return longest


def parse_tool_calls(text: str, syntax: ToolCallSyntax | None) -> ParsedOutput:
    """Content and calls of a whole output."""
    parser = ToolCallParser(syntax)
    first, last = parser.feed(text), parser.finish()
    return ParsedOutput(first.content + last.content, first.calls + last.calls)
