"""Which files of a folder get indexed, and reading them without leaving the folder.

A folder of documents is input the user did not write (a cloned repository, an unpacked
archive): its links may point anywhere, and it may hold pipes, sockets and devices, files
larger than memory and names with newlines or bytes that are not UTF-8. :func:`scan_folder`
walks it without following a symbolic link that leaves it (unless asked), never into
``/proc``, ``/sys`` or ``/dev``, and reports what it leaves out with the reason: a link out
of the folder, a dangling link, a link loop, a named pipe, a socket, a device, a file above
the size limit, a folder it cannot list. :func:`open_regular` opens a file to read only when
it still is a regular file within the size limit (a pipe swapped in later cannot make it
hang), and :func:`file_digest` hashes it as a stream. :func:`display_name` is how a path is
shown (in stats, warnings and errors) and recorded: unprintable characters and bytes that
are not UTF-8 escaped, so a name cannot forge lines of output.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from langchain_localllm.errors import DocumentLoadError

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "Candidate",
    "FolderScan",
    "display_name",
    "file_digest",
    "open_regular",
    "read_regular",
    "scan_folder",
]

DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
"""Files larger than this (64 MiB) are left out unless ``max_file_bytes`` says otherwise."""

_SYSTEM_TREES = ("/proc", "/sys", "/dev")  # files that are the machine's state, not documents
_BLOCK = 1 << 20
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def display_name(path: str | os.PathLike[str]) -> str:
    """``path`` as text that is safe to show: a byte that is not UTF-8 as ``\\xff``, an
    unprintable character as ``\\n``, ``\\x1b``, ``\\u202e`` (and ``\\`` as ``\\\\``, so
    that two names never look the same)."""
    text = os.fsencode(path).decode("utf-8", "surrogateescape")
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


@dataclass(frozen=True)
class Candidate:
    """A file to index."""

    path: str
    """The real path to read (no symbolic link in it)."""
    name: str
    """The path as it appears in the folder (a link's own name): its extension picks the loader."""
    key: str
    """:func:`display_name` of ``path``: how the file is recorded and shown."""
    size: int
    """Its size in bytes when the folder was scanned."""


@dataclass
class FolderScan:
    """What :func:`scan_folder` found."""

    files: list[Candidate] = field(default_factory=list)
    """Files to index, in path order, each real file once."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Entries left out, by :func:`display_name`, with the reason."""


def _in_system_tree(real: str) -> bool:
    return any(real == tree or real.startswith(tree + os.sep) for tree in _SYSTEM_TREES)


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(os.path.join(root, ""))


def _kind(mode: int) -> str | None:
    """What a special file is, None for a regular file or a folder."""
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a file: never opened"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a file: never opened"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a file: never opened"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "is not a regular file: never opened"
    return None


def _bytes_text(size: int) -> str:
    if size < 2**20:
        return f"{size:,} bytes"
    return f"{size / 2**20:,.1f} MiB" if size < 2**30 else f"{size / 2**30:,.1f} GiB"


def _too_large(size: int, max_bytes: int | None) -> str | None:
    if max_bytes is not None and size > max_bytes:
        return (
            f"is {_bytes_text(size)}, above the limit of {_bytes_text(max_bytes)} "
            "(max_file_bytes=...; --max-file-size for the CLI): not read"
        )
    return None


class _Walk:
    def __init__(self, root: str, suffixes: tuple[str, ...], follow: bool, max_bytes: int | None) -> None:
        self.root = root
        self.suffixes = suffixes
        self.follow = follow
        self.max_bytes = max_bytes
        self.scan = FolderScan()
        self.keys: set[str] = set()
        self.folders: set[tuple[int, int]] = set()

    def skip(self, path: str, reason: str) -> None:
        name = display_name(path)
        self.scan.skipped[name] = f"{name} {reason}"

    def wanted(self, name: str) -> bool:
        return os.path.splitext(name)[1].lower() in self.suffixes

    def add_file(self, real: str, name: str, info: os.stat_result) -> None:
        key = display_name(real)
        if key in self.keys:
            return  # reached twice (a link to a file of the folder): indexed once
        reason = _kind(info.st_mode) or _too_large(info.st_size, self.max_bytes)
        if reason is not None:
            self.skip(name, reason)
            return
        self.keys.add(key)
        self.scan.files.append(Candidate(path=real, name=name, key=key, size=info.st_size))

    def folder(self, real: str, info: os.stat_result) -> None:
        identity = (info.st_dev, info.st_ino)
        if identity in self.folders:
            return  # a link back to a folder already walked
        self.folders.add(identity)
        try:
            with os.scandir(real) as listing:
                entries = sorted(listing, key=lambda e: os.fsencode(e.name))
        except OSError as error:
            self.skip(real, f"is a folder that could not be listed ({error.strerror or error})")
            return
        for entry in entries:
            if not entry.name.startswith("."):  # hidden files and folders are left out
                self.entry(entry)

    def entry(self, entry: os.DirEntry[str]) -> None:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError as error:
            self.skip(entry.path, f"could not be examined ({error.strerror or error})")
            return
        if stat.S_ISLNK(info.st_mode):
            self.link(entry.path, entry.name)
        elif stat.S_ISDIR(info.st_mode):
            self.folder(entry.path, info)
        elif stat.S_ISREG(info.st_mode):
            if self.wanted(entry.name):
                self.add_file(entry.path, entry.path, info)
        else:
            self.skip(entry.path, _kind(info.st_mode) or "is not a regular file")

    def link(self, path: str, name: str) -> None:
        try:
            target = os.readlink(path)
        except OSError:  # pragma: no cover - it was a link a moment ago
            target = "?"
        try:
            info = os.stat(path)
        except FileNotFoundError:
            self.skip(path, f"is a dangling symbolic link (to {display_name(target)}): not followed")
            return
        except OSError as error:
            loop = error.errno == errno.ELOOP
            reason = "a symbolic link loop" if loop else f"a link that cannot be followed ({error.strerror})"
            self.skip(path, f"is {reason}: not followed")
            return
        real = os.path.realpath(path)
        is_folder = stat.S_ISDIR(info.st_mode)
        if not (is_folder or self.wanted(name) or self.wanted(real)):
            return  # a link to a file of a kind that is not indexed anyway
        if _in_system_tree(real):
            self.skip(path, f"is a symbolic link to {display_name(real)}, a system file: never read")
        elif not _inside(real, self.root) and not self.follow:
            self.skip(
                path,
                f"is a symbolic link to {display_name(real)}, outside the folder: not followed "
                "(follow_symlinks=True, or --follow-symlinks for the CLI, indexes it)",
            )
        elif is_folder:
            if not _inside(real, self.root):
                self.folder(real, info)  # inside ones are walked where they are
        elif self.wanted(name) or self.wanted(real):
            self.add_file(real, path, info)


def scan_folder(
    path: str | os.PathLike[str],
    suffixes: tuple[str, ...],
    *,
    follow_symlinks: bool = False,
    max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES,
) -> FolderScan:
    """The files with one of ``suffixes`` in ``path`` (a folder, searched recursively, hidden
    entries left out; or one file), and what was left out with the reason (module docstring)."""
    real = os.path.realpath(path)
    walk = _Walk(real, suffixes, follow_symlinks, max_file_bytes)
    if _in_system_tree(real):
        walk.skip(real, "is a system file or folder: never read")
        return walk.scan
    info = os.stat(real)
    if stat.S_ISDIR(info.st_mode):
        walk.folder(real, info)
    else:  # a file named by the caller: its own extension does not matter
        walk.add_file(real, os.fspath(path), info)
    return walk.scan


@contextlib.contextmanager
def open_regular(path: str, max_bytes: int | None = None, *, follow: bool = True) -> Iterator[int]:
    """A file descriptor of ``path`` for reading, once it is known to be a regular file of at
    most ``max_bytes``; a typed error otherwise (a pipe is opened without waiting for a
    writer). ``follow=False`` refuses a symbolic link (one swapped in after a scan)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise DocumentLoadError(f"{display_name(path)} does not exist.", path=display_name(path)) from None
    except OSError as error:  # permissions, a link swapped in, an I/O error
        raise DocumentLoadError(
            f"{display_name(path)} could not be read ({error.strerror or error}). Check its permissions.",
            path=display_name(path),
        ) from error
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DocumentLoadError(
                f"{display_name(path)} could not be read (it is a folder).", path=display_name(path)
            )
        reason = _kind(info.st_mode) or _too_large(info.st_size, max_bytes)
        if reason is not None:
            raise DocumentLoadError(f"{display_name(path)} {reason}.", path=display_name(path))
        os.set_blocking(fd, True)
        yield fd
    finally:
        os.close(fd)


def _blocks(fd: int, path: str, max_bytes: int | None) -> Iterator[bytes]:
    total = 0
    while block := os.read(fd, _BLOCK):
        total += len(block)
        if max_bytes is not None and total > max_bytes:  # it grew while being read
            raise DocumentLoadError(
                f"{display_name(path)} grew past {max_bytes:,} bytes while being read.",
                path=display_name(path),
            )
        yield block


def file_digest(path: str, max_bytes: int | None = None, *, follow: bool = True) -> str:
    """The SHA-256 of a regular file, read as a stream (memory stays one block)."""
    digest = hashlib.sha256()
    with open_regular(path, max_bytes, follow=follow) as fd:
        for block in _blocks(fd, path, max_bytes):
            digest.update(block)
    return digest.hexdigest()


def read_regular(path: str | Path, max_bytes: int | None = None, *, follow: bool = True) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; a typed error otherwise."""
    with open_regular(os.fspath(path), max_bytes, follow=follow) as fd:
        return b"".join(_blocks(fd, os.fspath(path), max_bytes))
