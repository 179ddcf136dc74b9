"""Conv2D: 2-D convolution (cross-correlation, as torch), by im2col and GEMM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch.core.initializers import INITIALIZERS
from nnscratch.core.validation import (
    check_choice,
    check_float_in_range,
    check_positive_int,
)
from nnscratch.core.weighted import WeightedLayer
from nnscratch.layers.im2col import (
    add_windows,
    as_pair,
    check_image_input,
    compact,
    im2col,
    interior,
    output_size,
    padded_zeros,
    reuse_buffer,
    row_blocks,
)


class Conv2D(WeightedLayer):
    r"""2-D convolution of ``(N, C, H, W)`` images, as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` of the input and ``O`` of the output.
    kernel_size : int or (int, int)
        ``(kh, kw)``; an int means a square kernel.
    stride : int or (int, int), default 1
        ``(sh, sw)``: steps between window positions.
    padding : int or (int, int), default 0
        ``(ph, pw)``: zeros added on each side of each spatial axis.
    initialization : {'he', 'xavier', 'random_normal'}, default 'he'
        How ``W`` is drawn, with ``fan_in = C*kh*kw`` and ``fan_out = O*kh*kw``;
        ``b`` always starts at 0.
    l2_lambda : float, default 0.0
        Strength of the L2 penalty ``l2_lambda * sum(W**2)`` (biases are not
        penalised).

    Notes
    -----
    ``W`` has shape ``(O, C, kh, kw)`` and ``b`` shape ``(O,)``; the output is
    ``(N, O, OH, OW)`` with ``OH = (H + 2*ph - kh) // sh + 1`` (likewise
    ``OW``). With ``xp`` the padded input and ``g = dL/dy``:

    - forward:  ``y[n, o, r, s] = b[o] + sum_{c,i,j} W[o, c, i, j] *
      xp[n, c, r*sh + i, s*sw + j]``, computed as ``Y = W2 @ cols + b`` with
      ``W2 = W`` reshaped ``(O, C*kh*kw)`` and ``cols = im2col(x)`` of shape
      ``(C*kh*kw, OH*OW*N)``
    - backward: ``dW2 = G @ cols.T + 2 * l2_lambda * W2``, ``db = sum_{n,r,s} g``,
      ``dx = col2im(W2.T @ G)``, with ``G = g`` reshaped ``(O, OH*OW*N)``

    Activations flow as ``(C, H, W, N)`` in memory, the batch innermost: the
    output is a transposed view of the ``(O, OH*OW*N)`` product, so no layout
    change is needed between layers, and every copy in im2col and col2im
    moves contiguous runs of ``N`` numbers or more.

    Examples
    --------
    A 2x2 kernel of ones sums each 2x2 window; backward counts, for each
    pixel, the windows that cover it:

    >>> import numpy as np
    >>> layer = Conv2D(1, 1, kernel_size=2)
    >>> layer.params["W"][:] = 1.0
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> layer.forward(x)
    array([[[[ 8., 12.],
             [20., 24.]]]])
    >>> layer.backward(np.ones((1, 1, 2, 2)))
    array([[[[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]]]])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        initialization: str = "he",
        l2_lambda: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.kernel_size = as_pair("kernel_size", kernel_size)
        self.stride = as_pair("stride", stride)
        self.padding = as_pair("padding", padding, minimum=0)
        self.initialization = check_choice(
            "initialization", initialization, INITIALIZERS
        )
        self.l2_lambda = check_float_in_range("l2_lambda", l2_lambda, 0.0, np.inf)
        self._cols: np.ndarray | None = None
        self._input_shape: tuple[int, ...] | None = None
        # im2col's padded copy and cols, reused while the batch shape holds.
        self._scratch: dict[str, np.ndarray] = {}

    def weight_layout(self) -> tuple[tuple[int, ...], int, int]:
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        return shape, self.in_channels * kh * kw, self.out_channels * kh * kw

    @property
    def bias_size(self) -> int:
        return self.out_channels

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Convolve ``x`` with every filter.

        Parameters
        ----------
        x : ndarray of shape (N, in_channels, H, W)
        training : bool
            Unused; Conv2D behaves the same in training and inference.

        Returns
        -------
        ndarray of shape (N, out_channels, OH, OW)
            A transposed view of the product (no copy); NumPy's element-wise
            operations downstream keep its memory order.
        """
        x = np.asarray(x)
        check_image_input("Conv2D", x, self.in_channels, self.kernel_size, self.padding)
        n, o = x.shape[0], self.out_channels
        out_h, out_w = output_size(x.shape[2:], *self._geometry)
        # (N, C, H, W) -> (C*kh*kw, OH*OW*N), cached for dW; a reused buffer.
        self._cols = im2col(x, *self._geometry, buffers=self._scratch)
        self._input_shape = x.shape
        # (O, C, kh, kw) -> (O, C*kh*kw), a view; then one GEMM:
        # (O, C*kh*kw) @ (C*kh*kw, OH*OW*N) -> (O, OH*OW*N).
        y = np.matmul(self.params["W"].reshape(o, -1), self._cols)
        y += self.params["b"][:, None]  # (O,) -> (O, 1), broadcast over columns
        # (O, OH*OW*N) -> (O, OH, OW, N) -> (N, O, OH, OW), a view: the data
        # stays (C, H, W, N) in memory, which the next im2col reads fastest
        # and which NumPy's element-wise operations (ReLU) and the pools keep.
        return y.reshape(o, out_h, out_w, n).transpose(3, 0, 1, 2)

    @property
    def _geometry(self) -> tuple[tuple[int, int], ...]:
        return self.kernel_size, self.stride, self.padding

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Fill ``grads['W']``, ``grads['b']`` and return ``dL/dx``.

        Parameters
        ----------
        grad : ndarray of shape (N, out_channels, OH, OW)
            dLoss/dOutput.

        Returns
        -------
        ndarray of shape (N, in_channels, H, W)
            dLoss/dInput (None when ``input_gradient_needed`` is False),
            ``(C, H, W, N)`` in memory like the output of forward.
        """
        cols = self._cached("_cols")
        o = self.out_channels
        W2 = self.params["W"].reshape(o, -1)  # (O, C, kh, kw) -> (O, C*kh*kw)
        # (N, O, OH, OW) -> (O, OH, OW, N) -> (O, OH*OW*N); free when grad has
        # the memory order forward's output had, a copy otherwise.
        G = grad.transpose(1, 2, 3, 0).reshape(o, -1)
        # (O, OH*OW*N) @ (OH*OW*N, C*kh*kw) -> (O, C*kh*kw): the sum over the
        # batch and positions is in the product.
        dW = self.grads["W"]
        np.matmul(G, cols.T, out=dW.reshape(o, -1))  # written in place, a view
        self.penalised(dW)
        np.sum(G, axis=1, out=self.grads["b"])  # (O, OH*OW*N) -> (O,)
        if not self.input_gradient_needed:
            return None
        return self._input_gradient(W2, G, cols)

    def _input_gradient(
        self, W2: np.ndarray, G: np.ndarray, cols: np.ndarray
    ) -> np.ndarray:
        """``dx = col2im(W2.T @ G)``, a block of output rows at a time.

        Each block's dL/dcols, ``(C*kh*kw, O) @ (O, R*OW*N) -> (C*kh*kw,
        R*OW*N)``, goes into one small reused buffer and is added back onto
        its pixels while still in cache: no full-size dcols (as large as
        ``cols``) is ever held.
        """
        n = self._input_shape[0]
        out_h, out_w = output_size(self._input_shape[2:], *self._geometry)
        per_row = out_w * n  # columns of cols per output row
        blocks = row_blocks(out_h, cols.shape[0] * per_row * cols.itemsize)
        ck, width = cols.shape[0], (blocks[0].stop - blocks[0].start) * per_row
        buffer = reuse_buffer(self._scratch, "dcols", (ck * width,), cols.dtype)
        dxp = padded_zeros(self._input_shape, self.padding, cols.dtype)
        for rows in blocks:
            columns = slice(rows.start * per_row, rows.stop * per_row)
            # A contiguous (C*kh*kw, R*OW*N) view of the buffer's front.
            dcols = buffer[: ck * (columns.stop - columns.start)].reshape(ck, -1)
            np.matmul(W2.T, G[:, columns], out=dcols)
            add_windows(dxp, dcols, rows, self.kernel_size, self.stride)
        # (C, H+2ph, W+2pw, N) -> (N, C, H, W), views: (C, H, W, N) in memory.
        return interior(dxp, self.padding)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": compact(self.kernel_size),
            "stride": compact(self.stride),
            "padding": compact(self.padding),
            "initialization": self.initialization,
            "l2_lambda": self.l2_lambda,
        }
