"""The elementwise functions behind ``Activation(name)``.

Each entry is a pair: ``forward(x) -> y`` and ``backward(grad, x, y) -> dx``,
where ``grad = dL/dy``. The derivative is written from whichever of ``x`` and
``y`` makes it cheapest (for sigmoid and tanh that is the output ``y``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nnscratch.core.functional import bounded, sigmoid, softmax, softplus
from nnscratch.core.special import (
    ERFC_NONNEGATIVE_SCRATCH_ROWS,
    ERFC_SINGLE_NONNEGATIVE_SCRATCH_ROWS,
    by_blocks,
    capped_abs,
    erfc_nonnegative_block,
    erfc_single_nonnegative_block,
)


class ActivationFunction(NamedTuple):
    """``forward(x) -> y``, ``backward(grad, x, y) -> dx`` and the math in words."""

    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    equation: str


LEAKY_RELU_SLOPE = 0.01  # torch.nn.LeakyReLU's default negative_slope
ELU_ALPHA = 1.0  # torch.nn.ELU's default alpha
SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)


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
    # row by row without ever forming the (K, K) matrix. Written as
    # y * g - y * <g, y>: with gradients near the float limit of both signs,
    # g - <g, y> itself could overflow, while each product is at most max|g|
    # and the result at most max|g| / 2.
    weighted = y * grad  # (N, K)
    # (N, K) -> sum over K -> (N, 1), broadcast back over K.
    weighted -= y * np.sum(weighted, axis=-1, keepdims=True)
    return weighted


def relu(x: np.ndarray) -> np.ndarray:
    # np.maximum(x, 0), against a kept row of zeros: ~1.5-2x faster (bounded)
    return bounded(np.maximum, x, 0)


def leaky_relu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, LEAKY_RELU_SLOPE * x)


def leaky_relu_backward(grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # From x: a step on its sign; at exactly 0 the slope is 0.01, as in torch.
    return np.where(x > 0, grad, LEAKY_RELU_SLOPE * grad)


def elu(x: np.ndarray) -> np.ndarray:
    # expm1 only sees x <= 0, so it never overflows and stays exact near 0.
    return np.where(x > 0, x, ELU_ALPHA * np.expm1(np.minimum(x, 0)))


def elu_backward(grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # From y: alpha * exp(x) = y + alpha for x <= 0, no exp needed (torch's formula).
    # The slope is chosen before multiplying: grad * (y + alpha) computed for
    # every x would overflow where x > 0 is huge, even though it is discarded.
    return grad * np.where(x > 0, 1.0, y + ELU_ALPHA)


def softplus_backward(grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # From y: sigmoid(x) = 1 - exp(-y), one expm1 of a non-positive number.
    return grad * -np.expm1(-y)


GELU_ABS_CAP = 40.0
"""``|x|`` is capped here in GELU's forward: ``Phi(-40)`` is 0 in float64
and float32, so the capped ``|x| * Phi(-|x|)`` is exactly the uncapped one
(and ``gelu(-inf) = 0``, not ``-inf * 0``)."""


def gelu(x: np.ndarray) -> np.ndarray:
    # gelu(x) = x Phi(x) = relu(x) - |x| Phi(-|x|), as Phi(x) = 1 - Phi(-x):
    # only the lower tail Phi(-|x|) = erfc(|x| / sqrt 2) / 2 is computed, to
    # full relative precision (0.5 * (1 + erf(x / sqrt 2)) cancels to 0 on
    # the left), and no reflection is needed. Single precision takes the
    # one-formula erfc (relative error ~1e-6, 30 passes over the array, 6x
    # faster), halved inside its own last product; float64 keeps Cody's erfc,
    # within a few ulp. Block by block, so that all those passes stay in the
    # cache.
    single = x.dtype.itemsize <= 4 and np.issubdtype(x.dtype, np.floating)
    erfc_of, rows = (
        (erfc_single_nonnegative_block, ERFC_SINGLE_NONNEGATIVE_SCRATCH_ROWS)
        if single
        else (erfc_nonnegative_block, ERFC_NONNEGATIVE_SCRATCH_ROWS)
    )

    def gelu_block(out: np.ndarray, scratch: np.ndarray, x: np.ndarray) -> None:
        w, z = scratch[:2]
        capped_abs(x, out=w, cap=GELU_ABS_CAP)
        # Phi(-|x|) = erfc(|x| / sqrt 2) / 2
        erfc_of(out, scratch[2:], np.multiply(w, SQRT_HALF, out=z), half=True)
        out *= w
        np.subtract(bounded(np.maximum, x, 0.0, out=w), out, out=out)

    return by_blocks(gelu_block, x, scratch_rows=2 + rows)


def gelu_backward(grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # 0 / 0 at x = 0 is replaced below; -x**2 / 2 overflowing to -inf (|x| >
    # 1e154 in float64, 1e19 in float32) gives exp(-inf) = 0, phi's value.
    with np.errstate(invalid="ignore", over="ignore"):
        return by_blocks(_gelu_backward_block, grad, x, y, scratch_rows=1)


def _gelu_backward_block(
    out: np.ndarray, scratch: np.ndarray, grad: np.ndarray, x: np.ndarray, y: np.ndarray
) -> None:
    # phi(x) = exp(-x**2 / 2) / sqrt(2 pi)
    phi = scratch[0]
    np.multiply(x, -0.5, out=phi)
    phi *= x
    np.exp(phi, out=phi)
    phi *= INV_SQRT_2PI
    phi *= x  # x phi(x)
    # From y and x: Phi(x) = y / x (no second erf); Phi(0) = 1/2. A divide
    # with where= is ~3x slower than dividing everywhere and patching x = 0.
    np.divide(y, x, out=out)
    np.copyto(out, 0.5, where=x == 0)
    out += phi
    out *= grad


def linear(x: np.ndarray) -> np.ndarray:
    return x


def linear_backward(grad: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # The identity's derivative is 1: the gradient passes through unchanged.
    return grad


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
    "leaky_relu": ActivationFunction(
        leaky_relu,
        leaky_relu_backward,
        "y = x if x > 0 else 0.01 x;  dx = g * (1 if x > 0 else 0.01)",
    ),
    "elu": ActivationFunction(
        elu,
        elu_backward,
        "y = x if x > 0 else exp(x) - 1;  dx = g * (1 if x > 0 else y + 1)",
    ),
    "gelu": ActivationFunction(
        gelu,
        gelu_backward,
        "y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;  "
        "dx = g * (Phi(x) + x exp(-x**2 / 2) / sqrt(2 pi))",
    ),
    # torch's softplus returns x itself above its threshold x > 20; the stable
    # formula differs from that by log1p(exp(-x)) < 2.1e-9.
    "softplus": ActivationFunction(
        softplus, softplus_backward, "y = log(1 + exp(x));  dx = g * (1 - exp(-y))"
    ),
    "linear": ActivationFunction(linear, linear_backward, "y = x;  dx = g"),
}
