"""Writing to the terminal: streamed text on stdout, everything else on stderr."""

from __future__ import annotations

import sys
import warnings
from typing import Any, TextIO

PROG = "localllm"


def note(message: str) -> None:
    """A one-line message for the user on stderr (never mixed into the streamed text)."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def error(message: str) -> None:
    """A one-line error on stderr."""
    first, *rest = str(message).strip().splitlines() or [""]
    print(f"{PROG}: error: {first}", file=sys.stderr, flush=True)
    for line in rest:
        print(f"  {line}", file=sys.stderr, flush=True)


def install_warning_format() -> None:
    """Show warnings as one ``localllm: warning: ...`` line instead of Python's two."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        print(f"{PROG}: warning: {message}", file=file or sys.stderr, flush=True)

    warnings.showwarning = show


def out(text: str, *, end: str = "", flush: bool = True, **kwargs: Any) -> None:
    """Write result text to stdout."""
    print(text, end=end, flush=flush, **kwargs)
