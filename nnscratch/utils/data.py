"""Toy data sets: small 2-D problems a linear model cannot solve.

Each returns ``X_train, y_train, X_val, y_val``, shuffled and split, with
``X`` of shape ``(N, 2)``. Drawing is seeded, so a seed repeats the data.
"""

from __future__ import annotations

import numpy as np

from nnscratch.core.validation import check_float_in_range, check_positive_int

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
