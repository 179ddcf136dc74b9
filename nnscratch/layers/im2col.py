"""Sliding windows over images: the shared machinery of Conv2D and pooling.

A layer that slides a ``(kh, kw)`` window over ``(N, C, H, W)`` images with
strides ``(sh, sw)`` sees ``OH * OW`` window positions, where
``OH = (H + 2*ph - kh) // sh + 1`` (rows that no window reaches are dropped,
as in torch). Forward reads every window (:func:`sliding_windows`,
:func:`im2col`); backward adds each window's gradient back onto the pixels it
covered (:func:`col2im`).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pair = tuple[int, int]

BLOCK_BYTES = 4 * 2**20
"""The most bytes of ``cols`` (or dL/dcols) one block of output rows takes:
small enough that the copies or adds after a block's product find it still
in cache, and that dL/dcols never needs a full-size buffer."""


def as_pair(name: str, value: int | Sequence[int], minimum: int = 1) -> Pair:
    """Return ``value`` as ``(h, w)``: an int means the same for both.

    Examples
    --------
    >>> as_pair("kernel_size", 3), as_pair("stride", [2, 1])
    ((3, 3), (2, 1))
    >>> as_pair("padding", -1, minimum=0)
    Traceback (most recent call last):
    ...
    ValueError: padding: expected an integer >= 0 or a pair of them. Received: -1
    """
    items = list(value) if isinstance(value, list | tuple) else [value, value]
    if len(items) != 2 or not all(
        isinstance(item, numbers.Integral)
        and not isinstance(item, bool)
        and item >= minimum
        for item in items
    ):
        raise ValueError(
            f"{name}: expected an integer >= {minimum} or a pair of them. "
            f"Received: {value!r}"
        )
    return int(items[0]), int(items[1])


def compact(pair: Pair) -> int | list[int]:
    """``(3, 3) -> 3`` and ``(3, 1) -> [3, 1]``: the JSON-friendly config form."""
    return pair[0] if pair[0] == pair[1] else list(pair)


def check_image_input(
    layer: str,
    x: np.ndarray,
    channels: int | None,
    kernel: Pair,
    padding: Pair = (0, 0),
) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(N, channels, H, W)`` and, once
    padded, at least as large as the window."""
    shown = "C" if channels is None else channels
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        raise ValueError(
            f"{layer}: expected input of shape (N, {shown}, H, W). "
            f"Received shape {x.shape}"
        )
    height, width = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if height < kernel[0] or width < kernel[1]:
        padded = f" after padding {padding}" if padding != (0, 0) else ""
        raise ValueError(
            f"{layer}: expected an input of at least {kernel[0]}x{kernel[1]} pixels "
            f"(the window){padded}. Received {x.shape[2]}x{x.shape[3]} "
            f"(input shape {x.shape})"
        )


def sliding_windows(x: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
    """A read-only view of every window: no data is copied.

    ``(N, C, H, W) -> (N, C, OH, OW, kh, kw)``, where ``[n, c, i, j]`` is the
    window whose top-left pixel is ``(i * sh, j * sw)``.
    """
    # (N, C, H, W) -> (N, C, H-kh+1, W-kw+1, kh, kw): one window per pixel ...
    windows = sliding_window_view(x, kernel, axis=(2, 3))
    # ... -> (N, C, OH, OW, kh, kw): keep every sh-th row, sw-th column.
    return windows[:, :, :: stride[0], :: stride[1]]


def window_elements(windows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(k, windows[..., i, j])`` for each offset, ``k = i*kw + j``.

    Each item is an ``(N, C, OH, OW)`` view holding one element of every
    window, in row-major window order. Reducing a window this way takes
    ``kh*kw`` vectorised steps over whole images, far faster than a reduction
    over the two short trailing axes of the strided 6-D view.
    """
    kw = windows.shape[-1]
    for k in range(windows.shape[-2] * kw):
        i, j = divmod(k, kw)
        yield k, windows[..., i, j]


def output_size(size: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """``(OH, OW)``: ``OH = (H + 2*ph - kh) // sh + 1``, likewise ``OW``."""
    return tuple(
        (n + 2 * p - k) // s + 1
        for n, k, s, p in zip(size, kernel, stride, padding, strict=True)
    )


def window_slice(offset: Pair, stride: Pair, out_size: Pair) -> tuple[slice, slice]:
    """The pixels that element ``offset = (i, j)`` of every window reads:
    rows ``i + sh*oh`` and columns ``j + sw*ow``, one per output position."""
    (i, j), (sh, sw), (oh, ow) = offset, stride, out_size
    return slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw)


def reuse_buffer(
    buffers: dict | None, key: str, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """``buffers[key]`` when it has this shape and dtype, else a new zeroed
    array, kept there for the next call (no dict: a new one every time)."""
    found = None if buffers is None else buffers.get(key)
    if found is None or found.shape != shape or found.dtype != dtype:
        found = np.zeros(shape, dtype=dtype)
        if buffers is not None:
            buffers[key] = found
    return found


def im2col(
    x: np.ndarray,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    buffers: dict | None = None,
) -> np.ndarray:
    """Lay every (padded) window out as one column, so that a convolution is
    one matrix product.

    Returns ``cols`` of shape ``(C*kh*kw, OH*OW*N)``: row ``(c, i, j)`` of the
    kernel, column ``(oh, ow, n)`` of the output, the batch innermost. ``x``
    may have any memory layout; ``(C, H, W, N)`` in memory (what Conv2D
    returns) reads fastest. ``buffers``, a dict the caller keeps, lends the arrays to
    reuse from call to call (the padded copy, whose zero border is written
    once, and ``cols``); the result is then one of them.

    Notes
    -----
    One strided copy per kernel offset ``(i, j)``: row block ``(:, i, j)`` of
    ``cols``, seen as ``(C, OH, OW, N)``, is the slice of pixels
    ``(i + sh*oh, j + sw*ow)`` of the input seen as ``(C, H, W, N)``. With the
    batch innermost each copy moves runs of ``N`` (``OW*N`` at stride 1)
    contiguous numbers, even for strided convolutions and tiny images, not
    the scattered elements a transpose of the 6-D window view gathers.

    Examples
    --------
    >>> im2col(np.arange(6.0).reshape(1, 1, 2, 3), (2, 2), (1, 1), (0, 0))
    array([[0., 1.],
           [1., 2.],
           [3., 4.],
           [4., 5.]])
    """
    n, c, h, w = x.shape
    (kh, kw), (ph, pw) = kernel, padding
    out_size = output_size((h, w), kernel, stride, padding)
    # (N, C, H, W) -> (C, H, W, N), a view.
    source = x.transpose(1, 2, 3, 0)
    if padding != (0, 0) or not source.flags.c_contiguous:
        # One copy into (C, H, W, N) order, padded: then every kernel offset
        # reads contiguous runs (an (N, C, H, W) input would be gathered
        # kh*kw times over).
        shape = (c, h + 2 * ph, w + 2 * pw, n)
        padded = reuse_buffer(buffers, "padded", shape, x.dtype)
        # The interior only: the zero border stays from the first call.
        padded[:, ph : ph + h, pw : pw + w] = source
        source = padded
    rows = (c * kh * kw, out_size[0] * out_size[1] * n)
    cols = reuse_buffer(buffers, "cols", rows, x.dtype)
    # (C*kh*kw, OH*OW*N) -> (C, kh, kw, OH, OW, N), a view.
    blocks = cols.reshape(c, kh, kw, *out_size, n)
    for i in range(kh):
        for j in range(kw):
            # (C, OH, OW, N) <- the (C, OH, OW, N) slice of pixels it reads.
            blocks[:, i, j] = source[:, *window_slice((i, j), stride, out_size)]
    return cols


def row_blocks(out_rows: int, row_bytes: int) -> list[slice]:
    """Output rows in blocks whose ``cols`` columns take at most
    :data:`BLOCK_BYTES` (``row_bytes`` each; one row at least)."""
    step = max(1, BLOCK_BYTES // row_bytes)
    return [slice(r, min(r + step, out_rows)) for r in range(0, out_rows, step)]


def add_windows(
    padded: np.ndarray,
    cols: np.ndarray,
    rows: slice,
    kernel: Pair,
    stride: Pair,
) -> None:
    """``padded += `` the adjoint of :func:`im2col` for the output rows ``rows``.

    ``padded`` is the ``(C, H+2ph, W+2pw, N)`` image gradient; ``cols``, of
    shape ``(C*kh*kw, R*OW*N)``, is dLoss/dcols for the ``R`` output rows
    ``rows`` (all of them, or one block of :func:`row_blocks`).

    Notes
    -----
    One vectorised ``+=`` per kernel offset ``(i, j)``, ``kh*kw`` in all: for a
    fixed offset, output position ``(oh, ow)`` reads pixel
    ``(i + sh*oh, j + sw*ow)``, a different pixel for every position, so a
    strided slice takes all of them at once with no collisions. Pixels shared
    by overlapping windows are reached from different offsets, and the loop
    accumulates them. (``np.add.at`` would handle collisions in one call but
    is unbuffered and many times slower.)
    """
    c, n = padded.shape[0], padded.shape[-1]
    (kh, kw), (sh, _) = kernel, stride
    r = rows.stop - rows.start
    out_size = (r, cols.shape[1] // (r * n))  # (R, OW)
    # (C*kh*kw, R*OW*N) -> (C, kh, kw, R, OW, N), a view.
    blocks = cols.reshape(c, kh, kw, *out_size, n)
    for i in range(kh):
        for j in range(kw):
            # The (C, R, OW, N) slice of pixels (i + sh*oh, j + sw*ow), oh in rows.
            pixels = window_slice((i + sh * rows.start, j), stride, out_size)
            padded[:, *pixels] += blocks[:, i, j]


def col2im(
    cols: np.ndarray,
    input_shape: tuple[int, ...],
    kernel: Pair,
    stride: Pair,
    padding: Pair = (0, 0),
) -> np.ndarray:
    """The adjoint of :func:`im2col`: add each column's entries back onto the
    pixels they were read from.

    Parameters
    ----------
    cols : ndarray of shape (C*kh*kw, OH*OW*N)
        dLoss/dcols, laid out as :func:`im2col` returns.
    input_shape : (N, C, H, W), before padding.

    Returns
    -------
    ndarray of shape ``input_shape``, ``(C, H, W, N)`` in memory (a view):
    the sum, per pixel, over every window that covers it (pixels in no
    window, and the padding, get nothing). See :func:`add_windows`.

    Examples
    --------
    >>> col2im(np.ones((4, 2)), (1, 1, 2, 3), (2, 2), (1, 1))
    array([[[[1., 2., 1.],
             [1., 2., 1.]]]])
    """
    padded = padded_zeros(input_shape, padding, cols.dtype)
    out_h, _ = output_size(input_shape[2:], kernel, stride, padding)
    add_windows(padded, cols, slice(0, out_h), kernel, stride)
    return interior(padded, padding)


def padded_zeros(
    input_shape: tuple[int, ...], padding: Pair, dtype: np.dtype
) -> np.ndarray:
    """Zeros of shape ``(C, H+2ph, W+2pw, N)`` for ``input_shape = (N, C, H, W)``."""
    n, c, h, w = input_shape
    return np.zeros((c, h + 2 * padding[0], w + 2 * padding[1], n), dtype=dtype)


def interior(padded: np.ndarray, padding: Pair) -> np.ndarray:
    """``(C, H+2ph, W+2pw, N) -> (N, C, H, W)``: the padding cut off, as views."""
    (ph, pw), (_, hp, wp, _) = padding, padded.shape
    return padded[:, ph : hp - ph, pw : wp - pw].transpose(3, 0, 1, 2)
