"""Normalization: standardise features with statistics learned from data."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.validation import check_float_array, check_input_shape

EPSILON = 1e-7
"""Added to the variance, as ``keras.layers.Normalization`` does."""


class Normalization(Layer):
    r"""Preprocessing: ``y = (x - mean) / sqrt(var + 1e-7)`` per feature.

    The mean and variance of every feature (the last axis) are buffers set
    by :meth:`adapt` from data, saved with the model and never trained, as
    ``keras.layers.Normalization``: a saved model carries its preprocessing.

    Parameters
    ----------
    num_features : int, optional
        Size of the last axis. Set by :meth:`adapt` when not given.

    Notes
    -----
    With ``s = sqrt(var + 1e-7)``:

    - adapt:    ``mean = mean_n x``, ``var = mean_n (x - mean)**2`` (biased)
    - forward:  ``y = (x - mean) / s``
    - backward: ``dx = g / s``

    Until adapted the layer is the identity (mean 0, variance 1 - 1e-7).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 10.0], [2.0, 30.0]])
    >>> layer = Normalization()
    >>> layer.adapt(X)
    >>> layer.buffers["mean"], layer.buffers["variance"]
    (array([ 1., 20.]), array([  1., 100.]))
    >>> layer.forward(X).round(6)
    array([[-1., -1.],
           [ 1.,  1.]])
    """

    buffer_names = ("mean", "variance")

    def __init__(self, num_features: int | None = None) -> None:
        super().__init__()
        if num_features is not None and (
            isinstance(num_features, bool)
            or not isinstance(num_features, int)
            or num_features < 1
        ):
            raise ValueError(
                "num_features: expected a positive integer or None. "
                f"Received: {num_features!r}"
            )
        self.num_features = num_features
        self._scale: np.ndarray | None = None
        # Unknown until a model builds the layer: statistics adapted before
        # that are kept in float64 and converted when it is added.
        self._dtype: np.dtype | None = None

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        if self.num_features is None:
            return {}
        return {"mean": (self.num_features,), "variance": (self.num_features,)}

    def create_state(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        if self.num_features is not None:
            self.buffers = {
                "mean": np.zeros(self.num_features, dtype=dtype),
                "variance": np.full(self.num_features, 1.0 - EPSILON, dtype=dtype),
            }

    def to_dtype(self, dtype: np.dtype) -> None:
        super().to_dtype(dtype)
        self._dtype = np.dtype(dtype)  # adapt() then stores its statistics in it

    def adapt(self, X: Any) -> None:
        """Set the mean and variance of every feature from ``X``.

        Parameters
        ----------
        X : array-like of shape (N, ..., num_features)
            Data; every axis but the last is averaged over. Must be finite.
        """
        X = check_float_array("X", X, min_ndim=2)
        if self.num_features is not None and X.shape[-1] != self.num_features:
            raise ValueError(
                f"Normalization.adapt: expected {self.num_features} features on "
                f"the last axis. Received shape {X.shape}"
            )
        axes = tuple(range(X.ndim - 1))
        # Accumulate in float64: a float32 sum over many rows loses digits.
        mean = X.mean(axis=axes, dtype=np.float64)
        variance = X.var(axis=axes, dtype=np.float64)
        self.num_features = X.shape[-1]
        self.buffers = {
            "mean": mean.astype(self._dtype or np.float64),
            "variance": variance.astype(self._dtype or np.float64),
        }
        self.built = True  # adapted: building must not reset the statistics

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Standardise every feature of ``x``.

        Parameters
        ----------
        x : ndarray of shape (N, ..., num_features)
        training : bool
            Unused: the statistics come from :meth:`adapt`, never from batches.

        Returns
        -------
        ndarray of the same shape
        """
        if self.num_features is None:
            raise RuntimeError(
                "Normalization: call adapt(X) (or give num_features) before use"
            )
        expected = (None,) * max(x.ndim - 1, 1) + (self.num_features,)
        check_input_shape("Normalization", x, expected)
        # (F,) broadcast over every leading axis.
        self._scale = 1.0 / np.sqrt(self.buffers["variance"] + EPSILON)
        return (x - self.buffers["mean"]) * self._scale

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """``dL/dx = g / sqrt(var + 1e-7)``; there is nothing to train.

        Parameters
        ----------
        grad : ndarray of shape (N, ..., num_features)

        Returns
        -------
        ndarray of the same shape
        """
        return grad * self._cached("_scale")

    def get_config(self) -> dict[str, Any]:
        return {"num_features": self.num_features}
