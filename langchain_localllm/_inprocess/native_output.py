"""Silence (and capture) what native libraries print straight to the stderr file descriptor."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

_LOCK = threading.Lock()


class Captured:
    """Text the native code printed inside :func:`native_stderr`."""

    text: str = ""


@contextlib.contextmanager
def native_stderr(silence: bool = True) -> Iterator[Captured]:
    """Redirect file descriptor 2 to a temporary file while the block runs.

    Python's ``sys.stderr`` is untouched; only what C/C++ code writes with
    ``fprintf(stderr, ...)`` is caught. With ``silence=False`` nothing is redirected.
    """
    captured = Captured()
    if not silence:
        yield captured
        return
    with _LOCK, tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")
