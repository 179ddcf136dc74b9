"""The scaling model of benchmarks/distributed.py: the formulas behind the
cluster figures of benchmarks/README.md, checked on numbers worked by hand."""

from __future__ import annotations

import pytest
from helpers import load_script


@pytest.fixture(scope="module")
def model():
    return load_script("benchmarks/distributed.py", "benchmark_distributed")


def test_the_fit_recovers_latency_and_bandwidth_from_two_process_timings(model):
    alpha, beta = 4e-6, 2.5e-10  # 4 us, 4 GB/s
    # Two processes: a ring allreduce takes 2 (P - 1) alpha + 2 (P - 1) / P n beta.
    rows = [(n, 2 * alpha + n * beta) for n in (8, 1024, 65536, 1 << 20, 1 << 24)]
    fitted = model.fit_alpha_beta(rows)
    assert fitted == pytest.approx((alpha, beta), rel=1e-6)


def test_the_ring_costs_nothing_alone_and_2_p_minus_1_messages_beyond(model):
    assert model.ring_seconds(1, 1e6, 1.0, 1.0) == 0.0
    # 8 nodes, 1 MB: 14 latencies and 2 * 7/8 of the bytes over the link.
    assert model.ring_seconds(8, 1e6, 1e-5, 1e-9) == pytest.approx(
        14e-5 + 1.75e6 * 1e-9, rel=1e-12
    )


def test_without_communication_every_node_count_is_fully_efficient(model):
    spec = model.WORKLOADS["A"]()
    single = {"seconds": 3.2, "steps": 160, "parameters": 235_146}
    for nodes, epoch, efficiency in model.model_rows(spec, single, (0.0, 0.0)):
        assert epoch == pytest.approx(3.2 / nodes, rel=1e-12)
        assert efficiency == pytest.approx(1.0, rel=1e-12)


def test_at_the_break_even_batch_computing_takes_as_long_as_the_allreduce(model):
    spec = model.WORKLOADS["A"]()
    single = {"seconds": 4.0, "steps": 157, "parameters": 235_146}
    network, nodes = (25e-6, 1 / 3.125e9), 16
    batch = model.break_even_batch(spec, single, network, nodes)
    compute = single["seconds"] / spec.n_samples * batch / nodes
    allreduce = model.ring_seconds(nodes, 4 * single["parameters"], *network)
    assert compute == pytest.approx(allreduce, rel=1e-12)
