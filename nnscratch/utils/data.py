"""Data sets and label helpers.

Toy data sets, small 2-D problems a linear model cannot solve: each returns
``X_train, y_train, X_val, y_val``, shuffled and split, with ``X`` of shape
``(N, 2)``. Drawing is seeded, so a seed repeats the data.

Real image data sets (:func:`load_digits`, :func:`load_mnist_sample`,
:func:`load_mnist`) live in ``nnscratch.utils.datasets`` and are re-exported
here; :func:`one_hot` and :func:`from_one_hot` convert between integer labels
and one-hot rows.
"""

from __future__ import annotations

import numpy as np

from nnscratch.core.validation import (
    check_float_array,
    check_float_in_range,
    check_positive_int,
)
from nnscratch.utils.datasets import load_digits, load_mnist, load_mnist_sample

__all__ = [
    "from_one_hot",
    "get_moons_data",
    "get_spirals_data",
    "get_toy_data",
    "load_digits",
    "load_mnist",
    "load_mnist_sample",
    "one_hot",
    "train_val_split",
]

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def train_val_split(
    X: np.ndarray, y: np.ndarray, val_fraction: float, rng: np.random.Generator
) -> Split:
    """Shuffle ``X`` and ``y`` together and hold out ``val_fraction`` of them."""
    val_fraction = check_float_in_range(
        "val_fraction", val_fraction, 0.0, 1.0, high_inclusive=False
    )
    order = rng.permutation(len(X))
    n_val = int(round(len(X) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]


def _check_sizes(n_samples: int, noise: float, minimum: int = 2) -> None:
    if check_positive_int("n_samples", n_samples) < minimum:
        raise ValueError(
            f"n_samples: expected at least {minimum}. Received: {n_samples}"
        )
    check_float_in_range("noise", noise, 0.0, np.inf)


def get_toy_data(
    n_samples: int = 1000, noise: float = 0.1, val_fraction: float = 0.2, seed: int = 0
) -> Split:
    """Two noisy concentric circles: outer (radius 1) is class 0, inner (0.5) class 1.

    Parameters
    ----------
    n_samples : int
        Points in total, half on each circle.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate.
    val_fraction : float in [0, 1)
        Share of the points held out for validation.
    seed : int
        Seed of the generator that draws and splits the points.

    Returns
    -------
    X_train : ndarray of shape (N_train, 2)
    y_train : ndarray of shape (N_train, 1), 0.0 or 1.0
    X_val : ndarray of shape (N_val, 2)
    y_val : ndarray of shape (N_val, 1)

    Examples
    --------
    >>> X_train, y_train, X_val, y_val = get_toy_data(n_samples=100)
    >>> X_train.shape, y_train.shape, X_val.shape, y_val.shape
    ((80, 2), (80, 1), (20, 2), (20, 1))
    """
    _check_sizes(n_samples, noise)
    rng = np.random.default_rng(seed)
    n_outer = n_samples // 2
    angles = rng.uniform(0.0, 2.0 * np.pi, n_samples)
    radius = np.where(np.arange(n_samples) < n_outer, 1.0, 0.5)
    # (N,) angles and radii -> (N, 2) points
    X = np.column_stack([radius * np.cos(angles), radius * np.sin(angles)])
    X += rng.normal(0.0, noise, X.shape)
    y = (radius == 0.5).astype(np.float64).reshape(-1, 1)
    return train_val_split(X, y, val_fraction, rng)


def get_moons_data(
    n_samples: int = 1000, noise: float = 0.1, val_fraction: float = 0.2, seed: int = 0
) -> Split:
    """Two interleaving half circles, as ``sklearn.datasets.make_moons``.

    Returns ``X`` of shape ``(N, 2)`` and labels of shape ``(N, 1)`` (0.0 for
    the upper moon, 1.0 for the lower one), split as :func:`get_toy_data`.

    Examples
    --------
    >>> X_train, y_train, X_val, y_val = get_moons_data(n_samples=50, seed=1)
    >>> X_train.shape, np.unique(y_train).tolist()
    ((40, 2), [0.0, 1.0])
    """
    _check_sizes(n_samples, noise)
    rng = np.random.default_rng(seed)
    n_upper = n_samples // 2
    lower = np.arange(n_samples) >= n_upper
    t = rng.uniform(0.0, np.pi, n_samples)
    # The lower moon is the upper one turned over and shifted by (1, 0.5).
    X = np.column_stack(
        [
            np.where(lower, 1.0 - np.cos(t), np.cos(t)),
            np.where(lower, 0.5 - np.sin(t), np.sin(t)),
        ]
    )
    X += rng.normal(0.0, noise, X.shape)
    y = lower.astype(np.float64).reshape(-1, 1)
    return train_val_split(X, y, val_fraction, rng)


def get_spirals_data(
    n_samples: int = 900,
    n_classes: int = 3,
    noise: float = 0.2,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """``n_classes`` spiral arms around the origin, one class each.

    Returns ``X`` of shape ``(N, 2)`` and integer labels of shape ``(N,)`` in
    ``[0, n_classes)`` (the form ``'cce'`` takes), split as :func:`get_toy_data`.

    Examples
    --------
    >>> X_train, y_train, X_val, y_val = get_spirals_data(n_samples=90, n_classes=3)
    >>> X_train.shape, y_train.shape, sorted(np.unique(y_train).tolist())
    ((72, 2), (72,), [0, 1, 2])
    """
    _check_sizes(n_samples, noise, minimum=check_positive_int("n_classes", n_classes))
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    radius = rng.uniform(0.0, 1.0, n_samples)
    # Each arm turns once as the radius grows; arms are 2*pi/K apart.
    angles = 2.0 * np.pi * (labels / n_classes + radius)
    angles += rng.normal(0.0, noise, n_samples)
    X = np.column_stack([radius * np.sin(angles), radius * np.cos(angles)])
    return train_val_split(X, labels, val_fraction, rng)


def one_hot(labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Integer class labels ``(N,)`` to one-hot rows ``(N, K)``, float32.

    Parameters
    ----------
    labels : array-like of shape (N,)
        Whole numbers in ``[0, num_classes)`` (an integer or float dtype).
    num_classes : int, optional
        ``K``; ``labels.max() + 1`` if not given.

    Returns
    -------
    ndarray of shape (N, K), float32
        Row ``n`` is 1.0 in column ``labels[n]`` and 0.0 elsewhere.

    Examples
    --------
    >>> one_hot(np.array([2, 0, 1]))
    array([[0., 0., 1.],
           [1., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    >>> one_hot([1], num_classes=4)
    array([[0., 1., 0., 0.]], dtype=float32)
    """
    labels = check_float_array("labels", labels, min_ndim=1)
    if labels.ndim != 1:
        raise ValueError(
            f"labels: expected integer labels of shape (N,). Received shape "
            f"{labels.shape}"
        )
    if np.any(labels < 0) or np.any(labels != np.round(labels)):
        bad = labels[(labels < 0) | (labels != np.round(labels))][0]
        raise ValueError(
            f"labels: expected whole numbers >= 0. Received {bad!r} among them"
        )
    labels = labels.astype(np.intp)
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    num_classes = check_positive_int("num_classes", num_classes)
    if labels.max() >= num_classes:
        raise ValueError(
            f"labels: expected values in [0, {num_classes}) for num_classes="
            f"{num_classes}. Received {int(labels.max())}"
        )
    encoded = np.zeros((len(labels), num_classes), dtype=np.float32)
    encoded[np.arange(len(labels)), labels] = 1.0
    return encoded


def from_one_hot(y: np.ndarray) -> np.ndarray:
    """One-hot rows ``(N, K)`` back to integer labels ``(N,)``, int64.

    Every row must hold exactly one 1 and zeros elsewhere; for predicted
    probabilities use ``nnscratch.utils.metrics.predicted_classes`` (argmax).

    Examples
    --------
    >>> from_one_hot(np.array([[0, 0, 1], [1, 0, 0]]))
    array([2, 0])
    """
    y = check_float_array("y", y, min_ndim=1)
    if y.ndim != 2:
        raise ValueError(
            f"y: expected one-hot rows of shape (N, K). Received shape {y.shape}"
        )
    is_binary = (y == 0) | (y == 1)
    rows_ok = is_binary.all(axis=1) & (np.count_nonzero(y, axis=1) == 1)
    if not rows_ok.all():
        row = int(np.argmin(rows_ok))
        raise ValueError(
            "y: expected one-hot rows (a single 1, zeros elsewhere). "
            f"Received row {row}: {y[row].tolist()}"
        )
    return np.argmax(y, axis=1).astype(np.int64)
