"""Reading ``.npz`` archives without trusting them, and writing them atomically.

An ``.npz`` file is a zip archive of ``.npy`` entries. :class:`NpzReader`
reads an entry's header before its data, so an entry that declares a dtype,
a shape or a size other than the expected ones is refused unread; a Python
object array, which only pickle could read, is never read at all. This
module knows nothing about models.
"""

from __future__ import annotations

import ast
import errno
import lzma
import math
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import numpy as np

from nnscratch.utils.io import atomic_write, file_kind

NPY_MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 65536
"""Room for an ``.npy`` header beyond the array bytes themselves."""
MAX_FLOAT_BYTES = np.dtype(np.longdouble).itemsize
MAX_HOLE_BYTES = 1 << 20
"""Bytes of holes (parts of a sparse file that are not on disk) tolerated:
none in a file ``np.savez`` wrote; a hole reads as zeros it never held."""
MAX_EXTENTS = 100_000
"""Data extents of a sparse file looked at before the rest counts as holes."""
DEFLATE_MAX_RATIO = 1032
"""The most that deflate can expand data: ``file_size / compress_size``."""

# What zipfile raises for a damaged archive, besides ValueError: a bad CRC or
# header, a compression method it cannot undo, data that does not inflate.
ARCHIVE_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    RuntimeError,
)


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz``: a temporary file, then a
    rename, so ``path`` holds either the old file or the whole new one."""
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


class NpzReader:
    """The entries of an open ``.npz`` archive, read one checked array at a time.

    Use :func:`open_npz` to get one.
    """

    def __init__(self, archive: zipfile.ZipFile, file_bytes: int) -> None:
        self.archive = archive
        self.file_bytes = file_bytes
        infos = archive.infolist()
        self.entries = {info.filename.removesuffix(".npy"): info for info in infos}
        if len(self.entries) != len(infos):
            raise ValueError("expected every entry once. Received a name twice")
        check_entries_fit(infos, file_bytes)

    def names(self) -> set[str]:
        """The array names in the archive (``'x.npy'`` holds array ``'x'``)."""
        return set(self.entries)

    def check_header(
        self, name: str, kind: str, shape: tuple[int, ...], max_bytes: int = 0
    ) -> None:
        """Refuse entry ``name`` unless its header declares an array of dtype
        kind ``kind`` (``'f'`` float, ``'U'`` text) and ``shape``, of at most
        ``max_bytes`` bytes of data (when given), and the entry's size is
        exactly header plus data; nothing else is read."""
        self._check_declared_size(name, kind, shape, max_bytes)
        with self.archive.open(self.entries[name]) as entry:
            self._checked_header(entry, name, kind, shape, max_bytes)

    def read(
        self, name: str, kind: str, shape: tuple[int, ...], max_bytes: int = 0
    ) -> np.ndarray:
        """The array in entry ``name``, checked as in :meth:`check_header`."""
        self._check_declared_size(name, kind, shape, max_bytes)
        with self.archive.open(self.entries[name]) as entry:
            dtype, fortran_order = self._checked_header(
                entry, name, kind, shape, max_bytes
            )
            data_bytes = math.prod(shape) * dtype.itemsize
            # Reading to the end also makes zipfile check the entry's CRC.
            data = entry.read(data_bytes + 1)
        if len(data) != data_bytes:
            raise ValueError(
                f"{name}: expected {data_bytes} bytes. Received {len(data)}"
            )
        return np.frombuffer(data, dtype).reshape(
            shape, order="F" if fortran_order else "C"
        )

    def _check_declared_size(
        self, name: str, kind: str, shape: tuple[int, ...], max_bytes: int
    ) -> None:
        """Refuse, before opening it, an entry whose declared size no array
        of ``shape`` (in the widest float) or of ``max_bytes`` could have."""
        data_limit = max_bytes or math.prod(shape) * MAX_FLOAT_BYTES
        limit = MAX_HEADER_BYTES + data_limit
        declared = self.entries[name].file_size
        if declared > limit:
            raise ValueError(
                f"{name}: declares {declared} bytes, expected at most {limit}"
            )

    def _checked_header(
        self,
        entry: IO[bytes],
        name: str,
        kind: str,
        shape: tuple[int, ...],
        max_bytes: int,
    ) -> tuple[np.dtype, bool]:
        info = self.entries[name]
        header_size, dtype, declared_shape, fortran_order = read_npy_header(entry, name)
        if dtype.kind != kind or declared_shape != shape:
            expected = {"f": "a float array", "U": "a JSON string"}[kind]
            raise ValueError(
                f"{short(name)}: expected {expected} of shape {shape}. Received "
                f"{dtype} of shape {short(declared_shape)}"
            )
        data_bytes = math.prod(shape) * dtype.itemsize
        if max_bytes and data_bytes > max_bytes:
            raise ValueError(
                f"{name}: declares {data_bytes} bytes of data, expected at most "
                f"{max_bytes}"
            )
        if info.file_size != header_size + data_bytes:
            raise ValueError(
                f"{name}: declares {info.file_size} bytes, expected "
                f"{header_size + data_bytes} for its header and data"
            )
        return dtype, fortran_order


def short(value: object, limit: int = 80) -> str:
    """``value`` (a name, a shape) for a message, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_entries_fit(infos: list[zipfile.ZipInfo], file_bytes: int) -> None:
    """Refuse entries that claim more data than the archive holds.

    Each entry's stored bytes lie inside the file and, all together, fit in
    it (entries that share their bytes would multiply them); a stored entry
    holds exactly its size, and a deflated one expands at most as far as
    deflate can. So what reading an archive allocates is bounded by the
    file's size (times deflate's ratio), whatever its entries declare.
    """
    total = 0
    for info in infos:
        name = short(info.filename)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(
                f"{name}: expected a stored or deflated entry (as np.savez and "
                f"np.savez_compressed write). Received compression {info.compress_type}"
            )
        ratio = 1 if info.compress_type == zipfile.ZIP_STORED else DEFLATE_MAX_RATIO
        if info.file_size > info.compress_size * ratio + 64:
            raise ValueError(
                f"{name}: declares {info.file_size} bytes from {info.compress_size} "
                "stored bytes, more than its compression can hold"
            )
        if info.header_offset + info.compress_size > file_bytes:
            raise ValueError(
                f"{name}: declares data beyond the end of the {file_bytes}-byte file"
            )
        total += info.compress_size
    if total > file_bytes:
        raise ValueError(
            f"expected entries that fit in the {file_bytes}-byte file. Received "
            f"{total} bytes of entries (entries sharing their data)"
        )


def hole_bytes(fd: int, size: int) -> int:
    """Bytes of ``fd`` (of ``size`` bytes) that are holes, not on disk.

    Walks the data extents with ``SEEK_DATA``/``SEEK_HOLE``; where the file
    system cannot tell, it reports no holes. Leaves the offset where it was.
    """
    start, holes, position = os.lseek(fd, 0, os.SEEK_CUR), 0, 0
    try:
        for _ in range(MAX_EXTENTS):
            if position >= size:
                return holes
            data = os.lseek(fd, position, os.SEEK_DATA)
            holes += data - position
            position = os.lseek(fd, data, os.SEEK_HOLE)
        return holes + max(size - position, 0)
    except OSError as error:
        # ENXIO: no data after ``position``, the rest is a hole.
        return holes + size - position if error.errno == errno.ENXIO else 0
    finally:
        os.lseek(fd, start, os.SEEK_SET)


def open_regular(path: str | os.PathLike) -> IO[bytes]:
    """Open ``path`` for reading if it is a regular file (never blocking on
    a FIFO); a missing file is a ``FileNotFoundError``, anything else that
    is not a regular file (a directory, ``/dev/zero``, a FIFO) a ``ValueError``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, "no such file", short(os.fspath(path), 200)
        ) from None
    except IsADirectoryError:
        raise ValueError("expected a regular file. Received a directory") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ValueError(f"expected a regular file. Received {file_kind(mode)}")
    return os.fdopen(fd, "rb")


@contextmanager
def open_npz(path: str | os.PathLike) -> Iterator[NpzReader]:
    """Open ``path`` as an ``.npz`` archive; a ``ValueError`` if it is not one
    (or is not a regular file, or is sparse), ``FileNotFoundError`` if missing."""
    # Opening the file ourselves closes it even when reading fails midway.
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        holes = hole_bytes(handle.fileno(), size)
        if holes > MAX_HOLE_BYTES:
            raise ValueError(
                f"expected a file whose bytes are on disk. Received a sparse "
                f"file: {holes} of its {size} bytes are holes"
            )
        if not zipfile.is_zipfile(handle):
            raise ValueError("expected an .npz (zip) archive; this is not one")
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            yield NpzReader(archive, size)


def read_npy_header(entry: IO[bytes], key: str) -> tuple[int, np.dtype, tuple, bool]:
    """Parse an ``.npy`` header (format 1.0, 2.0 or 3.0) without trusting it.

    Returns the header's size in bytes, the dtype, the shape and whether the
    data is in Fortran order. The header is a Python literal, read with
    ``ast.literal_eval`` (no code runs), at most ``MAX_HEADER_BYTES`` long.
    numpy's own reader is not used: a damaged header made it raise
    SyntaxError or tokenize.TokenError, and an old alias in it a warning.
    """
    prefix = entry.read(8)
    version = prefix[6] if len(prefix) == 8 and prefix[:6] == NPY_MAGIC else None
    if version not in (1, 2, 3):
        raise ValueError(f"{key}: expected an .npy entry (format 1.0 to 3.0)")
    length_bytes = 2 if version == 1 else 4
    length = int.from_bytes(entry.read(length_bytes), "little")
    if length > MAX_HEADER_BYTES:
        raise ValueError(
            f"{key}: expected an .npy header of at most {MAX_HEADER_BYTES} bytes"
        )
    text = entry.read(length)
    try:
        header = ast.literal_eval(text.decode("utf-8" if version == 3 else "latin-1"))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        header = None
    if not (
        isinstance(header, dict)
        and set(header) == {"descr", "fortran_order", "shape"}
        and isinstance(header["descr"], str)
        and isinstance(header["fortran_order"], bool)
        and isinstance(header["shape"], tuple)
        and all(
            isinstance(size, int) and not isinstance(size, bool) and size >= 0
            for size in header["shape"]
        )
    ):
        raise ValueError(
            f"{key}: expected an .npy header with descr, fortran_order and shape"
        )
    return (
        8 + length_bytes + length,
        plain_dtype(header["descr"], key),
        header["shape"],
        header["fortran_order"],
    )


def plain_dtype(descr: str, key: str) -> np.dtype:
    """The dtype a header names, if it is a plain one such as ``'<f4'``.

    A byte order, a kind letter (bool, integer, float, complex, bytes or
    text) and a size: nothing structured, no objects (which only pickle
    could read) and no alias numpy would warn about.
    """
    if descr.lstrip("<>|=").startswith("O"):
        raise ValueError(
            f"{key}: holds Python objects, which only pickle could read; "
            "pickled data is never loaded"
        )
    try:
        if re.fullmatch(r"[<>|=]?[biufcSU][0-9]{1,9}", descr):
            return np.dtype(descr)
    except TypeError:  # a size the kind does not have, e.g. 'f3'
        pass
    raise ValueError(f"{key}: expected a plain array dtype. Received {short(descr)!r}")
