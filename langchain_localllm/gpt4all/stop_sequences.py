"""Apply stop sequences to a token stream as it arrives.

For runtimes that cannot stop on a string themselves (gpt4all): text that could
be the start of a stop sequence is held back until it is clear, so no partial
stop string is ever emitted, and the stop is seen at the token that completes it.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopScanner:
    """Feed tokens in; get back the text that is safe to emit, and whether to stop."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add ``text``; return what can be emitted now. Sets ``stopped`` at a stop sequence."""
        if self.stopped:
            return ""
        if not self.stops:
            return text
        buffer = self._held + text
        hits = [i for i in (buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped, self._held = True, ""
            return buffer[: min(hits)]
        keep = self._longest_stop_prefix_suffix(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """At the end of generation: the held-back text (it never completed a stop)."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _longest_stop_prefix_suffix(self, buffer: str) -> int:
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:n]):
                    best = n
                    break
        return best
