"""Activation: an elementwise (or, for softmax, row-wise) nonlinearity."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.validation import lookup
from nnscratch.layers.activation_functions import ACTIVATIONS


class Activation(Layer):
    """Apply a named nonlinearity; it has no parameters.

    Parameters
    ----------
    name : str
        One of the keys of ``ACTIVATIONS``: ``'relu'``, ``'sigmoid'``,
        ``'tanh'``, ``'softmax'`` (over the last axis), ...

    Notes
    -----
    ``x`` and ``y`` have any shape ``(N, ...)``; ``g = dL/dy``.

    - relu:    ``y = max(x, 0)``;  ``dx = g * [x > 0]``
    - sigmoid: ``y = 1 / (1 + exp(-x))``;  ``dx = g * y * (1 - y)``
    - tanh:    ``y = tanh(x)``;  ``dx = g * (1 - y**2)``
    - softmax: ``y_k = exp(x_k) / sum_j exp(x_j)``;
      ``dx = y * (g - sum_k g_k y_k)`` (the Jacobian-vector product)
    - leaky_relu: ``y = x if x > 0 else 0.01 * x``;
      ``dx = g * (1 if x > 0 else 0.01)``
    - elu:     ``y = x if x > 0 else exp(x) - 1``;
      ``dx = g * (1 if x > 0 else y + 1)``
    - gelu:    ``y = x * Phi(x)``, ``Phi(x) = (1 + erf(x / sqrt(2))) / 2`` (exact,
      as torch's default); ``dx = g * (Phi(x) + x * exp(-x**2 / 2) / sqrt(2 pi))``
    - softplus: ``y = log(1 + exp(x))``;  ``dx = g * (1 - exp(-y))``
      (``= g * sigmoid(x)``)
    - linear:  ``y = x``;  ``dx = g``

    Examples
    --------
    >>> import numpy as np
    >>> relu = Activation("relu")
    >>> relu.forward(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    >>> relu.backward(np.array([[5.0, 5.0]]))
    array([[0., 5.]])
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.function = lookup("activation", name, ACTIVATIONS)
        self.name = name
        self._input: np.ndarray | None = None
        self._output: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Apply the function.

        Parameters
        ----------
        x : ndarray of shape (N, ...)

        Returns
        -------
        ndarray of the same shape as ``x``
        """
        self._input = x
        self._output = self.function.forward(x)
        return self._output

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Return ``dL/dx`` from ``grad = dL/dy``, both of the shape of ``x``."""
        x = self._cached("_input")
        return self.function.backward(grad, x, self._output)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}
