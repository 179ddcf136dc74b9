"""Train the seed's network on noisy concentric circles and plot the result.

Run ``python experiments/binary_classification.py [--output-dir DIR]``. It
prints the final metrics and writes ``history.png`` and
``decision_boundary.png`` into the output folder (``outputs/`` by default).
The data, the network and its training settings are the ``circles`` demo of
:mod:`nnscratch.demos`, the same one ``nnscratch demo circles`` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nnscratch.demos import DEMOS, run_demo
from nnscratch.demos import build_circles_model as build_model

__all__ = ["build_model", "main"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, print the metrics, write the plots; return the validation scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs"))
    parser.add_argument("--epochs", type=int, default=DEMOS["circles"].epochs)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    result = run_demo(
        "circles", output_dir=args.output_dir, epochs=args.epochs, seed=args.seed
    )
    print("wrote " + ", ".join(result["files"]))
    metrics = result["metrics"]
    return {"loss": metrics["val_loss"], "accuracy": metrics["val_accuracy"]}


if __name__ == "__main__":
    main()
