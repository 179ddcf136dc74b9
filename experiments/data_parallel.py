"""Data-parallel training on MPI: the same run on 1, 2 or K processes.

Run ``mpiexec -n 2 python experiments/data_parallel.py [--epochs N]`` (needs
the ``[mpi]`` extra: ``pip install -e '.[mpi]'``); ``python
experiments/data_parallel.py`` runs the same script on one process. A CNN
with BatchNorm and Dropout learns 8x8 "digits" made on the fly (no
download); process 0 prints the epochs and the final weights' checksum,
which is the same for any number of processes (float64). Every process
reads only its share of each global batch from a memory-mapped file.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from nnscratch import (
    Activation,
    Adam,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    NeuralNetwork,
)
from nnscratch.distributed import DataParallel


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 8x8 images of 4 bar patterns (a class per pattern)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = 0.3 * rng.standard_normal((n, 1, 8, 8))
    for k in range(4):
        rows = labels == k
        if k < 2:
            images[rows, 0, :, 2 + 3 * k] += 1.0  # a vertical bar
        else:
            images[rows, 0, 2 + 3 * (k - 2), :] += 1.0  # a horizontal bar
    return images, labels


def build(seed: int) -> NeuralNetwork:
    model = NeuralNetwork("cce", Adam(0.005), seed=seed, dtype="float64")
    for layer in (
        Conv2D(1, 8, 3, padding=1),
        Activation("relu"),
        BatchNorm(8),
        MaxPool2D(2),
        Flatten(),
        Dropout(0.2),
        Dense(8 * 4 * 4, 4),
        Activation("softmax"),
    ):
        model.add(layer)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    dp = DataParallel()
    X, y = make_data(args.samples)
    with tempfile.TemporaryDirectory() as folder:
        # One file every process maps; each reads only the rows it trains on.
        path = Path(folder) / f"X.{dp.rank}.npy"
        np.save(path, X)
        X_mapped = np.load(path, mmap_mode="r")
        model = build(seed=0)
        model.train(
            X_mapped,
            y,
            epochs=args.epochs,
            batch_size=args.batch_size,
            X_val=X[:400],
            y_val=y[:400],
            verbose=2,
            distributed=dp,
        )
        del X_mapped
    if dp.is_main:
        checksum = sum(float(np.abs(w).sum()) for w in model.get_weights())
        print(f"{dp.size} process(es); weights checksum {checksum:.10f}")


if __name__ == "__main__":
    main()
