"""Optimizer state never gets stuck at subnormal numbers.

A moment that decays where the gradient is 0 (``m <- 0.9 m``) stops at the
smallest subnormals instead of 0, and on Intel CPUs every later operation on
it is many times slower. ``flush_subnormals`` rounds them to 0 and leaves
every value that can matter bit for bit; the optimizers with decaying state
apply it every ``FLUSH_EVERY`` steps.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.core.functional import flush_subnormals
from nnscratch.optimizers import SGD, Adam, AdamW, RMSprop
from nnscratch.optimizers.optimizer import FLUSH_EVERY

FLOATS = (np.float32, np.float64)


@pytest.mark.parametrize("dtype", FLOATS)
def test_a_geometric_decay_sticks_at_the_smallest_subnormal(dtype):
    # The reason for the flush: round to nearest keeps 0.9 * s at s.
    smallest = np.finfo(dtype).smallest_subnormal
    assert np.array(smallest, dtype) * dtype(0.9) == smallest


@pytest.mark.parametrize("dtype", FLOATS)
def test_flush_zeroes_every_subnormal_and_keeps_what_matters(dtype):
    info = np.finfo(dtype)
    rng = np.random.default_rng(0)
    subnormal = rng.uniform(0, 1, 1000).astype(dtype) * info.tiny  # [0, tiny)
    subnormal[:2] = info.smallest_subnormal, np.nextafter(info.tiny, 0)
    subnormal *= rng.choice([-1, 1], subnormal.size).astype(dtype)
    x = subnormal.copy()
    flush_subnormals(x)
    np.testing.assert_array_equal(x, 0.0)
    # From 2**-76 in float32, 2**-914 in float64: unchanged, bit for bit, at
    # every magnitude up to the largest.
    floor = info.tiny * 2.0 ** (2 * info.nmant + 4)
    exponents = rng.uniform(np.log2(floor), np.log2(info.max), 5000)
    kept = (np.exp2(exponents) * rng.choice([-1, 1], exponents.size)).astype(dtype)
    y = kept.copy()
    flush_subnormals(y)
    assert y.tobytes() == kept.tobytes()
    # In between, each value moves by at most 2 tiny plus one rounding.
    between = np.geomspace(info.tiny, floor, 2000, dtype=dtype)
    between[::2] *= -1
    z = between.copy()
    flush_subnormals(z)
    bound = 2 * info.tiny + np.abs(np.spacing(between))
    assert np.all(np.abs(z - between) <= bound)
    assert np.all(np.abs(z[z != 0]) >= info.tiny)  # nothing became subnormal


def test_other_dtypes_are_left_alone():
    x = np.array([6e-8, 1e-3], dtype=np.float16)  # 6e-8: a float16 subnormal
    before = x.copy()
    flush_subnormals(x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(
    "make, names",
    [
        (Adam, ("gradient_sum", "square_sum")),
        (AdamW, ("gradient_sum", "square_sum")),
        (lambda: SGD(0.1, momentum=0.9), ("velocity",)),
        (lambda: RMSprop(momentum=0.9), ("mean_square", "velocity")),
    ],
    ids=["Adam", "AdamW", "SGD-momentum", "RMSprop-momentum"],
)
@pytest.mark.parametrize("dtype", FLOATS)
def test_decaying_state_reaches_zero_instead_of_sticking(make, names, dtype):
    optimizer = make()
    smallest = np.finfo(dtype).smallest_subnormal
    w = np.ones(4, dtype)
    zero = np.zeros(4, dtype)
    optimizer.step([w], [np.ones(4, dtype)])  # creates the state
    for name in names:
        optimizer.state[0][name][...] = smallest  # where a decay would stick
    before = w.copy()
    steps = 0
    while (optimizer.iterations + 1) % FLUSH_EVERY:  # up to the next flush: stuck
        assert optimizer.step([w], [zero])
        steps += 1
        for name in names:
            np.testing.assert_array_equal(optimizer.state[0][name], smallest)
    assert optimizer.step([w], [zero])
    assert optimizer.iterations % FLUSH_EVERY == 0
    for name in names:
        np.testing.assert_array_equal(optimizer.state[0][name], 0.0)
    # Subnormal moments moved no weight (beyond AdamW's own decay).
    decay = 1 - getattr(optimizer, "weight_decay", 0) * optimizer.learning_rate
    # (steps + 1 roundings of the decay in the weights' own precision)
    expected = before * decay ** (steps + 1)
    np.testing.assert_allclose(w, expected, rtol=(steps + 1) * np.finfo(dtype).eps)
