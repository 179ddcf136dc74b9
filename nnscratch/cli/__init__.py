"""The ``nnscratch`` command: run a demo, train an MLP on a file, predict with it,
export it to ONNX. One module per subcommand (``demo``, ``train``, ``predict``,
``export``) over :mod:`nnscratch.cli.common`.

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
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from nnscratch.cli.common import (
    DEBUG_VARIABLE,
    PROG,
    CliError,
    HelpFormatter,
    Parser,
)
from nnscratch.cli.demo import add_demo_parser, run_script
from nnscratch.cli.export import add_export_parser
from nnscratch.cli.predict import add_predict_parser
from nnscratch.cli.train import add_train_parser

__all__ = ["CliError", "build_parser", "main", "run_script"]


def build_parser() -> argparse.ArgumentParser:
    """The ``nnscratch`` parser with its ``demo``, ``train``, ``export`` and
    ``predict`` commands."""
    from importlib.metadata import version

    parser = Parser(
        prog=PROG,
        description="nnscratch: a deep-learning framework written from scratch "
        "in NumPy.",
        epilog="Run 'nnscratch COMMAND --help' for the options and examples of "
        "each command.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version("nnscratch"))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    add_demo_parser(commands)
    add_train_parser(commands)
    add_export_parser(commands)
    add_predict_parser(commands)
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
