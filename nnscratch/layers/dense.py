"""Dense: the fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.functional import along_rows, column_sums
from nnscratch.core.initializers import INITIALIZERS
from nnscratch.core.validation import (
    check_choice,
    check_float_in_range,
    check_input_shape,
    check_positive_int,
)
from nnscratch.core.weighted import WeightedLayer


class Dense(WeightedLayer):
    r"""Fully connected layer ``y = x @ W + b``.

    Parameters
    ----------
    input_size : int
        Number of input features.
    output_size : int
        Number of output features.
    initialization : {'he', 'xavier', 'random_normal'}, default 'he'
        How ``W`` is drawn; ``b`` always starts at 0.
    l2_lambda : float, default 0.0
        Strength of the L2 penalty ``l2_lambda * sum(W**2)`` (biases are not
        penalised).

    Notes
    -----
    With ``x`` of shape ``(N, in)``, ``W`` of shape ``(in, out)`` and
    ``g = dL/dy`` of shape ``(N, out)``:

    - forward:  ``y = x @ W + b``
    - backward: ``dW = x.T @ g + 2 * l2_lambda * W``, ``db = sum_n g``,
      ``dx = g @ W.T``

    Examples
    --------
    >>> import numpy as np
    >>> layer = Dense(3, 2)
    >>> layer.params["W"][:] = 1.0
    >>> layer.forward(np.array([[1.0, 2.0, 3.0]]))
    array([[6., 6.]])
    >>> layer.backward(np.array([[1.0, 0.5]]))
    array([[1.5, 1.5, 1.5]])
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        initialization: str = "he",
        l2_lambda: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.output_size = check_positive_int("output_size", output_size)
        self.initialization = check_choice(
            "initialization", initialization, INITIALIZERS
        )
        self.l2_lambda = check_float_in_range("l2_lambda", l2_lambda, 0.0, np.inf)
        self._input: np.ndarray | None = None

    def weight_layout(self) -> tuple[tuple[int, ...], int, int]:
        return (self.input_size, self.output_size), self.input_size, self.output_size

    @property
    def bias_size(self) -> int:
        return self.output_size

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Apply the affine map.

        Parameters
        ----------
        x : ndarray of shape (N, ..., input_size)
            The map applies to the last axis, as ``torch.nn.Linear``: a
            sequence ``(N, T, input_size)`` gives ``(N, T, output_size)``.
        training : bool
            Unused; Dense behaves the same in training and inference.

        Returns
        -------
        ndarray of shape (N, ..., output_size)
        """
        if x.ndim < 2 or x.shape[-1] != self.input_size:
            # The one test on the hot path; the message is built only here.
            check_input_shape(
                "Dense", x, (None,) * max(x.ndim - 1, 1) + (self.input_size,)
            )
        self._input = x
        # (N, ..., in) -> (M, in), M = N * ...: one 2-D GEMM, several times
        # faster than NumPy's stacked 3-D matmul; a view when x is contiguous.
        y = x.reshape(-1, self.input_size) @ self.params["W"]
        along_rows(np.add, y, self.params["b"], out=y)  # (out,) added to every row
        if x.ndim == 2:
            return y
        return y.reshape(*x.shape[:-1], self.output_size)  # (M, out) -> (N, ..., out)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Fill ``grads['W']``, ``grads['b']`` and return ``dL/dx``.

        Parameters
        ----------
        grad : ndarray of shape (N, ..., output_size)
            dLoss/dOutput.

        Returns
        -------
        ndarray of shape (N, ..., input_size)
            dLoss/dInput (None when ``input_gradient_needed`` is False).
        """
        x = self._cached("_input")
        W = self.params["W"]
        # (N, ..., in) -> (M, in) and (N, ..., out) -> (M, out), M = N * ...:
        # every position is a sample of the same affine map.
        x2 = x.reshape(-1, self.input_size)
        g2 = grad.reshape(-1, self.output_size)
        # (in, M) @ (M, out) -> (in, out); the sum over positions is in the product.
        grads = self.grads
        np.matmul(x2.T, g2, out=grads["W"])
        self.penalised(grads["W"])
        # (M, out) -> (out,)
        column_sums(g2, out=grads["b"])
        if not self.input_gradient_needed:
            return None
        if not x2.flags.c_contiguous and x2.T.flags.c_contiguous:
            # x came column-major (a flattened (C, H, W, N) Conv2D output):
            # dx in that order too, (in, out) @ (out, M) -> (in, M) -> (M, in),
            # so that the layers below receive their own layout back.
            return np.matmul(W, g2.T).T.reshape(x.shape)
        # (M, out) @ (out, in) -> (M, in) -> (N, ..., in)
        dx = g2 @ W.T
        return dx if x.ndim == 2 else dx.reshape(x.shape)

    def get_config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "output_size": self.output_size,
            "initialization": self.initialization,
            "l2_lambda": self.l2_lambda,
        }
