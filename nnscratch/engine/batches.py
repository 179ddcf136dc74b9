"""Where batches come from: arrays (in memory or memory-mapped) or iterables.

Training reads one batch at a time, so data larger than memory works either
as a memory-mapped array (``np.load(path, mmap_mode='r')``) or as any
re-iterable of ``(x_batch, y_batch)`` pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

# Rows checked at a time for NaN, so a memory-mapped file is scanned with
# bounded memory instead of materialising a full-size boolean array.
FINITE_CHECK_ROWS = 4096

Batch = tuple[np.ndarray, np.ndarray]


def is_batch_source(data: Any) -> bool:
    """Whether ``data`` is an iterable of batches rather than one array."""
    if isinstance(data, np.ndarray | list | tuple) or hasattr(data, "__array__"):
        return False
    return callable(data) or isinstance(data, Iterable)


def check_finite_in_chunks(name: str, array: np.ndarray) -> np.ndarray:
    """Raise ``ValueError`` on NaN or infinity, reading a block of rows at a time."""
    if np.issubdtype(array.dtype, np.floating):
        for start in range(0, len(array), FINITE_CHECK_ROWS):
            if not np.isfinite(array[start : start + FINITE_CHECK_ROWS]).all():
                raise ValueError(
                    f"{name}: expected finite values. Received NaN or infinity in "
                    f"rows {start}..{min(start + FINITE_CHECK_ROWS, len(array)) - 1}"
                )
    return array


class ArrayData:
    """Inputs and targets held as arrays (possibly memory-mapped), checked once.

    Parameters
    ----------
    X : ndarray of shape (N, ...)
    y : ndarray of shape (N, ...)
        Targets already in the form the loss takes.
    dtype : numpy dtype
        Each batch of ``X`` is converted to it as it is read.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, dtype: np.dtype) -> None:
        self.X, self.y, self.dtype = X, y, dtype
        self.n_samples = len(X)

    def batches(
        self, batch_size: int, rng: np.random.Generator | None = None
    ) -> Iterator[Batch]:
        """Yield ``(x, y)`` batches: shuffled with ``rng``, in order without.

        Indices within a shuffled batch are sorted, so a memory-mapped ``X``
        is read front to back; the order within a batch does not change the
        (summed) gradient.
        """
        order = None if rng is None else rng.permutation(self.n_samples)
        for start in range(0, self.n_samples, batch_size):
            if order is None:
                rows = slice(start, start + batch_size)
            else:
                rows = np.sort(order[start : start + batch_size])
            yield np.asarray(self.X[rows], dtype=self.dtype), self.y[rows]


class StreamData:
    """Batches drawn from an iterable, checked one at a time as they come.

    Parameters
    ----------
    name : str
        How errors name this data (``'X'`` or ``'X_val'``).
    source : iterable or callable
        An iterable of ``(x_batch, y_batch)`` pairs, iterated anew each epoch,
        or a function returning such an iterable.
    check : callable
        ``check(x, y) -> (x, y)``: validates a batch and returns it in the
        model's dtype and the loss's target form (raises ``ValueError``).
    """

    def __init__(
        self,
        name: str,
        source: Iterable | Callable[[], Iterable],
        check: Callable[[np.ndarray, np.ndarray], Batch],
    ) -> None:
        self.name, self.source, self.check = name, source, check

    def batches(
        self, batch_size: int | None = None, rng: np.random.Generator | None = None
    ) -> Iterator[Batch]:
        """Yield checked batches in the source's own order and sizes."""
        for item in iterate_source(self.name, self.source):
            if not isinstance(item, tuple | list) or len(item) != 2:
                raise ValueError(
                    f"{self.name}: expected batches as (x_batch, y_batch) pairs. "
                    f"Received {type(item).__name__}"
                )
            yield self.check(*item)


def iterate_source(name: str, source: Iterable | Callable[[], Iterable]) -> Iterator:
    """Start one pass over a batch source: call it if callable, else ``iter`` it."""
    iterable = source() if callable(source) else source
    try:
        return iter(iterable)
    except TypeError:
        raise ValueError(
            f"{name}: expected an array, an iterable of batches, or a function "
            f"returning one. Received {type(iterable).__name__}"
        ) from None
