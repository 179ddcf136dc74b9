"""Checks shared by every public entry point.

Each check raises a ``ValueError`` that names what was expected and what was
received, so a user sees the problem at the call that caused it and before any
weight changes.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


DTYPES = ("float32", "float64")
"""The dtypes a model computes in."""


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer. Received: {value!r}")
    return int(value)


def check_float_in_range(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float if it is a real number within the bounds."""
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if is_real and np.isfinite(value):
        above = value >= low if low_inclusive else value > low
        below = value <= high if high_inclusive else value < high
        if above and below:
            return float(value)
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    raise ValueError(
        f"{name}: expected a number in {left}{low}, {high}{right}. Received: {value!r}"
    )


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; the error lists them all."""
    options = sorted(choices)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: expected one of {options}. Received: {value!r}")
    return value


def lookup(kind: str, name: object, registry: Mapping[str, T]) -> T:
    """Return ``registry[name]``; an unknown name lists the known ones."""
    check_choice(kind, name, registry)
    return registry[name]  # type: ignore[index]


def all_values_finite(array: np.ndarray) -> bool:
    """Whether every value of the float ``array`` is finite, cheaply.

    A contiguous float32/float64 array is tested by its sum of squares, one
    BLAS dot product that reads it once and allocates nothing (~2x faster
    than ``np.isfinite(array).all()``, which writes a boolean array first):
    a NaN or an infinity makes it non-finite. So can finite values whose
    squares overflow; then, as for every other array, the elementwise test
    settles it.
    """
    if array.dtype in (np.float32, np.float64) and array.flags.c_contiguous:
        flat = array.reshape(-1)  # a view
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.dot(flat, flat)):
                return True
    return bool(np.isfinite(array).all())


def check_float_array(
    name: str, value: object, min_ndim: int = 1, check_finite: bool = True
) -> np.ndarray:
    """Return ``value`` as an ndarray of real numbers with no NaN or infinity.

    Memory-mapped and other array-likes are accepted; nothing is copied when
    ``value`` is already a real-valued ndarray. ``check_finite=False`` leaves
    the scan for NaN to the caller (who may do it in blocks).
    """
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating)
        or np.issubdtype(array.dtype, np.integer)
        or array.dtype == bool
    ):
        raise ValueError(
            f"{name}: expected an array of real numbers. Received dtype {array.dtype}"
        )
    if array.ndim < min_ndim:
        raise ValueError(
            f"{name}: expected an array with at least {min_ndim} dimension(s). "
            f"Received shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(
            f"{name}: expected at least one sample. Received shape {array.shape}"
        )
    if (
        check_finite
        and np.issubdtype(array.dtype, np.floating)
        and not all_values_finite(array)
    ):
        raise ValueError(f"{name}: expected finite values. Received NaN or infinity")
    return array


def check_input_shape(
    layer: str, x: np.ndarray, expected: tuple[int | None, ...]
) -> None:
    """Raise ``ValueError`` unless ``x.shape`` matches ``expected``.

    ``None`` in ``expected`` matches any size (used for the batch axis), and
    is shown as ``N`` in the message, as is the received batch size: the
    model checks shapes on a one-sample probe, whose size says nothing.

    Examples
    --------
    >>> check_input_shape("Dense", np.zeros((5, 3)), (None, 2))
    Traceback (most recent call last):
    ...
    ValueError: Dense: expected input of shape (N, 2). Received shape (N, 3)
    """
    matches = x.ndim == len(expected) and all(
        want is None or want == got
        for want, got in zip(expected, x.shape, strict=False)
    )
    if not matches:
        received = x.shape
        if x.ndim == len(expected) and expected and expected[0] is None:
            received = ("N",) + x.shape[1:]
        raise ValueError(
            f"{layer}: expected input of shape {_show_shape(expected)}. "
            f"Received shape {_show_shape(received)}"
        )


def _show_shape(shape: tuple) -> str:
    """``(None, 2)`` -> ``'(N, 2)'``; ``(3,)`` -> ``'(3,)'``."""
    parts = ["N" if size in (None, "N") else str(size) for size in shape]
    return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: a hostile file must not turn
    an error message into megabytes."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
