"""Data files for the command line: check paths, read ``.npz`` and CSV files.

A data file holds features ``X`` and, for training, targets ``y``: an
``.npz`` archive with arrays named ``X`` and ``y``, or a CSV file with a
header row, one column per feature, and the target in one column (the last,
unless named). Every problem is a ``ValueError`` whose one-line message
starts with the path and says what was expected and what was found.

Examples
--------
>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "points.csv"
>>> _ = path.write_text("a,b,label\\n0.5,1,0\\n2,3,1\\n")
>>> X, y = read_features(path)
>>> X.tolist(), y.tolist()
([[0.5, 1.0], [2.0, 3.0]], [0.0, 1.0])
>>> read_features(path, target_column="a")[1].tolist()
[0.5, 2.0]
"""

from __future__ import annotations

import array
import collections
import contextlib
import csv
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "as_rows",
    "check_input_file",
    "check_output_file",
    "read_csv",
    "read_features",
    "read_npz",
]


def check_input_file(path: Path, suffixes: Sequence[str]) -> None:
    """Refuse a missing path, a directory, or a file of another kind."""
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: expected a file. Received a directory")
    if path.suffix.lower() not in suffixes:
        raise ValueError(
            f"{path}: expected a {' or '.join(suffixes)} file. "
            f"Received a {path.suffix or 'suffix-less'} file"
        )


def check_output_file(path: Path) -> None:
    """Refuse an output path whose folder is missing, before any work is done."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{path}: expected an existing folder. {folder} is not one")
    if path.is_dir():
        raise ValueError(f"{path}: expected a file name. Received a directory")


def read_npz(path: Path, keys: Sequence[str]) -> list[np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` archive (no pickle)."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: expected an .npz archive (a zip file). It is not one"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            found = list(archive.files)
            arrays = {key: archive[key] for key in keys if key in found}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: expected an .npz archive ({error})") from None
    if len(arrays) < len(keys):
        raise ValueError(
            f"{path}: expected arrays {', '.join(keys)}. "
            f"Found {', '.join(found) or 'none'}"
        )
    return [arrays[key] for key in keys]


def read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Header names and the numbers below them, shaped (rows, columns).

    Rows are converted as they are read, so memory is the numbers (8 bytes
    a cell) plus one line of text, not the file (or even one wide row) as
    Python strings: a plain line is parsed by NumPy straight into floats, and
    only a line NumPy cannot read whole (quotes, a bad cell) goes through
    :mod:`csv`, cell by cell, to say what is wrong.
    """
    header, numbers = None, array.array("d")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip(" \t\r\n,"):
                    continue
                if header is None:
                    header = _checked_header(path, _cells(text))
                    continue
                row = _plain_numbers(text, len(header))
                if row is None:
                    row = array.array("d", _numbers(path, header, line, _cells(text)))
                numbers.extend(row)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path}: cannot read it as CSV text ({error})") from None
    if header is None or not numbers:
        raise ValueError(f"{path}: expected a header row and at least one data row")
    # (rows * columns,) -> (rows, columns); a copy NumPy owns.
    return header, np.array(numbers).reshape(-1, len(header))


def _cells(text: str) -> list[str]:
    """One CSV line as its cells (quotes understood)."""
    return next(csv.reader([text]), [])


def _plain_numbers(text: str, columns: int) -> np.ndarray | None:
    """The ``columns`` numbers of a line of plain comma-separated numbers, or
    None for anything else (quotes, digit grouping, a cell that is not a
    number, the wrong count), which the careful path then explains."""
    # NumPy reads an empty (or blank) cell as -1: such a line, like any
    # other NumPy would misread, takes the careful path.
    compact = "".join(text.split())
    if '"' in compact or "_" in compact or ",," in compact:
        return None
    if compact.startswith(",") or compact.endswith(","):
        return None
    with warnings.catch_warnings():
        # NumPy warns, rather than fails, when a cell is not a number.
        warnings.simplefilter("error")
        try:
            values = np.fromstring(text, dtype=np.float64, sep=",")
        except (ValueError, DeprecationWarning):
            return None
    return values if len(values) == columns else None


def _checked_header(path: Path, row: list[str]) -> list[str]:
    """The header's names, each once."""
    header = [name.strip() for name in row]
    if len(set(header)) != len(header):
        counts = collections.Counter(header)
        repeated = sorted(name for name, count in counts.items() if count > 1)
        shown = ", ".join(repr(name[:40]) for name in repeated[:5])
        raise ValueError(
            f"{path}: expected each column name once in the header. Received "
            f"{shown} more than once"
        )
    return header


def _numbers(
    path: Path, header: list[str], line: int, row: list[str]
) -> Iterator[float]:
    """One data row as floats, one at a time (no list of the row's numbers);
    a cell that is not a plain number is refused."""
    if len(row) != len(header):
        raise ValueError(
            f"{path}: line {line}: expected {len(header)} cells, as in the "
            f"header. Received {len(row)}"
        )
    for column, cell in enumerate(row):
        try:
            # float() also reads '1_000' (Python's digit grouping): not a
            # number in a CSV file.
            if "_" in cell:
                raise ValueError
            value = float(cell)
        except ValueError:
            raise ValueError(
                f"{path}: line {line}, column {header[column][:40]!r}: expected "
                f"a number. Received {cell[:40]!r}"
            ) from None
        yield value


def _column_index(path: Path, header: list[str], target: str) -> int:
    """The index of ``target``: a header name, or an index (negative counts back)."""
    if target in header:
        return header.index(target)
    with contextlib.suppress(ValueError):
        index = int(target)
        if -len(header) <= index < len(header):
            return index % len(header)
    raise ValueError(
        f"{path}: target column: expected a column name ({', '.join(header)}) or "
        f"an index in [{-len(header)}, {len(header)}). Received {target!r}"
    )


def read_features(
    path: Path, target_column: str | None = None, with_target: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` and, ``with_target``, ``y`` from an ``.npz`` (arrays X, y) or a CSV.

    A CSV has a header row; its target is ``target_column`` (a name or an
    index) or else the last column. Without ``with_target``, the CSV's
    columns are all features unless ``target_column`` names one to drop.
    """
    check_input_file(path, (".npz", ".csv"))
    if path.suffix.lower() == ".npz":
        if target_column is not None:
            raise ValueError(
                f"{path}: a target column applies to CSV files; an .npz holds "
                "arrays named X and y"
            )
        if with_target:
            X, y = read_npz(path, ("X", "y"))
            return X, y
        return read_npz(path, ("X",))[0], None
    header, values = read_csv(path)
    target = None
    if target_column is not None:
        target = _column_index(path, header, target_column)
    elif with_target:
        target = len(header) - 1
    if target is None:
        return values, None
    if len(header) < 2:
        raise ValueError(f"{path}: expected feature columns besides the target")
    features = [i for i in range(len(header)) if i != target]
    return values[:, features], (values[:, target] if with_target else None)


def as_rows(X: np.ndarray) -> np.ndarray:
    """Features as (N, F): a column becomes (N, 1), images are flattened."""
    X = np.asarray(X)
    if X.ndim == 1:
        return X.reshape(-1, 1)  # (N,) -> (N, 1)
    return X.reshape(len(X), -1)  # (N, ...) -> (N, prod(...))
