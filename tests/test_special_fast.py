"""The blockwise erf/erfc and the single-precision erfc behind the fast GELU.

Against ``math.erf``/``math.erfc`` and torch's exact GELU, on inputs that
cross block boundaries, mix every branch, and come in odd layouts.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnscratch.core import special
from nnscratch.core.special import erf, erfc, erfc_single
from nnscratch.layers.activation import Activation


def reference(function, x):
    return np.array([function(float(value)) for value in np.ravel(x)]).reshape(
        np.shape(x)
    )


@pytest.mark.parametrize("function, exact", [(erf, math.erf), (erfc, math.erfc)])
def test_blocks_with_every_branch_mixed(function, exact):
    # More than two blocks; each block mixes |x| < 0.47, 0.47..4, > 4 and NaN.
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2 * special.block_elements(np.float64) + 77) * 3
    x[::1000] = 9.0
    x[5] = np.nan
    result = function(x)
    expected = reference(exact, np.nan_to_num(x))
    assert np.isnan(result[5])
    keep = ~np.isnan(x)
    np.testing.assert_allclose(result[keep], expected[keep], rtol=1e-15, atol=0)


def test_odd_layouts_and_shapes():
    x = np.linspace(-6.0, 6.0, 60).reshape(3, 4, 5).transpose(2, 0, 1)  # strided
    np.testing.assert_allclose(erfc(x), reference(math.erfc, x), rtol=1e-15)
    assert erfc(np.array(0.5)).shape == ()
    assert erf(np.zeros((0, 3))).shape == (0, 3)
    assert erf(np.array([1, 2])).dtype == np.float64  # integers compute in float64


def test_erfc_single_is_relatively_accurate_in_both_tails():
    x = np.concatenate([np.linspace(-27.0, 27.0, 20001), [0.0, -0.0]])
    expected = reference(math.erfc, x)
    normal = expected >= np.finfo(np.float64).tiny
    # The fit itself, evaluated in float64: 1.2e-7 relative, tail included.
    np.testing.assert_allclose(
        erfc_single(x)[normal], expected[normal], rtol=1.2e-7, atol=0
    )
    x32 = np.linspace(-9.0, 9.0, 4001, dtype=np.float32)
    result = erfc_single(x32)
    assert result.dtype == np.float32
    expected32 = reference(math.erfc, x32)
    tiny = np.finfo(np.float32).tiny
    # float32 rounding of z**2 adds ~1e-6 relative where z is large.
    np.testing.assert_allclose(result, expected32, rtol=1e-5, atol=tiny)


def test_erfc_single_at_extremes():
    x = np.array([-3e38, -1000.0, -0.0, 0.0, 1000.0, 3e38, np.nan], dtype=np.float32)
    np.testing.assert_array_equal(erfc_single(x), [2, 2, 1, 1, 0, 0, np.nan])
    assert erfc_single(np.float32(-1.0)).shape == ()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_half_erfc_blocks_are_exactly_half(dtype):
    # The single-precision fit in t/2 (coefficients scaled by powers of two)
    # gives half of erfc_single bitwise wherever the result is normal; the
    # float64 blocks halve Cody's erfc.
    z = np.linspace(0.0, 9.0, 5001).astype(dtype)
    for block, rows in (
        (special.erfc_single_nonnegative_block, 1),
        (special.erfc_nonnegative_block, special.ERFC_NONNEGATIVE_SCRATCH_ROWS),
    ):
        whole, half = np.empty_like(z), np.empty_like(z)
        block(whole, np.empty((rows, len(z)), dtype), z.copy())
        block(half, np.empty((rows, len(z)), dtype), z.copy(), half=True)
        normal = whole / 2 >= np.finfo(dtype).tiny
        np.testing.assert_array_equal(half[normal], whole[normal] / 2)


def test_float32_gelu_tracks_the_float64_one_closely():
    x32 = np.linspace(-10.0, 10.0, 20001, dtype=np.float32)
    x64 = x32.astype(np.float64)  # the same inputs
    layer32, layer64 = Activation("gelu"), Activation("gelu")
    y32 = layer32.forward(x32)
    y64 = layer64.forward(x64)
    assert y32.dtype == np.float32
    # Relative in the left tail too (~1e-6 from float32's x**2 there), where
    # torch's float32 0.5 * (1 + erf(x / sqrt 2)) cancels to nothing.
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-30)
    dx32 = layer32.backward(np.ones_like(y32))
    np.testing.assert_allclose(dx32, layer64.backward(np.ones_like(y64)), atol=2e-6)


def test_float64_gelu_matches_torch_on_a_transformer_sized_batch():
    x = np.random.default_rng(1).standard_normal((4, 16, 512)) * 2
    x_t = torch.from_numpy(x).requires_grad_(True)
    y_t = F.gelu(x_t)
    grad = np.random.default_rng(2).standard_normal(x.shape)
    y_t.backward(torch.from_numpy(grad))
    layer = Activation("gelu")
    np.testing.assert_allclose(
        layer.forward(x), y_t.detach().numpy(), rtol=1e-13, atol=1e-15
    )
    np.testing.assert_allclose(
        layer.backward(grad), x_t.grad.numpy(), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_limits_in_both_tails(dtype):
    # gelu(x) -> x on the right and -> 0 on the left; at -inf that limit, not
    # the -inf * 0 = NaN of x * Phi(x) (which torch returns). NaN stays NaN.
    x = np.array([-np.inf, -1e30, -1000.0, -40.0, -0.0, 0.0, 40.0, 1e30, np.inf])
    layer = Activation("gelu")
    y = layer.forward(np.append(x, np.nan).astype(dtype))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y[:-1], np.maximum(x, 0.0).astype(dtype))
    assert np.isnan(y[-1])
    dx = layer.backward(np.ones_like(y))[1:-2]  # the finite inputs
    slope = (x[1:-1] > 0) + (x[1:-1] == 0) * 0.5
    np.testing.assert_array_equal(dx, slope.astype(dtype))
