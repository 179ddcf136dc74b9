"""benchmarks/conv.py: both systems build the same networks, and best-of-rounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import load_script

from nnscratch.core.tree import named_arrays


@pytest.fixture(scope="module")
def conv():
    return load_script("benchmarks/conv.py", "benchmark_conv")


def workload_names(conv):
    return ["cnn-wide"] + [f"sweep-{i}" for i in range(len(conv.SWEEP))]


def test_both_systems_build_the_same_network_for_every_workload(conv):
    # The sweep's Dense takes c_out * out_size**2 inputs: out_size must be what
    # the convolution gives, and torch's twin must have the same parameters.
    rng = np.random.default_rng(0)
    for name in workload_names(conv):
        _, shape = conv.workload(name)
        c_in, size = (3, 32) if shape is None else (shape.c_in, shape.size)
        x = rng.random((2, c_in, size, size), dtype=np.float32)
        ours = conv.nnscratch_model(shape)
        probabilities = ours.predict(x)
        theirs = conv.torch_model(shape)
        with torch.no_grad():
            logits = theirs(torch.from_numpy(x))
        assert probabilities.shape == (2, 10) == tuple(logits.shape), name
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        ours_sizes = sorted(a.size for _, a in named_arrays(ours.layers, "params"))
        theirs_sizes = sorted(p.numel() for p in theirs.parameters())
        assert ours_sizes == theirs_sizes, name


def test_the_sweep_names_its_shapes(conv):
    shape = conv.ConvShape(3, 32, 32, 3, 2, 64)
    assert shape.name == "3->32 32x32 k3 s2 b64"
    assert shape.out_size == 16  # (32 + 2 - 3) // 2 + 1
    assert conv.workload("sweep-0") == ("sweep-0", conv.SWEEP[0])
    assert conv.workload("cnn-wide") == ("cnn-wide", None)


def test_best_of_keeps_each_systems_fastest_run_and_drops_failures(conv, monkeypatch):
    results = {
        "nnscratch": [{"seconds": 0.5}, {"seconds": 0.4}, {"error": "killed"}],
        "pytorch": [{"error": "no torch"}, {"seconds": 0.3}, {"seconds": 0.35}],
    }
    calls = []

    def measure(system, name):
        calls.append((system, name))
        return results[system].pop(0)

    monkeypatch.setattr(conv, "measure", measure)
    ours, theirs = conv.best_of("sweep-1", rounds=3)
    assert ours == {"seconds": 0.4}  # a later failure does not replace it
    assert theirs == {"seconds": 0.3}  # a success replaces an earlier failure
    assert calls == [("nnscratch", "sweep-1"), ("pytorch", "sweep-1")] * 3


def test_best_of_reports_a_system_that_never_ran(conv, monkeypatch):
    monkeypatch.setattr(conv, "measure", lambda system, name: {"error": system})
    assert conv.best_of("cnn-wide", rounds=2) == (
        {"error": "nnscratch"},
        {"error": "pytorch"},
    )
