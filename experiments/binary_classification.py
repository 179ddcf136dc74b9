"""Train the seed's network on noisy concentric circles and plot the result.

Run ``python experiments/binary_classification.py [--output-dir DIR]
[--epochs N] [--seed S]``. It prints the final metrics and writes
``history.png`` and ``decision_boundary.png`` into the output folder
(``outputs/`` by default). The data, the network and its training settings
are the ``circles`` demo of :mod:`nnscratch.apps.demos`, the same one
``nnscratch demo circles`` runs.
"""

from __future__ import annotations

from nnscratch.apps.demos import DEMOS
from nnscratch.cli import run_script

EXPERIMENT = DEMOS["circles"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, print the metrics, write the plots; return the metrics."""
    return run_script(EXPERIMENT, argv, output_dir="outputs")


if __name__ == "__main__":
    main()
