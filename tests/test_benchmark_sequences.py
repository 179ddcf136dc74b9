"""benchmarks/sequences.py's best-of-rounds and its table, on fake results."""

from __future__ import annotations

import pytest
from helpers import load_script


@pytest.fixture(scope="module")
def sequences():
    return load_script("benchmarks/sequences.py", "benchmark_sequences")


SYSTEMS = {
    "nnscratch": ((), 2, "nnscratch"),
    "torch": ((), 2, "torch"),
    "data-parallel": (("mpiexec", "-n", "2"), 1, "nnscratch, 2 processes x 1 thread"),
}


def test_rounds_keep_each_pairs_fastest_result_whole(sequences):
    calls = []
    # Step seconds by (workload, system), round after round.
    steps = {
        ("lstm", "nnscratch"): [0.012, 0.010],
        ("lstm", "torch"): [0.008, 0.009],
        ("lstm", "data-parallel"): [0.009, 0.0085],
        ("gpt", "nnscratch"): [0.070, 0.060],
        ("gpt", "torch"): [0.050, 0.055],
        ("gpt", "data-parallel"): [0.040, 0.045],
    }

    def run(system, workload, threads, launcher):
        calls.append((system, workload, threads, launcher))
        step = steps[(workload, system)].pop(0)
        return {"step_s": step, "peak_rss_mb": 1000 * step, "train_mb": 1.0}

    best = sequences.best_of_rounds(run, SYSTEMS, rounds=2)
    one_round = [
        (system, workload, SYSTEMS[system][1], SYSTEMS[system][0])
        for workload in ("lstm", "gpt")
        for system in SYSTEMS
    ]
    assert calls == one_round * 2
    # The fastest round's result, its memory with it (not the lowest memory).
    assert best[("lstm", "nnscratch")] == {
        "step_s": 0.010, "peak_rss_mb": 10.0, "train_mb": 1.0
    }  # fmt: skip
    assert best[("gpt", "data-parallel")]["step_s"] == 0.040
    assert best[("gpt", "torch")]["peak_rss_mb"] == 50.0


def test_the_table_gives_each_time_as_a_ratio_to_torchs_on_its_workload(sequences):
    def result(ms, rss):
        return {"step_s": ms / 1e3, "peak_rss_mb": rss, "train_mb": rss / 2}

    best = {
        ("lstm", "nnscratch"): result(10.0, 70),
        ("lstm", "torch"): result(8.0, 350),
        ("lstm", "data-parallel"): result(7.6, 158),
        ("gpt", "nnscratch"): result(60.0, 118),
        ("gpt", "torch"): result(50.0, 390),
        ("gpt", "data-parallel"): result(45.0, 200),
    }
    lines = sequences.table(best, SYSTEMS).splitlines()
    assert lines[2:] == [
        "| lstm | nnscratch | 10.0 | 1.25 | 70 | 35 |",
        "| lstm | torch | 8.0 | 1.00 | 350 | 175 |",
        "| lstm | nnscratch, 2 processes x 1 thread | 7.6 | 0.95 | 158 | 79 |",
        "| gpt | nnscratch | 60.0 | 1.20 | 118 | 59 |",
        "| gpt | torch | 50.0 | 1.00 | 390 | 195 |",
        "| gpt | nnscratch, 2 processes x 1 thread | 45.0 | 0.90 | 200 | 100 |",
    ]
