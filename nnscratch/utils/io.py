"""Crash-safe file writing."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

NAME_MAX = 255
"""The longest file name (in bytes) most file systems take."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path``; on success rename it onto ``path``.

    A process killed while writing leaves the previous ``path`` intact (and at
    worst a stray temporary file), because ``os.replace`` is atomic within
    one file system. Only a regular file (or a new path) is ever replaced: a
    directory, a device such as ``/dev/null`` or a FIFO is a ``ValueError``.
    A new file gets the mode a plain ``open()`` would give it (the umask is
    never touched); a replaced file keeps its mode.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> with atomic_write(target) as f:
    ...     _ = f.write(b"hello")
    >>> target.read_bytes()
    b'hello'
    """
    path = Path(path)
    mode = existing_regular_mode(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, temp_name = _create_temporary(directory, path.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def existing_regular_mode(path: Path) -> int | None:
    """The permission bits of ``path`` if it is a regular file, None if it
    does not exist; anything else (a directory, a device, a FIFO) is a
    ``ValueError``, so that it is never replaced."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(
            f"{_shown(path)}: expected a regular file or a new path. Received "
            f"{file_kind(info.st_mode)}, which is never replaced"
        )
    return stat.S_IMODE(info.st_mode)


def file_kind(mode: int) -> str:
    """What ``st_mode`` describes, in words (for error messages)."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((text for test, text in kinds if test(mode)), "a special file")


def _create_temporary(directory: Path, name: str) -> tuple[int, str]:
    """A new, empty file beside ``name`` whose name fits ``NAME_MAX``.

    Created with mode 0o666, which the kernel masks with the process umask
    exactly as for ``open()``; ``tempfile.mkstemp`` would give 0o600.
    """
    stem = os.fsencode(name)[: NAME_MAX - 32].decode(errors="ignore")
    for _ in range(100):
        temp_name = os.path.join(directory, f".{stem}.{secrets.token_hex(8)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(temp_name, flags, 0o666), temp_name
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {directory}")


def _shown(path: Path) -> str:
    """``path`` for a message, cut to a bounded length."""
    text = os.fspath(path)
    return text if len(text) <= 200 else text[:100] + "..." + text[-97:]
