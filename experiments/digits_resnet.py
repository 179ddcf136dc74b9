"""Train a small residual network on scikit-learn's 8x8 handwritten digits.

Run ``python experiments/digits_resnet.py [--output-dir DIR] [--epochs N] [--seed S]``
(needs the ``[data]`` extra: ``pip install -e '.[data]'``). It prints the final
metrics and the seconds per epoch, and writes ``history.png``,
``confusion_matrix.png``, ``saliency.png`` (``model.input_gradients`` of a few
test images) and ``filters.png`` into the output folder (``outputs/resnet`` by
default).

The network: a stem convolution with BatchNorm, two residual blocks of
Conv2D-BatchNorm-ReLU-Conv2D-BatchNorm around an identity path, pooling and a
Dense classifier (``nnscratch.apps.demos.build_digits_resnet_model``), the same one
``nnscratch demo resnet`` runs.
"""

from __future__ import annotations

from nnscratch.apps.demos import DEMOS
from nnscratch.cli import run_script

EXPERIMENT = DEMOS["resnet"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, print the metrics, write the plots; return the metrics."""
    return run_script(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
