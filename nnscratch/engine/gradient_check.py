"""Check a model's backward pass against numerical gradients, in one line."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.tree import walk
from nnscratch.core.validation import check_positive_int
from nnscratch.engine.data import model_data

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``||a - n|| / max(||a|| + ||n||, tiny)``: 0 when equal, 1 when unrelated."""
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / max(scale, 1e-300))


def numerical_gradient(
    f: Callable[[], float],
    array: np.ndarray,
    epsilon: float = 1e-6,
    entries: np.ndarray | None = None,
) -> np.ndarray:
    """Central differences ``(f(a + eps) - f(a - eps)) / (2 eps)``, entry by entry.

    ``array`` is nudged in place and restored, so ``f`` (which takes no
    arguments) sees each change. ``entries`` picks flat indices to check;
    all by default. Returns the estimates, shaped like ``array`` or, with
    ``entries``, like ``entries``.

    Examples
    --------
    >>> w = np.array([1.0, -2.0])
    >>> numerical_gradient(lambda: float(np.sum(w**3)), w).round(6)  # 3 w**2
    array([ 3., 12.])
    """
    flat = array.reshape(-1)
    if not np.shares_memory(flat, array):
        raise ValueError("numerical_gradient: expected a contiguous array")
    chosen = np.arange(flat.size) if entries is None else entries
    estimates = np.empty(len(chosen))
    for k, i in enumerate(chosen):
        original = flat[i]
        flat[i] = original + epsilon
        plus = f()
        flat[i] = original - epsilon
        minus = f()
        flat[i] = original
        estimates[k] = (plus - minus) / (2 * epsilon)
    return estimates.reshape(array.shape) if entries is None else estimates


def check_gradients(
    model: NeuralNetwork,
    X: Any,
    y: Any,
    epsilon: float = 1e-6,
    max_entries: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Relative error between backprop and central differences, per parameter.

    The model is copied and converted to float64 (the original is not
    touched), layers run in inference mode (no dropout), and each of up to
    ``max_entries`` entries per parameter array is nudged by ``+-epsilon``:
    ``dL/dw ~ (L(w + eps) - L(w - eps)) / (2 eps)``, with ``L`` the loss
    including penalties.

    Parameters
    ----------
    model : NeuralNetwork
    X, y : ndarray
        A small batch (a few samples is enough).
    epsilon : float, default 1e-6
    max_entries : int, default 64
        Entries checked per array, drawn at random (``seed``) when it has more.

    Returns
    -------
    dict of str to float
        ``'{layer path}:{LayerType}.{param}'`` -> relative error (the path
        of a nested layer is e.g. ``'1.body.0'``). Below about
        1e-6 the backward pass is right; above 1e-3 it is almost surely wrong.

    Notes
    -----
    Kinks fool central differences: a ReLU (or max pool) input within
    ``epsilon`` of its switching point has no derivative there. A freshly
    built network with zero biases fed blank pixels puts many inputs exactly
    at 0, so check with a few random samples, or randomise the biases first.

    Examples
    --------
    >>> import numpy as np
    >>> from nnscratch import NeuralNetwork, Dense, Activation
    >>> model = NeuralNetwork(loss_name="cce", seed=0)
    >>> model.add(Dense(3, 4))
    >>> model.add(Activation("tanh"))
    >>> model.add(Dense(4, 2))
    >>> model.add(Activation("softmax"))
    >>> X, y = np.random.default_rng(0).normal(size=(5, 3)), np.array([0, 1, 1, 0, 1])
    >>> errors = check_gradients(model, X, y)
    >>> sorted(errors)
    ['0:Dense.W', '0:Dense.b', '2:Dense.W', '2:Dense.b']
    >>> max(errors.values()) < 1e-7
    True
    """
    max_entries = check_positive_int("max_entries", max_entries)
    checked = copy.deepcopy(model)
    checked.dtype = np.dtype("float64")
    for _, layer in walk(checked.layers):
        layer.to_dtype(checked.dtype)
    data = model_data(checked, "X", X, "y", y)
    X64, y64 = checked.cast(data.X), data.y
    checked.compute_gradients(X64, y64, training=False)

    def loss() -> float:
        data_loss, _, _ = checked._loss_and_output(X64, y64, training=False)
        return data_loss + checked.regularization_loss()

    rng = np.random.default_rng(seed)
    errors = {}
    for path, layer in walk(checked.layers):
        for name, param in layer.params.items():
            entries = np.arange(param.size)
            if param.size > max_entries:
                entries = rng.choice(param.size, max_entries, replace=False)
            numeric = numerical_gradient(loss, param, epsilon, entries)
            analytic = layer.grads[name].reshape(-1)[entries]
            key = f"{path}:{type(layer).__name__}.{name}"
            errors[key] = relative_error(analytic, numeric)
    return errors
