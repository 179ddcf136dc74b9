"""benchmarks/run.py's side-by-side tables, on runners whose times are known.

The alternating mode must compare best epochs, turn the order every round and
rest before every epoch (so that no system runs in another's spinning
threads); the main table must turn seconds into the ratios and rates it prints.
"""

from __future__ import annotations

import pytest
from helpers import load_script


@pytest.fixture
def run():
    return load_script("benchmarks/run.py", "benchmark_run")


class FakeWorkload:
    name = "Z"


def fake_systems(epochs: dict[str, list[float]], events: list):
    """Runner classes that take the given seconds, epoch after epoch (the
    first one is the warm-up), and log each epoch to ``events``."""

    def runner(system: str):
        class Runner:
            workloads = ("Z",)
            scale = 1

            def __init__(self, spec):
                self.times = iter(epochs[system])

            def timed_epochs(self, n):
                events.append(system)
                return [next(self.times) for _ in range(n)]

        return Runner

    return {system: runner(system) for system in epochs}


def test_alternating_compares_best_epochs_turns_the_order_and_rests(run, monkeypatch):
    events = []
    epochs = {
        "a": [9.0, 2.0, 1.0, 3.0],  # warm-up, then best 1.0, median 2.0
        "b": [9.0, 4.0, 5.0, 6.0],  # best 4.0
        "c": [9.0, 8.0, 8.0, 2.0],  # best 2.0
    }
    monkeypatch.setattr(run, "SYSTEMS", fake_systems(epochs, events))
    monkeypatch.setattr(run, "WORKLOADS", {"Z": FakeWorkload})
    monkeypatch.setattr(run.time, "sleep", lambda seconds: events.append(seconds))
    text = run.alternate("Z", ["a", "b", "c"], rounds=3)
    rest = run.REST_SECONDS
    assert rest > 0
    warm_up = ["a", "b", "c"]
    rounds = [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert events == warm_up + [
        item for order in rounds for system in order for item in (rest, system)
    ]
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines()[3:]}
    # best x a, b, c: 1/1, 1/4, 1/2 for a; then per round x a, b, c, the
    # median of the rounds' ratios: a/b = 2/4, 1/5, 3/6 -> 0.5; a/c = 2/8,
    # 1/8, 3/2 -> 0.25; b/c = 4/8, 5/8, 6/2 -> 0.625; c/b = 2, 1.6, 1/3 -> 1.6
    best_and_paired = {
        "a": "1.000 | 0.250 | 0.500 | 1.000 | 0.500 | 0.250",
        "b": "4.000 | 1.000 | 2.000 | 2.000 | 1.000 | 0.625",
        "c": "2.000 | 0.500 | 1.000 | 4.000 | 1.600 | 1.000",
    }
    assert rows["a"] == f"| a | 1.0000 | 2.0000 | {best_and_paired['a']} |"
    assert rows["b"] == f"| b | 4.0000 | 5.0000 | {best_and_paired['b']} |"
    assert rows["c"] == f"| c | 2.0000 | 8.0000 | {best_and_paired['c']} |"


def test_a_system_without_the_workload_is_left_out(run, monkeypatch):
    events = []
    systems = fake_systems({"a": [1.0, 1.0], "b": [1.0, 1.0]}, events)
    systems["b"].workloads = ("other",)
    monkeypatch.setattr(run, "SYSTEMS", systems)
    monkeypatch.setattr(run, "WORKLOADS", {"Z": FakeWorkload})
    monkeypatch.setattr(run.time, "sleep", lambda seconds: None)
    text = run.alternate("Z", ["a", "b"], rounds=1)
    assert events == ["a", "a"]
    assert "| b |" not in text


def test_the_table_turns_seconds_into_ratios_and_rates(run):
    class Workload:
        name, description, flops_per_epoch = "Z", "a toy", 4e9

    results = {
        "pytorch": {
            "seconds": 2.0,
            "predict_seconds": 0.5,
            "peak_rss_mb": 300.0,
            "rss_growth_mb": 0.0,
        },
        "mine": {
            "seconds": 1.0,
            "predict_seconds": 0.25,
            "peak_rss_mb": 100.0,
            "rss_growth_mb": 0.5,
        },
        "missing": {"error": "not installed"},
    }
    lines = run.table(Workload, results, peak=8.0).splitlines()
    assert lines[0] == "Workload Z: a toy (4.0 GFLOP per epoch)"
    # 4 GFLOP in 1 s is 4 GFLOP/s, half of an 8 GFLOP/s peak
    assert "| mine | 1.000 | 0.50 | 4 | 50% | 0.250 | 100 | 0.5 |" in lines
    assert "| pytorch | 2.000 | 1.00 | 2 | 25% | 0.500 | 300 | 0.0 |" in lines
    assert "| missing | not run: not installed | | | | | | |" in lines
