"""Crash-safe writes: a process killed while writing never leaves a torn file.

For each kind of file nnscratch writes (a model from ``save``, a CSV log from
``CSVLogger``, a PNG from ``save_figure``) a subprocess keeps rewriting one
path, and the test kills it with SIGKILL at random moments, 15 times (after
a first kill once the file exists). After each kill the file must be
complete: the version that was there before, or one the killed process
wrote; never a mix or a torn file. Temporary files may be left beside it.

A fresh interpreter for every kill would cost most of the time budget in
imports, so one subprocess per kind imports nnscratch once and then forks a
writer on request; the test kills that writer by its process id. The forking
process is single-threaded (its BLAS pools are pinned to one thread), so
forking it is safe.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from helpers import time_limit
from PIL import Image

from nnscratch import NeuralNetwork

KILLS = 15

WRITER_SERVER = textwrap.dedent(
    '''
    """Fork a writer that rewrites `path` forever, whenever stdin asks."""
    import os
    import sys

    import numpy as np

    kind, path = sys.argv[1], sys.argv[2]
    if kind == "model":
        from nnscratch import Dense, NeuralNetwork

        model = NeuralNetwork(loss_name="mse", seed=0)
        model.add(Dense(1024, 1024))  # 4 MB of float32: a save takes ~10 ms

        def start():
            def write(version):
                # Every weight holds the version, so a mix would show.
                for layer in model.layers:
                    for array in layer.params.values():
                        array[...] = version
                model.save(path)

            return write

    elif kind == "csv":
        from nnscratch import CSVLogger

        def start():
            logger = CSVLogger(path, append=True)
            logger.on_train_begin()  # the rows of the file so far, if any

            def write(version):
                logs = {f"metric_{j}": version + j / 8 for j in range(40)}
                logger.on_epoch_end(len(logger.rows), logs)

            return write

    else:
        from matplotlib.figure import Figure

        from nnscratch.utils.visualization import save_figure

        figure = Figure(figsize=(4, 3))
        axes = figure.add_subplot()
        axes.plot(np.random.default_rng(0).standard_normal(5000))

        def start():
            return lambda version: save_figure(figure, path)  # ~40 ms

    print("ready", flush=True)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            write, version = start(), int(line)
            # The writer announces itself once it runs: the test's random
            # delay starts from here, not from a fork not yet scheduled.
            print(os.getpid(), flush=True)
            while True:
                write(version)
                version += 1
        os.waitpid(pid, 0)  # until the test kills it
        print("reaped", flush=True)
    '''
)


def kill_writers_at_random(kind: str, path: Path, check) -> None:
    """Kill a fresh writer KILLS times; call ``check(i)`` after kill ``i``.

    Writer 0 is killed once its first write is complete, which also times a
    write; writers 1 to KILLS are killed after a random delay of up to three
    such writes (so that a slow machine gets longer delays).
    """
    rng = np.random.default_rng(0)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", WRITER_SERVER, kind, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    writer = None
    with server, time_limit(60, "the crash test"):
        try:
            assert server.stdout.readline() == "ready\n"
            for i in range(KILLS + 1):
                # Writer i numbers its versions from 1000 * i.
                server.stdin.write(f"{1000 * i}\n")
                server.stdin.flush()
                writer = int(server.stdout.readline())
                if i == 0:
                    started = time.monotonic()
                    while not path.exists():
                        time.sleep(0.001)
                    write_time = time.monotonic() - started
                else:
                    time.sleep(rng.uniform(0, 3 * write_time))
                os.kill(writer, signal.SIGKILL)
                assert server.stdout.readline() == "reaped\n"
                writer = None
                check(i)
            server.stdin.close()
            assert server.wait(timeout=10) == 0
        finally:
            if writer is not None:
                os.kill(writer, signal.SIGKILL)
            if server.poll() is None:
                server.kill()


def leftovers(path: Path) -> list[str]:
    """The files beside ``path`` other than itself: temporary files only.

    A writer killed inside ``atomic_write`` leaves its temporary file
    (``.name.XXXX.tmp``) behind, as any process killed by SIGKILL does:
    nothing runs to remove it. It never replaces ``path``.
    """
    names = sorted(p.name for p in path.parent.iterdir() if p != path)
    stray = [
        n for n in names if not (n.startswith(f".{path.name}.") and n[-4:] == ".tmp")
    ]
    assert not stray, stray
    return names


def test_a_killed_save_leaves_the_previous_or_the_new_model(tmp_path):
    path = tmp_path / "model.npz"
    versions = [None]

    def check(i):
        model = NeuralNetwork.load(path)  # complete, or this raises
        weights = np.concatenate([w.ravel() for w in model.get_weights()])
        version = int(weights[0])
        assert (weights == version).all(), "weights from two saves mixed"
        assert version == versions[-1] or 1000 * i <= version < 1000 * (i + 1)
        versions.append(version)

    kill_writers_at_random("model", path, check)
    # Many kills landed in the middle of a save (each left its temporary
    # file): the test did kill writes, not just the time between them.
    assert len(leftovers(path)) >= KILLS // 3


def read_log(path: Path) -> list[dict[str, str]]:
    text = path.read_text()
    assert text.endswith("\n")
    rows = list(csv.DictReader(text.splitlines()))
    columns = ["epoch"] + [f"metric_{j}" for j in range(40)]
    for epoch, row in enumerate(rows):
        assert list(row) == columns and None not in row.values()
        assert int(row["epoch"]) == epoch
        # metric_j = version + j / 8, exact in binary: a number cut short
        # (1000.875 -> 1000.8) would show.
        first = float(row["metric_0"])
        assert all(float(row[f"metric_{j}"]) - first == j / 8 for j in range(40))
    return rows


def test_a_killed_csv_logger_leaves_whole_rows(tmp_path):
    path = tmp_path / "log.csv"
    counts = [1]

    def check(i):
        rows = read_log(path)
        # The previous file or a longer one: a rewrite never loses rows.
        assert len(rows) >= counts[-1]
        counts.append(len(rows))

    kill_writers_at_random("csv", path, check)
    leftovers(path)


def test_a_killed_save_figure_leaves_a_readable_png(tmp_path):
    path = tmp_path / "figure.png"
    first = []

    def check(i):
        with Image.open(path) as image:
            image.load()  # a truncated PNG raises OSError here
            assert image.format == "PNG" and image.size[0] > 100
        # Every save draws the same figure: the same bytes each time.
        data = path.read_bytes()
        first.append(first[0] if first else data)
        assert data == first[0]

    kill_writers_at_random("png", path, check)
    assert len(leftovers(path)) >= KILLS // 3
