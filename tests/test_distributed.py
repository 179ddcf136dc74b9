"""Data-parallel training under ``mpiexec -n 2``, started from pytest.

Each test runs tests/distributed_worker.py in two MPI processes with a time
limit and compares what they wrote with a run on one process (float64).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import distributed_worker as worker  # noqa: E402

MPIEXEC = shutil.which("mpiexec")
TIME_LIMIT = 60  # seconds for a whole job; a hang fails the test, never blocks


def mpirun(scenario: str, out: Path, processes: int = 2):
    if MPIEXEC is None:
        pytest.skip("mpiexec not found: pip install 'nnscratch[mpi]'")
    pytest.importorskip("mpi4py")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = [
        MPIEXEC,
        "-n",
        str(processes),
        sys.executable,
        str(HERE / "distributed_worker.py"),
        scenario,
        str(out),
    ]
    start = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIME_LIMIT, env=env
    )
    return result, time.monotonic() - start


def weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as archive:
        return [
            archive[f"w{i}"] for i in range(len(archive.files)) if f"w{i}" in archive
        ]


@pytest.fixture(scope="module")
def equal_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("equal")
    result, _ = mpirun("equal", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


@pytest.mark.parametrize("name", list(worker.MODELS))
def test_two_processes_give_the_weights_of_one(equal_run, name):
    out, _ = equal_run
    rank0, rank1 = (
        weights(out / f"{name}.rank0.npz"),
        weights(out / f"{name}.rank1.npz"),
    )
    model, history = worker.train(name, None, verbose=0)
    for mine, theirs, single in zip(rank0, rank1, model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)  # the processes agree exactly
        np.testing.assert_allclose(mine, single, rtol=0, atol=1e-10)
    with np.load(out / f"{name}.rank0.npz") as archive:
        for key in history:  # loss and validation metrics over the whole data
            np.testing.assert_allclose(archive[f"h_{key}"], history[key], atol=1e-10)


def test_the_shares_of_a_batch_that_does_not_divide_evenly():
    # 203 rows in batches of 32: the last batch of 11 splits into 5 + 6.
    from nnscratch.core.shard import BatchShard

    shares = [BatchShard(rank=r, processes=2).take(11) for r in range(2)]
    assert shares == [slice(0, 5), slice(5, 11)]
    _, X, _, batch_size = worker.mlp_dropout()
    assert len(X) % batch_size == 11


def test_each_process_reads_only_its_share_of_a_memory_mapped_file(tmp_path):
    # Every process draws the same shuffled order; from the file each one
    # reads only its own rows of each global batch, and together they read
    # every row once per epoch.
    from nnscratch.core.shard import BatchShard
    from nnscratch.engine.data import ArrayData

    X = np.lib.format.open_memmap(tmp_path / "X.npy", "w+", np.float32, (203, 3))
    X[...] = np.arange(203 * 3, dtype=np.float32).reshape(203, 3)
    y = np.arange(203)

    class Recorded:
        """The memory map, recording which rows are read."""

        def __init__(self, array):
            self.array, self.rows = array, []

        def __len__(self):
            return len(self.array)

        def __getitem__(self, rows):
            self.rows += list(np.arange(len(self.array))[rows])
            return self.array[rows]

    read = []
    for rank in range(2):
        recorded = Recorded(np.load(tmp_path / "X.npy", mmap_mode="r"))
        data = ArrayData(recorded, y, np.float32)
        shard = BatchShard(rank=rank, processes=2)
        batches = data.batches(32, np.random.default_rng(7), shard=shard)
        for x_batch, y_batch in batches:
            np.testing.assert_array_equal(x_batch[:, 0], 3 * y_batch)  # its rows
            assert len(x_batch) == shard.size < 32
        read.append(recorded.rows)
    assert not set(read[0]) & set(read[1])
    assert sorted(read[0] + read[1]) == list(range(203))


def test_only_process_0_prints_and_writes_files(equal_run):
    out, result = equal_run
    names = sorted(path.name for path in out.iterdir())
    assert not [name for name in names if ".ckpt.rank1" in name or ".log.rank1" in name]
    for name in worker.MODELS:
        assert f"{name}.ckpt.rank0.npz" in names and f"{name}.log.rank0.csv" in names
    epoch_lines = [line for line in result.stdout.splitlines() if "Epoch" in line]
    assert len(epoch_lines) == worker.EPOCHS * len(worker.MODELS)


def test_a_resumed_run_under_mpi_ends_as_an_uninterrupted_one(tmp_path):
    result, _ = mpirun("resume", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    model, X, y, batch_size = worker.mlp_dropout()
    model.train(X, y, epochs=worker.EPOCHS, batch_size=batch_size, verbose=0)
    for rank in (0, 1):
        resumed = weights(tmp_path / f"resumed.rank{rank}.npz")
        for mine, single in zip(resumed, model.get_weights(), strict=True):
            np.testing.assert_allclose(mine, single, rtol=0, atol=1e-10)


def test_the_gpt_demo_stops_every_process_after_the_same_round(tmp_path):
    # Process 1's clock jumps 1e7 s ahead: stopping on its own clock, it
    # would leave after one round and process 0 would wait for it forever.
    result, _ = mpirun("gpt_rounds", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    paths = [tmp_path / f"gpt_rounds.rank{rank}.npz" for rank in (0, 1)]
    for path in paths:
        with np.load(path) as run:
            assert len(run["h_val_loss"]) == 3  # process 0's 3 rounds
    for mine, other in zip(weights(paths[0]), weights(paths[1]), strict=True):
        np.testing.assert_array_equal(mine, other)


@pytest.mark.parametrize("scenario", ["ctrl_c", "early_stopping"])
def test_every_process_stops_at_the_same_step(tmp_path, scenario):
    result, _ = mpirun(scenario, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    name = "ctrl_c" if scenario == "ctrl_c" else "early"
    archives = [np.load(tmp_path / f"{name}.rank{rank}.npz") for rank in (0, 1)]
    steps = [int(archive["iterations"]) for archive in archives]
    assert steps[0] == steps[1]
    if scenario == "ctrl_c":
        assert steps[0] < 7  # stopped in the first epoch (7 batches)
    for a, b in zip(
        weights(tmp_path / f"{name}.rank0.npz"),
        weights(tmp_path / f"{name}.rank1.npz"),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("bad_input", "X: expected finite values"),
        ("callback_error", "a callback failed on purpose"),
        ("killed", None),
        ("outside_train", "the script failed before train"),
    ],
)
def test_a_failure_on_one_process_ends_every_process(tmp_path, scenario, message):
    result, seconds = mpirun(scenario, tmp_path)
    assert result.returncode != 0
    assert seconds < 20
    if message is not None:
        assert result.stderr.count(f"Error: {message}") == 1  # shown once
    if scenario in ("bad_input", "callback_error"):
        assert result.stderr.count("process 1 of 2 failed") == 1
        assert "process 0 of 2 failed" not in result.stderr


def test_a_streamed_batch_smaller_than_the_processes_stops_every_process(tmp_path):
    # Arrays are checked before training; a stream only when the batch comes.
    result, seconds = mpirun("small_stream", tmp_path)
    assert result.returncode != 0
    assert seconds < 20
    assert "expected batches of at least 2 samples" in result.stderr
    assert "Received a batch of 1 (epoch 1, batch 3)" in result.stderr


def test_without_mpi4py_the_error_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mpi(name, *args, **kwargs):
        if name.startswith("mpi4py"):
            raise ImportError("No module named 'mpi4py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mpi)
    from nnscratch.distributed import DataParallel

    with pytest.raises(ImportError, match=r"nnscratch\[mpi\]"):
        DataParallel()


def test_one_process_under_mpiexec_trains_as_without_mpi(tmp_path):
    result, _ = mpirun("equal", tmp_path, processes=1)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in worker.MODELS:
        model, _ = worker.train(name, None, verbose=0)
        for mine, single in zip(
            weights(tmp_path / f"{name}.rank0.npz"), model.get_weights(), strict=True
        ):
            np.testing.assert_array_equal(mine, single)
