"""The elementwise functions behind ``Activation(name)``.

Each entry is a pair: ``forward(x) -> y`` and ``backward(grad, x, y) -> dx``,
where ``grad = dL/dy``. The derivative is written from whichever of ``x`` and
``y`` makes it cheapest (for sigmoid and tanh that is the output ``y``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nnscratch.core.functional import sigmoid, softmax


class ActivationFunction(NamedTuple):
    """``forward(x) -> y``, ``backward(grad, x, y) -> dx`` and the math in words."""

    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    equation: str


def relu_backward(grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # The derivative at exactly 0 is taken as 0, as PyTorch does.
    return grad * (x > 0)


def sigmoid_backward(grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # sigma'(x) = sigma(x) * (1 - sigma(x)): from the output, no exp needed.
    return grad * y * (1.0 - y)


def tanh_backward(grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # tanh'(x) = 1 - tanh(x)**2: from the output.
    return grad * (1.0 - y * y)


def softmax_backward(grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # The Jacobian is diag(y) - y y^T, so J^T g = y * (g - <g, y>), computed
    # row by row without ever forming the (K, K) matrix.
    # (N, K) * (N, K) -> sum over K -> (N, 1), broadcast back over K.
    return y * (grad - np.sum(grad * y, axis=-1, keepdims=True))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


ACTIVATIONS: dict[str, ActivationFunction] = {
    "relu": ActivationFunction(relu, relu_backward, "y = max(x, 0);  dx = g * [x > 0]"),
    "sigmoid": ActivationFunction(
        sigmoid, sigmoid_backward, "y = 1 / (1 + exp(-x));  dx = g * y * (1 - y)"
    ),
    "tanh": ActivationFunction(
        np.tanh, tanh_backward, "y = tanh(x);  dx = g * (1 - y**2)"
    ),
    "softmax": ActivationFunction(
        softmax,
        softmax_backward,
        "y_k = exp(x_k) / sum_j exp(x_j);  dx = y * (g - sum_k g_k y_k)",
    ),
}
