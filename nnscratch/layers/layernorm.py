"""LayerNorm: normalise each position over its features."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.functional import along_rows, column_sums
from nnscratch.core.layer import Layer
from nnscratch.core.validation import check_float_in_range, check_positive_int


class LayerNorm(Layer):
    r"""Layer normalisation over the last axis, as ``torch.nn.LayerNorm``.

    Parameters
    ----------
    normalized_shape : int
        Size ``D`` of the last axis.
    epsilon : float > 0, default 1e-5
        Added to the variance before the square root.

    Notes
    -----
    Over the ``D`` features of each position (any leading shape), ``g = dL/dy``:

    - forward: ``mu = mean(x)``, ``var = mean((x - mu)**2)`` (biased),
      ``r = 1 / sqrt(var + epsilon)``, ``xhat = (x - mu) * r``,
      ``y = gamma * xhat + beta``
    - backward: ``dgamma = sum(g * xhat)``, ``dbeta = sum(g)`` (over all
      positions); with ``gh = g * gamma``:
      ``dx = r * (gh - mean(gh) - xhat * mean(gh * xhat))``

    Unlike BatchNorm it has no running statistics: training and inference
    are the same.

    Examples
    --------
    >>> import numpy as np
    >>> layer = LayerNorm(2)
    >>> layer.forward(np.array([[1.0, 3.0]])).round(4)
    array([[-1.,  1.]])
    >>> layer.backward(np.array([[1.0, 1.0]]))  # a shift changes nothing
    array([[0., 0.]])
    """

    def __init__(self, normalized_shape: int, epsilon: float = 1e-5) -> None:
        super().__init__()
        if isinstance(normalized_shape, tuple | list) and len(normalized_shape) == 1:
            normalized_shape = normalized_shape[0]  # torch also takes (D,)
        self.normalized_shape = check_positive_int("normalized_shape", normalized_shape)
        self.epsilon = check_float_in_range(
            "epsilon", epsilon, 0.0, np.inf, low_inclusive=False
        )
        self._normalized: np.ndarray | None = None
        self._inverse_std: np.ndarray | None = None

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"gamma": (self.normalized_shape,), "beta": (self.normalized_shape,)}

    def create_state(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """``gamma`` ones, ``beta`` zeros (nothing random)."""
        D = self.normalized_shape
        self.params = {
            "gamma": np.ones(D, dtype=dtype),
            "beta": np.zeros(D, dtype=dtype),
        }

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Normalise, scale and shift.

        Parameters
        ----------
        x : ndarray of shape (..., normalized_shape)
        training : bool
            Unused: LayerNorm behaves the same in both modes.

        Returns
        -------
        ndarray of the shape of ``x``
        """
        if x.ndim < 1 or x.shape[-1] != self.normalized_shape:
            raise ValueError(
                f"LayerNorm: expected input of shape (..., {self.normalized_shape})."
                f" Received shape {x.shape}"
            )
        D = self.normalized_shape
        rows = x.reshape(-1, D)  # (..., D) -> (positions, D)
        # Each row's mean as a matrix-vector product with (1/D, ..., 1/D):
        # one BLAS call, ~4x faster than NumPy's mean over a short last axis.
        average = np.full(D, 1.0 / D, dtype=rows.dtype)
        centred = rows - (rows @ average)[:, None]  # (positions, D)
        variance = (centred * centred) @ average  # (positions,)
        self._inverse_std = 1.0 / np.sqrt(variance + self.epsilon)
        centred *= self._inverse_std[:, None]  # becomes xhat in place
        self._normalized = centred
        y = along_rows(np.multiply, centred, self.params["gamma"])
        along_rows(np.add, y, self.params["beta"], out=y)
        return y.reshape(x.shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Fill ``grads['gamma']``, ``grads['beta']``; return ``dL/dx``.

        Parameters
        ----------
        grad : ndarray of the shape of the input
            dLoss/dOutput.

        Returns
        -------
        ndarray of the shape of the input
        """
        xhat = self._cached("_normalized")  # (positions, D)
        D = self.normalized_shape
        gamma = self.params["gamma"]
        g = grad.reshape(-1, D)  # (..., D) -> (positions, D)
        g_xhat = g * xhat
        column_sums(g_xhat, out=self.grads["gamma"])  # over all positions
        column_sums(g, out=self.grads["beta"])
        # mean(gh) and mean(gh * xhat) per row, gh = g * gamma: matrix-vector
        # products with gamma / D, so gh itself is not needed for them.
        gamma_over_D = gamma / D
        mean_gh = g @ gamma_over_D  # (positions,)
        mean_gh_xhat = g_xhat @ gamma_over_D
        dx = along_rows(np.multiply, g, gamma)  # gh, then dx in place
        dx -= mean_gh[:, None]
        dx -= xhat * mean_gh_xhat[:, None]
        dx *= self._inverse_std[:, None]
        return dx.reshape(grad.shape)

    def get_config(self) -> dict[str, Any]:
        return {"normalized_shape": self.normalized_shape, "epsilon": self.epsilon}
