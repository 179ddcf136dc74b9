"""leaky_relu, elu, gelu, softplus and linear against PyTorch, in float64, to 1e-6.

Also the error function behind the exact GELU, against ``math.erf``/``math.erfc``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import check_layer_gradients, compare_layer_with_torch, to_numpy, to_torch

from nnscratch.core.special import erf, erfc
from nnscratch.layers.activation import Activation
from nnscratch.layers.activation_functions import ACTIVATIONS

TORCH_ACTIVATIONS = {
    "leaky_relu": lambda x: F.leaky_relu(x, negative_slope=0.01),
    "elu": lambda x: F.elu(x, alpha=1.0),
    "gelu": F.gelu,  # approximate='none': the exact erf form
    "softplus": lambda x: F.softplus(x, beta=1.0, threshold=20.0),
    "linear": torch.nn.Identity(),
}
NAMES = sorted(TORCH_ACTIVATIONS)
EXTREME = np.array(
    [[-1000.0, -50.0, -20.5, -1e-3, 0.0, 1e-3, 19.9, 20.5, 50.0, 1000.0]]
)


def test_every_new_name_is_registered():
    assert set(NAMES) <= set(ACTIVATIONS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (9, 5), (3, 2, 7)])
@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_activation_matches_torch(name, shape, scale):
    rng = np.random.default_rng(shape[-1] * 10 + len(shape))
    x = rng.standard_normal(shape) * scale
    compare_layer_with_torch(Activation(name), TORCH_ACTIVATIONS[name], x, rng=rng)


@pytest.mark.parametrize("name", NAMES)
def test_activation_is_finite_and_matches_torch_at_extreme_inputs(name):
    layer = Activation(name)
    compare_layer_with_torch(layer, TORCH_ACTIVATIONS[name], EXTREME)
    # The cached output and dx at +-1000 are finite too (no inf * 0 = nan).
    assert np.isfinite(layer.backward(np.ones_like(EXTREME))).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", range(3))
def test_activation_gradient_is_numerically_correct(name, seed):
    rng = np.random.default_rng(seed)
    n, features = rng.integers(1, 6, size=2)
    x = rng.standard_normal((n, features)) * 3
    # Keep clear of the kinks of leaky_relu and elu, where differences straddle.
    x[np.abs(x) < 1e-3] = 0.5
    check_layer_gradients(Activation(name), x, rng=rng)


def test_gelu_is_exact_to_near_machine_precision():
    # Not just 1e-6: the exact-erf GELU and its derivative agree with torch's
    # to rounding, which the tanh approximation (error ~1e-3) would not.
    x = np.linspace(-12.0, 12.0, 4001)
    x_t = to_torch(x, requires_grad=True)
    y_t = F.gelu(x_t)
    y_t.sum().backward()
    layer = Activation("gelu")
    np.testing.assert_allclose(layer.forward(x), to_numpy(y_t), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(
        layer.backward(np.ones_like(x)), to_numpy(x_t.grad), rtol=1e-13, atol=1e-15
    )


def test_worked_examples():
    # leaky_relu(-2) = -0.02 with slope 0.01; elu(log 0.5) = 0.5 - 1 = -0.5 and
    # its slope exp(log 0.5) = 0.5 = y + 1; gelu(0) = 0 * 1/2 with slope
    # Phi(0) + 0 = 1/2; softplus(0) = log 2 with slope sigmoid(0) = 1/2.
    cases = {
        "leaky_relu": (-2.0, -0.02, 0.01),
        "elu": (math.log(0.5), -0.5, 0.5),
        "gelu": (0.0, 0.0, 0.5),
        "softplus": (0.0, math.log(2.0), 0.5),
        "linear": (-3.0, -3.0, 1.0),
    }
    for name, (x, y, slope) in cases.items():
        layer = Activation(name)
        assert layer.forward(np.array([[x]]))[0, 0] == pytest.approx(y, abs=1e-15)
        assert layer.backward(np.ones((1, 1)))[0, 0] == pytest.approx(slope, abs=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(name):
    x64 = np.random.default_rng(4).standard_normal((6, 5)) * 4
    x64[0, :] = [-1000.0, -1.0, 0.0, 1.0, 1000.0]
    x32 = x64.astype(np.float32)
    layer = Activation(name)
    y32 = layer.forward(x32)
    dx32 = layer.backward(np.ones_like(x32))
    assert y32.dtype == np.float32
    assert dx32.dtype == np.float32
    reference = Activation(name)
    np.testing.assert_allclose(y32, reference.forward(x64), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        dx32, reference.backward(np.ones_like(x64)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("bad", ["relu6", "GELU", "", None, 3])
def test_unknown_activation_lists_the_valid_names(bad):
    with pytest.raises(ValueError, match="expected one of .*'gelu'.*'leaky_relu'"):
        Activation(bad)


# ----------------------------------------------------------- the error function
ERF_POINTS = np.concatenate(
    [
        np.linspace(-27.0, 27.0, 20001),
        np.geomspace(1e-300, 1.0, 301),
        -np.geomspace(1e-300, 1.0, 301),
        # Both sides of Cody's interval boundaries.
        [0.46875, np.nextafter(0.46875, 1.0), 4.0, np.nextafter(4.0, 5.0)],
    ]
)


@pytest.mark.parametrize(
    "ours, reference", [(erf, math.erf), (erfc, math.erfc)], ids=["erf", "erfc"]
)
def test_erf_matches_math_to_1e_15_relative(ours, reference):
    expected = np.array([reference(value) for value in ERF_POINTS])
    # Subnormal results (erfc beyond ~26.5) carry fewer digits by nature.
    normal = np.abs(expected) >= np.finfo(np.float64).tiny
    np.testing.assert_allclose(
        ours(ERF_POINTS)[normal], expected[normal], rtol=1e-15, atol=0
    )


def test_erf_at_extreme_and_float32_inputs():
    x = np.array([-1e300, -1000.0, -0.0, 0.0, 1000.0, 1e300])
    np.testing.assert_array_equal(erf(x), [-1.0, -1.0, -0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(erfc(x), [2.0, 2.0, 1.0, 1.0, 0.0, 0.0])
    x32 = np.array([-3e38, -2.0, 0.3, 3e38], dtype=np.float32)
    for function, reference in ((erf, math.erf), (erfc, math.erfc)):
        result = function(x32)
        assert result.dtype == np.float32
        expected = [reference(float(value)) for value in x32]
        np.testing.assert_allclose(result, expected, rtol=2e-7, atol=1e-38)
