"""MaxPool2D and AvgPool2D: downsample images window by window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.layers.im2col import (
    as_pair,
    check_image_input,
    compact,
    sliding_windows,
    window_elements,
    window_slice,
)


def _in_layout_of(prototype: np.ndarray, array: np.ndarray) -> np.ndarray:
    """``array`` with its axes in the memory order of ``prototype``'s: itself,
    or one copy. A gradient that arrives ``(N, C, H, W)`` in memory (from
    Flatten) would otherwise be gathered once per window element."""
    if np.argsort(array.strides).tolist() == np.argsort(prototype.strides).tolist():
        return array
    copy = np.empty_like(prototype, shape=array.shape)  # order 'K': the layout
    copy[...] = array
    return copy


class _Pool2D(Layer):
    """What both pools share: arguments, windowing and the scatter back.

    A subclass says how a window is reduced (``_pool``) and how the gradient
    of its result spreads over the window (``_add_window_grads``). Windows are
    read as strided views of ``x`` (no copy), and both the output and ``dx``
    keep the memory layout of ``x`` (``(C, H, W, N)`` after a Conv2D).
    """

    def __init__(
        self,
        pool_size: int | Sequence[int] = 2,
        stride: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.pool_size = as_pair("pool_size", pool_size)
        self.stride = self.pool_size if stride is None else as_pair("stride", stride)
        self._input: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Reduce every window to one value.

        Parameters
        ----------
        x : ndarray of shape (N, C, H, W)
        training : bool
            Unused; pooling behaves the same in training and inference.

        Returns
        -------
        ndarray of shape (N, C, OH, OW), ``OH = (H - kh) // sh + 1`` (likewise
        ``OW``), in the dtype of ``x``
        """
        x = np.asarray(x)
        check_image_input(type(self).__name__, x, None, self.pool_size)
        # (N, C, H, W) -> (N, C, OH, OW, kh, kw), a view.
        windows = sliding_windows(x, self.pool_size, self.stride)
        self._input = x
        return self._pool(windows)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Spread ``grad`` over each window and add the windows back up.

        Parameters
        ----------
        grad : ndarray of shape (N, C, OH, OW)
            dLoss/dOutput.

        Returns
        -------
        ndarray of shape (N, C, H, W)
            dLoss/dInput; pixels in no window (dropped edges) get 0, pixels
            in several overlapping windows the sum of their shares.
        """
        x = self._cached("_input")
        # (N, C, H, W) in the memory layout of x (order 'K'); zeroed unless
        # the windows tile x exactly, when every pixel is written once.
        tiled = self.stride == self.pool_size and all(
            size % k == 0 for size, k in zip(x.shape[2:], self.pool_size, strict=True)
        )
        dx = np.empty_like(x) if tiled else np.zeros_like(x)
        self._add_window_grads(_in_layout_of(x, grad), dx)
        return dx

    def _pixels(self, dx: np.ndarray, k: int, grad: np.ndarray) -> np.ndarray:
        """The ``(N, C, OH, OW)`` view of ``dx`` (shaped like ``grad``) that
        element ``k = i*kw + j`` of every window covers, one pixel each."""
        offset = divmod(k, self.pool_size[1])
        return dx[(..., *window_slice(offset, self.stride, grad.shape[2:]))]

    @property
    def _overlapping(self) -> bool:
        """Whether windows share pixels (then their gradients add up)."""
        return any(s < k for s, k in zip(self.stride, self.pool_size, strict=True))

    def _pool(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _add_window_grads(self, grad: np.ndarray, dx: np.ndarray) -> None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        stride = None if self.stride == self.pool_size else compact(self.stride)
        return {"pool_size": compact(self.pool_size), "stride": stride}


class MaxPool2D(_Pool2D):
    r"""Max pooling, as ``torch.nn.functional.max_pool2d`` (no padding).

    Parameters
    ----------
    pool_size : int or (int, int), default 2
        ``(kh, kw)``, the window.
    stride : int or (int, int), optional
        ``(sh, sw)``; defaults to ``pool_size`` (windows that just touch).
        Rows and columns no window reaches are dropped, as in torch.

    Notes
    -----
    For each window ``w`` of ``x`` (``g = dL/dy``):

    - forward:  ``y = max(w)``; ``a = argmax(w)``, the first maximum in
      row-major window order (as torch picks among ties; as in torch, a NaN
      beats every element before it, so NaN propagates)
    - backward: ``dx[a] += g``; every other pixel of the window gets 0.
      Overlapping windows (``stride < pool_size``) add up.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[1., 2., 5., 0.],
    ...                 [3., 4., 1., 1.],
    ...                 [0., 0., 2., 2.],
    ...                 [0., 9., 2., 2.]]]])
    >>> layer = MaxPool2D(2)
    >>> layer.forward(x)
    array([[[[4., 5.],
             [9., 2.]]]])
    >>> layer.backward(np.ones((1, 1, 2, 2)))  # the tie of 2s: the first one
    array([[[[0., 0., 1., 0.],
             [0., 1., 0., 0.],
             [0., 0., 1., 0.],
             [0., 1., 0., 0.]]]])
    """

    def __init__(
        self,
        pool_size: int | Sequence[int] = 2,
        stride: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__(pool_size, stride)
        self._windows: np.ndarray | None = None
        self._best: np.ndarray | None = None

    def _pool(self, windows: np.ndarray) -> np.ndarray:
        # Only the maxima here; which element won is worked out in backward,
        # so inference (and a forward with no backward) pays nothing for it.
        elements = window_elements(windows)
        _, first = next(elements)
        # (N, C, OH, OW): the running maximum, in the memory order of x.
        best = first.copy(order="K")
        for _, value in elements:
            np.maximum(best, value, out=best)  # NaN wins, as in torch
        self._windows, self._best = windows, best
        return best

    def _add_window_grads(self, grad: np.ndarray, dx: np.ndarray) -> None:
        windows, best = self._cached("_windows"), self._best
        taken = np.zeros_like(best, dtype=bool)  # window already routed
        first = np.empty_like(taken)
        for k, value in window_elements(windows):
            # The first element equal to the maximum, in row-major window
            # order, wins: on a tie torch picks the first one too.
            np.equal(value, best, out=first)
            np.greater(first, taken, out=first)  # a max, not yet taken
            taken |= first
            pixels = self._pixels(dx, k, grad)
            if self._overlapping:
                pixels += grad * first
            else:  # each pixel in one window: write, no read
                np.multiply(grad, first, out=pixels)
        if not taken.all():  # NaN windows: NaN == NaN is False above
            self._route_nan_windows(grad, dx, taken)

    def _route_nan_windows(
        self, grad: np.ndarray, dx: np.ndarray, taken: np.ndarray
    ) -> None:
        """In a window holding NaN, torch lets each NaN take over from all
        before it, so the *last* NaN gets the gradient: scan backwards."""
        for k, value in reversed(list(window_elements(self._windows))):
            last_nan = np.greater(np.isnan(value), taken)
            taken |= last_nan
            pixels = self._pixels(dx, k, grad)
            pixels += grad * last_nan


class AvgPool2D(_Pool2D):
    r"""Average pooling, as ``torch.nn.functional.avg_pool2d`` (no padding).

    Parameters
    ----------
    pool_size : int or (int, int), default 2
        ``(kh, kw)``, the window.
    stride : int or (int, int), optional
        ``(sh, sw)``; defaults to ``pool_size``. Rows and columns no window
        reaches are dropped, as in torch.

    Notes
    -----
    For each window ``w`` of ``x`` (``g = dL/dy``):

    - forward:  ``y = sum(w) / (kh*kw)``
    - backward: ``dx += g / (kh*kw)`` on every pixel of the window;
      overlapping windows (``stride < pool_size``) add up.

    Examples
    --------
    >>> import numpy as np
    >>> layer = AvgPool2D(2)
    >>> layer.forward(np.arange(16.0).reshape(1, 1, 4, 4))
    array([[[[ 2.5,  4.5],
             [10.5, 12.5]]]])
    >>> layer.backward(np.ones((1, 1, 2, 2)))[0, 0, 0]
    array([0.25, 0.25, 0.25, 0.25])
    """

    def _pool(self, windows: np.ndarray) -> np.ndarray:
        kh, kw = self.pool_size
        elements = window_elements(windows)
        _, first = next(elements)
        total = first.copy(order="K")  # (N, C, OH, OW): the running sum
        for _, value in elements:
            total += value
        total /= kh * kw  # a Python int keeps the dtype
        return total

    def _add_window_grads(self, grad: np.ndarray, dx: np.ndarray) -> None:
        kh, kw = self.pool_size
        share = grad / (kh * kw)  # a Python int keeps grad's dtype
        for k in range(kh * kw):
            pixels = self._pixels(dx, k, grad)
            if self._overlapping:
                pixels += share  # overlapping windows add up
            else:
                pixels[...] = share
