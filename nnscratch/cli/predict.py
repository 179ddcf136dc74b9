"""``nnscratch predict``: a saved model's predictions for a file, as CSV."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.cli.common import CliError, add_command, import_builtins
from nnscratch.cli.train import read_named_columns
from nnscratch.utils.files import (
    as_rows,
    check_input_file,
    check_output_file,
    read_features,
)

PREDICT_EPILOG = """\
DATA holds the features: an .npz with array X, or a CSV with a header row
whose columns are all features (drop a target with --target-column). The
output has one column per network output (output_0, ...) and, for a
classifier, the predicted class.

examples:
  nnscratch predict model.npz new.csv                   # CSV to stdout
  nnscratch predict model.npz test.csv --target-column label --output pred.csv
"""


def _first_dense_inputs(model: Any) -> int | None:
    from nnscratch.core.tree import leaves

    first = next((layer for _, layer in leaves(model.layers)), None)
    size = getattr(first, "num_features", None) or getattr(first, "input_size", None)
    return size if isinstance(size, int) else None


def predictions_csv(model: Any, outputs: np.ndarray) -> str:
    """One column per output (``output_0``, ...), plus ``class`` for classifiers
    (the data's own label when the model was trained on labels not 0..K-1)."""
    from nnscratch.utils.metrics import predicted_classes

    outputs = as_rows(outputs)
    header = [f"output_{k}" for k in range(outputs.shape[1])]
    columns = [[f"{value:.8g}" for value in row] for row in outputs.tolist()]
    if model.loss_name in ("bce", "cce"):
        header.append("class")
        labels = model.class_labels
        for row, index in zip(columns, predicted_classes(outputs), strict=True):
            row.append(str(int(index) if labels is None else labels[int(index)]))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(columns)
    return text.getvalue()


def run_predict(args: argparse.Namespace) -> int:
    """Predict with a saved model, as CSV.

    Loads MODEL and writes its predictions for DATA as CSV.
    """
    from nnscratch.engine.model import NeuralNetwork
    from nnscratch.utils.io import atomic_write

    check_input_file(args.model, (".npz",))
    if args.output is not None:
        check_output_file(args.output)
    import_builtins()
    model = NeuralNetwork.load(args.model)
    if model.feature_names and args.data.suffix.lower() == ".csv":
        X = read_named_columns(args.data, model.feature_names)
    else:
        X, _ = read_features(args.data, args.target_column, with_target=False)
    inputs = _first_dense_inputs(model)
    if inputs is not None:
        X = as_rows(X)
        if X.shape[1] == inputs + 1 and args.target_column is None:
            raise CliError(
                f"{args.data}: the model takes {inputs} features, the file has "
                f"{X.shape[1]} columns; name the target to drop with "
                "--target-column"
            )
    text = predictions_csv(model, model.predict(X))
    if args.output is None:
        sys.stdout.write(text)
        return 0
    with atomic_write(args.output) as handle:
        handle.write(text.encode("utf-8"))
    print(f"wrote {len(X)} predictions to {args.output}")
    return 0


def add_predict_parser(commands: Any) -> None:
    """Add ``predict`` to the ``nnscratch`` subcommands."""
    predict = add_command(commands, "predict", run_predict, PREDICT_EPILOG)
    predict.add_argument("model", type=Path, metavar="MODEL", help="a saved .npz")
    predict.add_argument("data", type=Path, metavar="DATA", help=".npz or .csv file")
    predict.add_argument(
        "--target-column",
        metavar="NAME_OR_INDEX",
        help="a CSV column to drop before predicting",
    )
    predict.add_argument(
        "--output",
        type=Path,
        metavar="PREDICTIONS.csv",
        help="where the predictions go (default: stdout)",
    )
