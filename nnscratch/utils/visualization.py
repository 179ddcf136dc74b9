"""Plots of training, drawn with matplotlib's object API (no global pyplot state)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from nnscratch.core.validation import check_float_array, check_positive_int
from nnscratch.utils.io import atomic_write
from nnscratch.utils.metrics import confusion_matrix, predicted_classes

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


def plot_confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    path: str | os.PathLike | None = None,
    class_names: list[str] | None = None,
) -> Figure:
    """The confusion matrix as a heat map, each cell labelled with its count.

    Parameters
    ----------
    y_true : ndarray of shape (N,), (N, 1) or (N, K)
        Integer labels, 0/1 targets, or one-hot rows.
    y_pred : ndarray of shape (N,), (N, 1) or (N, K)
        Predicted labels, or the network's outputs (probabilities).
    path : path-like, optional
        Where to write the figure as a PNG.
    class_names : list of str, optional
        One name per class for the ticks; the class indices if not given.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_confusion_matrix([0, 1, 1], [0, 1, 0], class_names=["a", "b"])
    >>> [text.get_text() for text in figure.axes[0].texts]
    ['1', '0', '1', '1']
    """
    num_classes = None if class_names is None else len(class_names)
    counts = confusion_matrix(y_true, y_pred, num_classes=num_classes)
    k = len(counts)
    names = [str(i) for i in range(k)] if class_names is None else class_names
    figure = Figure(figsize=(1.5 + 0.5 * max(k, 6), 1.0 + 0.5 * max(k, 6)))
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    # White text on the darker half of the colour scale, black on the lighter.
    threshold = counts.max() / 2.0
    for (row, column), count in np.ndenumerate(counts):
        axes.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if count > threshold else "black",
        )
    axes.set_xticks(np.arange(k), labels=names)
    axes.set_yticks(np.arange(k), labels=names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    axes.set_title(f"confusion matrix (accuracy {accuracy:.3f})")
    if path is not None:
        save_figure(figure, path)
    return figure


def _filter_weights(layer_or_weights: object) -> np.ndarray:
    """``W`` of shape (out, in, kh, kw) from a convolution layer or an array."""
    params = getattr(layer_or_weights, "params", None)
    if isinstance(params, dict):
        if "W" not in params:
            raise ValueError(
                "layer_or_weights: expected a layer with params['W']. Received "
                f"{type(layer_or_weights).__name__} with params {sorted(params)}"
            )
        layer_or_weights = params["W"]
    weights = check_float_array("weights", layer_or_weights, min_ndim=1)
    if weights.ndim != 4:
        raise ValueError(
            "weights: expected convolution filters of shape (out_channels, "
            f"in_channels, kh, kw). Received shape {weights.shape}"
        )
    return weights


def plot_filters(
    layer_or_weights: object,
    path: str | os.PathLike | None = None,
    max_filters: int = 64,
) -> Figure:
    """A grid of convolution filters, one panel per (output, input) channel pair.

    Meant for the first layer, whose filters act on the image itself: with one
    input channel each output channel is one small image, laid out in a square
    grid; with several, each output channel is a row with one panel per input
    channel. All panels share one grey scale centred on 0 (white positive,
    black negative), so strengths can be compared.

    Parameters
    ----------
    layer_or_weights : Layer or ndarray of shape (out, in, kh, kw)
        A ``Conv2D`` (anything with ``params['W']``) or its weights.
    path : path-like, optional
        Where to write the figure as a PNG.
    max_filters : int, default 64
        Show at most this many output channels (the first ones).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_filters(np.random.default_rng(0).normal(size=(6, 1, 3, 3)))
    >>> len([axes for axes in figure.axes if axes.images])
    6
    """
    weights = _filter_weights(layer_or_weights)
    shown = weights[: check_positive_int("max_filters", max_filters)]
    out_channels, in_channels = shown.shape[:2]
    if in_channels == 1:
        columns = int(np.ceil(np.sqrt(out_channels)))
        rows = int(np.ceil(out_channels / columns))
    else:
        rows, columns = out_channels, in_channels
    limit = float(np.abs(shown).max()) or 1.0
    figure = Figure(figsize=(1.2 * columns + 0.5, 1.2 * rows + 0.6))
    for index in range(out_channels * in_channels):
        # Flat panel index -> (output channel, input channel).
        out_index, in_index = divmod(index, in_channels)
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(
            shown[out_index, in_index],
            cmap="gray",
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
        )
        label = f"{out_index}" if in_channels == 1 else f"{out_index}/{in_index}"
        axes.set_title(label, fontsize=7)
        axes.set_axis_off()
    panels = "output channel" if in_channels == 1 else "output/input channel"
    figure.suptitle(
        f"{len(shown)} of {len(weights)} filters, {in_channels}x{shown.shape[2]}x"
        f"{shown.shape[3]} each; panels by {panels}\n"
        f"grey 0, white +{limit:.2g}, black -{limit:.2g}",
        fontsize=9,
    )
    if path is not None:
        save_figure(figure, path)
    return figure


LAYER_STATISTICS = {
    "activation_mean": ("mean of outputs", "linear"),
    "activation_std": ("std of outputs", "log"),
    "grad_norm": ("weight-gradient norm", "log"),
    "update_ratio": ("update / weight norm", "log"),
}


def plot_layer_stats(
    history: dict[str, list[float]], path: str | os.PathLike | None = None
) -> Figure:
    """What ``train(..., track=True)`` recorded: one panel per statistic, one
    line per layer, over the epochs.

    Vanishing gradients show as gradient norms that shrink layer by layer
    towards the input; dead ReLUs as an output mean and std falling to 0;
    a learning rate too high (or low) as update ratios far above (below) 1e-3.

    Parameters
    ----------
    history : dict of str to list of float
        As returned by ``NeuralNetwork.train(..., track=True)``.
    path : path-like, optional
        Where to write the figure as a PNG.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> history = {"loss": [1.0, 0.5], "0:Dense/grad_norm": [0.3, 0.2],
    ...            "0:Dense/activation_std": [1.0, 0.9]}
    >>> [axes.get_title() for axes in plot_layer_stats(history).axes]
    ['std of outputs', 'weight-gradient norm']
    """
    tracked = {key: values for key, values in history.items() if "/" in key}
    if not tracked:
        raise ValueError(
            "history: expected per-layer statistics ('0:Dense/grad_norm', ...) "
            "from train(..., track=True). Received keys "
            f"{sorted(history)}"
        )
    statistics = [s for s in LAYER_STATISTICS if any(k.endswith(s) for k in tracked)]
    figure = Figure(figsize=(5 * len(statistics), 4))
    for position, statistic in enumerate(statistics, start=1):
        title, scale = LAYER_STATISTICS[statistic]
        axes = figure.add_subplot(1, len(statistics), position)
        for key, values in tracked.items():
            layer, name = key.split("/")
            if name == statistic:
                axes.plot(np.arange(1, len(values) + 1), values, label=layer)
        axes.set_yscale(scale)
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    if path is not None:
        save_figure(figure, path)
    return figure


def plot_saliency(
    images: np.ndarray, saliency: np.ndarray, path: str | os.PathLike
) -> None:
    """Each image beside its saliency map ``|dLoss/dpixel|`` (from
    ``model.input_gradients``): where a change would move the loss most.

    Parameters
    ----------
    images, saliency : ndarray of shape (N, C, H, W)
        The inputs and the gradients of the loss with respect to them; the
        channels are summed for the map.
    path : path-like
        The PNG to write.
    """
    images = check_float_array("images", images, min_ndim=4)
    saliency = check_float_array("saliency", saliency, min_ndim=4)
    count = len(images)
    figure = Figure(figsize=(1.6 * count, 3.4))
    for index in range(count):
        top = figure.add_subplot(2, count, index + 1)
        top.imshow(images[index].mean(axis=0), cmap="gray")  # (C, H, W) -> (H, W)
        bottom = figure.add_subplot(2, count, count + index + 1)
        bottom.imshow(saliency[index].sum(axis=0), cmap="hot")
        for axes in (top, bottom):
            axes.set_xticks([])
            axes.set_yticks([])
    figure.suptitle("inputs (top) and |dLoss/dpixel| (bottom)")
    save_figure(figure, path)
