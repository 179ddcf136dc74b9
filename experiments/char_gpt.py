"""A small causal transformer (a character-level GPT) trained on Python source.

Run ``python experiments/char_gpt.py [--seconds S] [--rounds N]
[--output-dir DIR] [--text FILE]``. The corpus is
:func:`nnscratch.utils.text.load_text`: the Python standard library's own
``.py`` files, on every machine, no download (or any text file with
``--text``). 90% of it trains and the last 10%
validates. Training takes rounds of 40 AdamW steps on batches of 32 random
64-character windows, each followed by the validation loss, with the learning
rate decaying along a cosine to a tenth of ``--learning-rate``, and stops
before the round that would pass ``--seconds`` (default 110: about two
minutes on 2 cores) or after ``--rounds``. It prints the validation loss per
round and a generated sample (which by then writes indented ``def``/``return`` lines,
comments and docstrings), and writes ``history.png`` and ``attention.png``
(the first block's attention weights on the sample's start) into the output
folder (``outputs/char_gpt`` by default).

On several cores, ``mpiexec -n 2 python experiments/char_gpt.py --distributed
--threads 1`` (the ``[mpi]`` extra) trains the same model data-parallel: the
same batches and the same weights step for step as one process, each process
computing half of every batch, so more rounds fit in the same seconds. It
reads 1,000,000 characters by default instead of 300,000: the extra steps
overfit the smaller text.
"""

from __future__ import annotations

import argparse

from nnscratch.apps.gpt import run_char_gpt
from nnscratch.cli.common import positive_int


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=110.0)
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=None,
        help="at most this many 40-step rounds",
    )
    parser.add_argument("--text", default=None, help="a UTF-8 text file")
    parser.add_argument(
        "--max-chars",
        type=positive_int,
        default=None,
        help="characters of the text to use (default 300,000; 1,000,000 with "
        "--distributed, whose extra steps overfit the smaller text)",
    )
    parser.add_argument("--output-dir", default="outputs/char_gpt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS threads (1 on a busy machine)"
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training on the processes of mpiexec",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        from nnscratch.utils.threads import set_num_threads

        set_num_threads(args.threads)
    distributed = None
    if args.distributed:
        from nnscratch.distributed import DataParallel

        distributed = DataParallel()
    max_chars = args.max_chars
    if max_chars is None:
        # Two processes take ~1.4x the steps in the same seconds; on 300,000
        # characters their validation loss turns up after ~1,300 of them.
        max_chars = 1_000_000 if args.distributed else 300_000
    return run_char_gpt(
        args.seconds,
        args.text,
        max_chars,
        args.output_dir,
        args.seed,
        args.learning_rate,
        distributed=distributed,
        rounds=args.rounds,
    )


if __name__ == "__main__":
    main()
