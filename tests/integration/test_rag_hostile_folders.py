"""A folder of documents cannot be escaped: links out, loops, pipes, huge files and odd names.

A folder to index is input the user did not write (a cloned repository, an unpacked archive).
The red-team pass of issue 20 found that ``index_folder`` indexed links to ``../secret`` and
``/etc/hostname`` under the link's name, read ``/proc/self/environ``, skipped loops, dangling
links and FIFOs without a word, read a file larger than memory whole for its hash, and let a
newline in a file name reach its stats raw. Each case is built here in a real temporary folder
(a 64 GiB sparse file costs no disk) and indexed for real.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_localllm.errors import DocumentLoadError
from langchain_localllm.rag import IndexStats, index_folder, load_file
from langchain_localllm.rag.files import display_name


def _index(folder: Path, **kwargs: Any) -> tuple[IndexStats, list[str]]:
    """Index ``folder`` in a thread that must finish within 60 s (a FIFO must not hang it)."""
    result: dict[str, Any] = {}

    def run() -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                retriever = index_folder(
                    folder, DeterministicFakeEmbedding(size=8), show_progress=False, **kwargs
                )
                result["stats"] = retriever.vectorstore.last_index_stats  # type: ignore[attr-defined]
            except Exception as error:
                result["error"] = error
            result["warnings"] = [str(w.message) for w in caught]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "index_folder hung"
    if "error" in result:
        raise result["error"]
    return result["stats"], result["warnings"]


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """``docs/`` with one good file and every trap; ``secret/secret.txt`` beside it."""
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "secret.txt").write_text("The launch code is 0000.", encoding="utf-8")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "good.txt").write_text("Paris is the capital of France.", encoding="utf-8")
    (docs / "sub" / "inner.md").write_text("Dogs bark at strangers.", encoding="utf-8")
    (docs / "relative-out.txt").symlink_to("../secret/secret.txt")
    (docs / "absolute-out.txt").symlink_to("/etc/hostname")
    (docs / "environ.txt").symlink_to("/proc/self/environ")
    (docs / "inside-link.md").symlink_to("sub/inner.md")  # inside: the same file, indexed once
    (docs / "loop-a.txt").symlink_to("loop-b.txt")
    (docs / "loop-b.txt").symlink_to("loop-a.txt")
    (docs / "dangling.txt").symlink_to("nowhere.txt")
    (docs / "secret-folder").symlink_to("../secret", target_is_directory=True)
    (docs / "sub" / "up").symlink_to("..", target_is_directory=True)  # a folder loop
    os.mkfifo(docs / "pipe.txt")
    with open(docs / "huge.txt", "wb") as handle:
        handle.truncate(64 * 2**30)  # sparse: no disk used
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(docs / "socket.md"))
    server.close()
    return docs


def _names(paths: list[str] | dict[str, str]) -> list[str]:
    return sorted(Path(p).name for p in paths)


def test_nothing_outside_the_folder_or_special_is_read_and_each_is_reported(hostile: Path) -> None:
    stats, warned = _index(hostile)
    assert _names(stats.added) == ["good.txt", "inner.md"]
    skipped = {Path(name).name: reason for name, reason in stats.skipped.items()}
    assert set(skipped) == {
        "relative-out.txt",
        "absolute-out.txt",
        "environ.txt",
        "loop-a.txt",
        "loop-b.txt",
        "dangling.txt",
        "secret-folder",
        "pipe.txt",
        "huge.txt",
        "socket.md",
    }
    secret = str((hostile.parent / "secret" / "secret.txt").resolve())
    assert f"symbolic link to {secret}, outside the folder: not followed" in skipped["relative-out.txt"]
    assert "follow_symlinks=True" in skipped["relative-out.txt"]
    assert f"symbolic link to {os.path.realpath('/etc/hostname')}, outside" in skipped["absolute-out.txt"]
    assert "a system file: never read" in skipped["environ.txt"]
    assert "symbolic link loop" in skipped["loop-a.txt"] and "symbolic link loop" in skipped["loop-b.txt"]
    assert "dangling symbolic link (to nowhere.txt)" in skipped["dangling.txt"]
    assert "outside the folder" in skipped["secret-folder"]
    assert "named pipe (FIFO)" in skipped["pipe.txt"]
    assert "is 64.0 GiB, above the limit of 64.0 MiB" in skipped["huge.txt"]  # told before reading
    assert "socket" in skipped["socket.md"]
    assert sorted(warned) == sorted(f"Skipped: {reason}" for reason in stats.skipped.values())
    assert stats.chunks_embedded == 2


def test_following_links_out_indexes_them_but_never_system_files(hostile: Path) -> None:
    stats, _ = _index(hostile, follow_symlinks=True)
    added = _names(stats.added)
    assert added == ["good.txt", "hostname", "inner.md", "secret.txt"]  # secret.txt once (two links)
    skipped = {Path(name).name for name in stats.skipped}
    assert "environ.txt" in skipped  # /proc is never read, whatever is asked
    assert {"relative-out.txt", "absolute-out.txt", "secret-folder"}.isdisjoint(skipped)


def test_the_size_limit_is_a_parameter(hostile: Path) -> None:
    (hostile / "huge.txt").unlink()
    (hostile / "medium.txt").write_text("words " * 400, encoding="utf-8")  # 2,400 bytes
    stats, _ = _index(hostile, max_file_bytes=1000)
    assert "medium.txt" in _names(stats.skipped)
    stats, _ = _index(hostile, max_file_bytes=None)
    assert "medium.txt" in _names(stats.added)


def test_odd_names_are_indexed_and_shown_escaped(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "new\nline.txt").write_text("A name with a newline.", encoding="utf-8")
    with open(os.path.join(os.fsencode(docs), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"A name that is not UTF-8.")
    (docs / "\x1b[31mred.txt").write_text("A name with a terminal escape.", encoding="utf-8")
    (docs / "bad\nbinary.txt").write_bytes(b"\x00\x01")
    stats, warned = _index(docs, persist_directory=tmp_path / "index", on_error="skip")
    root = str(docs.resolve())
    assert sorted(stats.added) == sorted(
        [f"{root}/new\\nline.txt", f"{root}/caf\\xe9.txt", f"{root}/\\x1b[31mred.txt"]
    )
    assert list(stats.skipped) == [f"{root}/bad\\nbinary.txt"]
    for text in [*stats.added, *stats.skipped, *stats.skipped.values(), *warned]:
        assert "\n" not in text and "\x1b" not in text
        text.encode("utf-8")  # no surrogate escapes left
    again, _ = _index(docs, persist_directory=tmp_path / "index", on_error="skip")
    assert sorted(again.unchanged) == sorted(stats.added)  # the escaped names are stable keys


def test_loading_a_pipe_or_a_huge_file_directly_is_a_typed_error(hostile: Path) -> None:
    with pytest.raises(DocumentLoadError, match="named pipe"):
        load_file(hostile / "pipe.txt")  # returns at once: a pipe is never waited on
    with pytest.raises(DocumentLoadError, match="above the limit"):
        load_file(hostile / "huge.txt")


def test_a_folder_of_traps_only_says_what_it_left_out(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "only-a-pipe.txt")
    with pytest.raises(DocumentLoadError, match=r"holds no file to index.*only-a-pipe.txt is a named pipe"):
        _index(tmp_path)


def test_hashing_streams_the_file(tmp_path: Path) -> None:
    size = 256 * 2**20
    path = tmp_path / "zeros.txt"
    with open(path, "wb") as handle:
        handle.truncate(size)
    code = (
        "import re, sys\n"
        "from langchain_localllm.rag.files import file_digest\n"
        "peak = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "before = peak()\n"
        "print(file_digest(sys.argv[1]), (peak() - before) // 1024)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    digest, grown_mb = child.stdout.split()
    expected = hashlib.sha256()
    block = bytes(2**20)
    for _ in range(size // len(block)):
        expected.update(block)
    assert digest == expected.hexdigest()
    assert int(grown_mb) < 16  # a 256 MiB file, read one block at a time


def test_the_display_name_is_one_escaped_line_for_any_name() -> None:
    assert display_name("/docs/plain.txt") == "/docs/plain.txt"
    assert display_name("/docs/é.txt") == "/docs/é.txt"
    assert display_name("/docs/a\nb\tc\rd.txt") == "/docs/a\\nb\\tc\\rd.txt"
    assert display_name(os.fsdecode(b"/docs/caf\xe9.txt")) == "/docs/caf\\xe9.txt"
    assert display_name("/docs/\u202etxt.exe") == "/docs/\\u202etxt.exe"  # no right-to-left trick
    assert display_name("/docs/back\\slash") == "/docs/back\\\\slash"  # never equal to an escape
