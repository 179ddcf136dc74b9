"""Train a LeNet-style CNN on scikit-learn's 8x8 handwritten digits.

Run ``python experiments/digits_cnn.py [--output-dir DIR] [--epochs N] [--seed S]``
(needs the ``[data]`` extra: ``pip install -e '.[data]'``). It prints the final
metrics and the seconds per epoch, and writes ``history.png``,
``confusion_matrix.png`` and ``filters.png`` (the first layer's 3x3 filters)
into the output folder (``outputs/digits_cnn`` by default). The data: 1,438
training images (10% of them held out for the validation curves) and 359
test images, stratified; expect about 98% test accuracy.

The network has two convolution stages, one more than the ``digits`` demo
that ``docs/03_cnn_digits.ipynb`` builds step by step (about 97%). Data,
network and settings are the ``digits_cnn`` demo of :mod:`nnscratch.apps.demos`,
the same one ``nnscratch demo digits_cnn`` runs.
"""

from __future__ import annotations

from nnscratch.apps.demos import DEMOS
from nnscratch.cli import run_script

EXPERIMENT = DEMOS["digits_cnn"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, print the metrics, write the plots; return the metrics."""
    return run_script(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
