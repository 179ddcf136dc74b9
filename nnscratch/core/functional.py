"""Numerically stable elementwise functions shared by layers and losses.

Written so that no input, however extreme, overflows: the exponentials only
ever see non-positive arguments.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow.

    For ``x >= 0`` the formula is used as written (``exp(-x) <= 1``); for
    ``x < 0`` it is rewritten as ``exp(x) / (1 + exp(x))``. Both branches use
    ``e = exp(-|x|)``, which never overflows and keeps full relative precision
    in the tails, where ``0.5 * (1 + tanh(x / 2))`` would cancel.

    Examples
    --------
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``.

    Examples
    --------
    >>> softplus(np.array([-1000.0, 1000.0]))
    array([   0., 1000.])
    """
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``log(softmax(z))`` over the last axis, finite for any finite ``z``.

    Subtracting the row maximum first makes the largest exponent ``exp(0)``,
    so nothing overflows and the sum is at least 1 (its log is safe).

    Examples
    --------
    >>> log_softmax(np.array([[1000.0, 0.0]]))
    array([[    0., -1000.]])
    """
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """``exp(z) / sum(exp(z))`` over the last axis.

    The row maximum is subtracted first (softmax is shift-invariant) so the
    largest exponent is ``exp(0) = 1`` and nothing overflows.

    Examples
    --------
    >>> softmax(np.array([[1000.0, 1000.0]]))
    array([[0.5, 0.5]])
    """
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
