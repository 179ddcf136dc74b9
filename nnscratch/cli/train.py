"""``nnscratch train``: an MLP trained on an .npz or CSV file, then saved."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.cli.common import (
    CliError,
    activation_name,
    add_command,
    add_seed_and_verbose,
    fraction,
    import_builtins,
    layer_sizes,
    non_negative_float,
    positive_float,
    positive_int,
)
from nnscratch.engine.training import TrainingDivergedWarning
from nnscratch.utils.files import as_rows, check_output_file, read_csv, read_features

TRAIN_EPILOG = """\
DATA is an .npz file with arrays X (N, features) and y, or a CSV file with a
header row whose target is the last column (or --target-column). The head
follows the loss: cce -> softmax over K classes (integer labels 0..K-1 or
one-hot rows), bce -> one sigmoid output (targets 0/1), mse -> linear outputs,
one per column of y. The features are standardised by a Normalization layer
adapted to the training rows and saved inside the model (--no-standardize to
use them as given); a CSV's feature names are saved too, so 'predict' picks
those columns by name.

examples:
  nnscratch train iris.csv --layers 16 --loss cce --epochs 200 --output iris.npz
  nnscratch train data.npz --layers 64,32 --loss bce --optimizer sgd --lr 0.1 \\
      --val-fraction 0.2 --patience 10 --output model.npz
  nnscratch train houses.csv --target-column price --loss mse --l2 1e-4
"""


def optimizer_types() -> dict[str, type]:
    """Every optimizer available, by lower-case class name (``'adam'``, ...)."""
    from nnscratch.optimizers.optimizer import OPTIMIZER_TYPES

    import_builtins()
    return {name.lower(): cls for name, cls in OPTIMIZER_TYPES.items()}


def make_optimizer(name: str, learning_rate: float | None) -> Any:
    available = optimizer_types()
    if name.lower() not in available:
        raise CliError(
            f"argument --optimizer: expected one of {', '.join(sorted(available))}. "
            f"Received {name!r}"
        )
    kwargs = {} if learning_rate is None else {"learning_rate": learning_rate}
    return available[name.lower()](**kwargs)


MAX_MODEL_BYTES = 8 * 2**30
"""The most memory a network built from the command line may take to train."""


def _targets(loss: str, y: np.ndarray) -> tuple[np.ndarray, int, list[int] | None]:
    """Targets as the loss takes them, the number of outputs the head needs,
    and the class each output stands for when labels are not 0..K-1."""
    y = np.asarray(y)
    if y.ndim > 2:
        raise CliError(f"y: expected shape (N,) or (N, K). Received {y.shape}")
    if loss == "mse":
        y = y.reshape(-1, 1) if y.ndim == 1 else y  # (N,) -> (N, 1)
        return y, y.shape[1], None
    if loss == "bce":
        return y, 1, None
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot rows (N, K)
        return y, y.shape[1], None
    labels = y.reshape(-1)
    whole = np.isfinite(labels) & (labels >= 0) & (labels == np.round(labels))
    if not whole.all():
        raise CliError(
            "cce targets: expected class labels 0, 1, ..., K-1. Received "
            f"{labels[~whole][0]!r} among them"
        )
    # One output per class that occurs: labels 0 and 5,000,000 make a
    # 2-way network, not a 5,000,001-way one. Labels that are not 0..K-1 are
    # mapped to output indices, and the model keeps them (class_labels).
    classes, indices = np.unique(labels.astype(np.int64), return_inverse=True)
    if np.array_equal(classes, np.arange(len(classes))):
        return indices, max(len(classes), 2), None
    return indices, max(len(classes), 2), classes.tolist()


def model_from_args(
    args: argparse.Namespace,
    optimizer: Any,
    inputs: int,
    outputs: int,
    preprocessing: Any = None,
) -> Any:
    """The network of ``--layers``, ``--activation``, ``--l2``, ``--dropout``.

    ``inputs`` features -> the hidden layers -> ``outputs``, with the head the
    loss expects (see ``nnscratch.apps.builders.build_mlp``), after the
    ``preprocessing`` layer if given.
    """
    from nnscratch.apps.builders import build_mlp

    sizes = [inputs, *args.layers, outputs]
    weights = sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
    # Adam keeps two moments and training a gradient: 4 arrays of float32.
    if weights * 16 > MAX_MODEL_BYTES:
        raise CliError(
            f"a {'-'.join(map(str, sizes))} network has {weights:,} weights, "
            f"{weights * 16 / 2**30:.1f} GiB to train; expected at most "
            f"{MAX_MODEL_BYTES // 2**30} GiB"
        )
    return build_mlp(
        sizes,
        args.loss,
        optimizer,
        seed=args.seed,
        activation=args.activation,
        l2_lambda=args.l2,
        dropout=args.dropout,
        preprocessing=preprocessing,
    )


def feature_names(path: Path, target_column: str | None) -> list[str] | None:
    """A CSV's feature column names (the header without the target)."""
    if path.suffix.lower() != ".csv":
        return None
    header, _ = read_csv(path)
    target = target_column if target_column in header else None
    if target is None:
        index = -1 if target_column is None else int(target_column)
        target = header[index]
    return [name for name in header if name != target]


def read_named_columns(path: Path, names: list[str]) -> np.ndarray:
    """The columns of a CSV the model was trained on, by header name, in the
    training order; any other column (the target, say) is left out."""
    header, values = read_csv(path)
    missing = [name for name in names if name not in header]
    if missing:
        raise CliError(
            f"{path}: expected the feature columns the model was trained on. "
            f"Missing: {', '.join(missing[:10])}"
        )
    return values[:, [header.index(name) for name in names]]


def run_train(args: argparse.Namespace) -> int:
    """Train an MLP on an .npz or CSV file and save it.

    Trains a multi-layer perceptron on DATA, prints its final metrics and
    saves it to the --output file, for 'nnscratch predict'.
    """
    from nnscratch.apps.demos import (
        format_epochs,
        format_metrics,
        holdout,
        train_and_evaluate,
    )
    from nnscratch.layers.normalization import Normalization

    check_output_file(args.output)
    X, y = read_features(args.data, args.target_column)
    X = as_rows(X)
    optimizer = make_optimizer(args.optimizer, args.lr)  # a bad name fails first
    y, outputs, classes = _targets(args.loss, y)
    if len(X) != len(y):
        raise CliError(f"{args.data}: expected one target per row of X ({len(X)})")
    data = holdout(X, y, args.val_fraction, args.seed)
    standardize = None
    if args.standardize:
        # Statistics of the training rows only: validation stays unseen.
        standardize = Normalization()
        standardize.adapt(data["X_train"])
    model = model_from_args(args, optimizer, X.shape[1], outputs, standardize)
    model.class_labels = classes
    model.feature_names = feature_names(args.data, args.target_column)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingDivergedWarning)
        run = train_and_evaluate(
            model, data, args.epochs, args.batch_size, args.patience, args.verbose
        )
    for warning in caught:
        if issubclass(warning.category, TrainingDivergedWarning):
            raise CliError(f"{warning.message} Nothing was saved: try a smaller --lr")
        warnings.showwarning(
            warning.message, warning.category, warning.filename, warning.lineno
        )
    if not run.epochs:
        raise CliError("training stopped before the first epoch ended")
    print(
        f"Trained {format_epochs(run.epochs)} on {len(data['X_train'])} rows: "
        f"{X.shape[1]} features -> {'-'.join(map(str, args.layers)) or 'no'} hidden "
        f"-> {outputs} outputs ({args.loss}, {type(model.optimizer).__name__})"
    )
    for line in format_metrics(run.metrics):
        print(line)
    model.save(args.output)
    print(f"saved the model to {args.output}")
    return 0


def add_train_parser(commands: Any) -> None:
    """Add ``train`` to the ``nnscratch`` subcommands."""
    train = add_command(commands, "train", run_train, TRAIN_EPILOG)
    train.add_argument("data", type=Path, metavar="DATA", help=".npz or .csv file")
    option = train.add_argument
    option(
        "--layers",
        type=layer_sizes,
        default="64,32",
        metavar="SIZES",
        help="hidden layer sizes, comma-separated; '' for none",
    )
    option(
        "--activation",
        type=activation_name,
        default="relu",
        metavar="NAME",
        help="hidden activation: relu, tanh, sigmoid, gelu, ...",
    )
    option("--loss", choices=("cce", "bce", "mse"), default="cce", help="the loss")
    option(
        "--optimizer",
        default="adam",
        metavar="NAME",
        help=", ".join(sorted(optimizer_types())),
    )
    option("--lr", type=positive_float, help="learning rate (the optimizer's default)")
    option("--epochs", type=positive_int, default=100, metavar="N", help="most epochs")
    option("--batch-size", type=positive_int, default=32, metavar="B", help="rows")
    option(
        "--val-fraction",
        type=fraction,
        default=0.2,
        metavar="F",
        help="share held out for validation; 0 for none",
    )
    option(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        help="feed the features as they are, not standardised by a Normalization "
        "layer adapted to the training rows (saved with the model)",
    )
    option(
        "--patience",
        type=positive_int,
        metavar="P",
        help="stop after P epochs without a lower val_loss, keep the best",
    )
    option("--l2", type=non_negative_float, default=0.0, help="L2 on the weights")
    option(
        "--dropout",
        type=fraction,
        default=0.0,
        metavar="D",
        help="dropout rate after each hidden layer",
    )
    option(
        "--target-column",
        metavar="NAME_OR_INDEX",
        help="the CSV's target column (default: the last)",
    )
    option(
        "--output",
        type=Path,
        default="model.npz",
        metavar="MODEL.npz",
        help="where the model is saved",
    )
    add_seed_and_verbose(train, verbose=2)
