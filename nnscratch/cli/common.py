"""What every ``nnscratch`` command shares: errors, the parser, argument types."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any

import numpy as np

PROG = "nnscratch"
DEBUG_VARIABLE = "NNSCRATCH_DEBUG"
"""Set it to 1 to see the traceback of an unexpected error."""


class CliError(Exception):
    """A problem with the user's input, reported as one line (exit code 2)."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block), raised."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{message} (see '{self.prog} --help')")


class HelpFormatter(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Epilogs as written (examples), and each option's default in its help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------- argument checking
def argument_type(convert: Any, check: Any, expected: str) -> Any:
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


positive_int = argument_type(int, lambda v: v >= 1, "a positive integer")
non_negative_int = argument_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = argument_type(
    float, lambda v: np.isfinite(v) and v > 0, "a positive number"
)
non_negative_float = argument_type(
    float, lambda v: np.isfinite(v) and v >= 0, "a number >= 0"
)
fraction = argument_type(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


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


def add_command(
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
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def add_seed_and_verbose(parser: argparse.ArgumentParser, verbose: int) -> None:
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
