"""Plots of training, drawn with matplotlib's object API (no global pyplot state)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from nnscratch.core.validation import check_float_array
from nnscratch.utils.io import atomic_write
from nnscratch.utils.metrics import predicted_classes

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork


def save_figure(figure: Figure, path: str | os.PathLike) -> None:
    """Write ``figure`` as a PNG, atomically (temporary file, then rename)."""
    with atomic_write(path) as handle:
        figure.savefig(handle, format="png", dpi=100, bbox_inches="tight")


def plot_history(
    history: dict[str, list[float]], path: str | os.PathLike | None = None
) -> Figure:
    """Loss (and accuracy, if recorded) per epoch, training beside validation.

    Parameters
    ----------
    history : dict of str to list of float
        As returned by ``NeuralNetwork.train``.
    path : path-like, optional
        Where to write the figure as a PNG.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_history({"loss": [0.7, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.5]})
    >>> [axes.get_title() for axes in figure.axes]
    ['loss']
    """
    if not isinstance(history, dict) or not history.get("loss"):
        raise ValueError(
            "history: expected the dict train() returns, with a non-empty 'loss' "
            f"list. Received: {type(history).__name__}"
        )
    metrics = [m for m in ("loss", "accuracy") if history.get(m)]
    figure = Figure(figsize=(5 * len(metrics), 4))
    for position, metric in enumerate(metrics, start=1):
        axes = figure.add_subplot(1, len(metrics), position)
        epochs = np.arange(1, len(history[metric]) + 1)
        axes.plot(epochs, history[metric], label="training")
        if history.get(f"val_{metric}"):
            axes.plot(epochs, history[f"val_{metric}"], label="validation")
        axes.set_title(metric)
        axes.set_xlabel("epoch")
        axes.legend()
        axes.grid(alpha=0.3)
    if path is not None:
        save_figure(figure, path)
    return figure


def plot_decision_boundary(
    model: NeuralNetwork,
    X: np.ndarray,
    y: np.ndarray,
    path: str | os.PathLike | None = None,
    resolution: int = 200,
) -> Figure:
    """The class the model predicts over the plane, with the data on top.

    Parameters
    ----------
    model : NeuralNetwork
        A model taking 2 input features.
    X : ndarray of shape (N, 2)
    y : ndarray of shape (N,), (N, 1) or (N, K)
        Labels: 0/1, integers, or one-hot rows.
    path : path-like, optional
        Where to write the figure as a PNG.
    resolution : int, default 200
        Grid points per axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = check_float_array("X", X, min_ndim=2)
    if X.shape[1] != 2:
        raise ValueError(
            f"X: expected 2 features to draw a plane. Received shape {X.shape}"
        )
    y = np.asarray(y)
    labels = y.reshape(len(y)) if y.ndim == 1 or y.shape[1] == 1 else y.argmax(axis=1)
    margin = 0.5
    (x_min, y_min), (x_max, y_max) = X.min(axis=0) - margin, X.max(axis=0) + margin
    grid_x, grid_y = np.meshgrid(
        np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution)
    )
    # (R, R) and (R, R) -> (R*R, 2): one row per grid point.
    grid = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    classes = predicted_classes(model.predict(grid)).reshape(grid_x.shape)

    figure = Figure(figsize=(6, 5))
    axes = figure.add_subplot()
    axes.contourf(grid_x, grid_y, classes, alpha=0.3, cmap="coolwarm")
    axes.scatter(
        X[:, 0],
        X[:, 1],
        c=labels,
        s=12,
        cmap="coolwarm",
        edgecolors="k",
        linewidths=0.3,
    )
    axes.set_title("decision boundary")
    if path is not None:
        save_figure(figure, path)
    return figure
