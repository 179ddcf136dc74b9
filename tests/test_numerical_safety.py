"""No overflow, underflow or invalid-value warnings at extreme inputs.

Every activation (forward and backward), every loss (value, gradient and the
from-logits paths, whose log-probabilities are checked too) and the shared
softmax / sigmoid / softplus are fed the extremes of each dtype: +-1e4,
+-1e30, +-3e38 in float32 and +-1e300 in float64, mixed with 0 and +-1 in
the same row, and, for BCE and CCE, probabilities of exactly 0 and 1. Each
check runs with warnings turned into errors (as pytest's configuration does
anyway), and every output must be finite wherever the exact result is a
finite float.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch.core.functional import (
    along_rows,
    bounded,
    buffer_elements,
    sigmoid,
    softmax,
    softplus,
)
from nnscratch.layers.activation_functions import ACTIVATIONS
from nnscratch.losses.losses import BCE, CCE, MSE

MAGNITUDES = {"float32": [1e4, 1e30, 3e38], "float64": [1e4, 1e30, 1e300]}
DTYPES = sorted(MAGNITUDES)


def extremes(dtype: str) -> np.ndarray:
    """Rows (one per magnitude m, and one mixing all of them) of 7 values.

    ``[m, -m, 0, 1, -1, m, -m]``, and ``[M3, -M3, M2, -M2, M1, -M1, 0]``.
    """
    rows = [[m, -m, 0.0, 1.0, -1.0, m, -m] for m in MAGNITUDES[dtype]]
    mixed = [v for m in reversed(MAGNITUDES[dtype]) for v in (m, -m)] + [0.0]
    return np.array([*rows, mixed], dtype=dtype)  # (4, 7)


def call_strictly(function, *args):
    """Call ``function`` with every floating-point warning raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args)


def assert_finite(*arrays):
    for array in arrays:
        assert np.isfinite(array).all(), array


# ---------------------------------------------------------------- activations
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward_and_backward_at_extremes(name, dtype):
    x = extremes(dtype)
    function = ACTIVATIONS[name]
    y = call_strictly(function.forward, x)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert_finite(y)
    # Upstream gradients of ones, and of the extremes themselves (both signs
    # in one row: softmax's backward must not form g - <g, y> for them).
    for grad in (np.ones_like(x), x[:, ::-1].copy()):
        dx = call_strictly(function.backward, grad, x, y)
        assert dx.dtype == x.dtype and dx.shape == x.shape
        assert_finite(dx)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bounded_activations_stay_in_their_ranges(dtype):
    x = extremes(dtype)
    for name, low, high in [("sigmoid", 0, 1), ("tanh", -1, 1), ("softmax", 0, 1)]:
        y = call_strictly(ACTIVATIONS[name].forward, x)
        assert ((low <= y) & (y <= high)).all(), name
    limit = np.finfo(dtype).max
    for name in ("relu", "leaky_relu", "elu", "gelu", "softplus", "linear"):
        y = call_strictly(ACTIVATIONS[name].forward, x)
        # None of these grows faster than x itself.
        assert (np.abs(y) <= limit).all() and (y <= np.maximum(x, 0) + 1).all()


# ------------------------------------------------------------------ functional
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softplus_are_exact_in_the_tails(dtype):
    big = MAGNITUDES[dtype][-1]
    x = np.array([-big, -1e4, 0.0, 1e4, big], dtype=dtype)
    p = call_strictly(sigmoid, x)
    np.testing.assert_array_equal(p, np.array([0, 0, 0.5, 1, 1], dtype=dtype))
    s = call_strictly(softplus, x)
    # softplus(x) = x for large x, 0 (underflowing quietly) for very negative x.
    expected = np.array([0, 0, np.log(2), 1e4, big], dtype=dtype)
    np.testing.assert_allclose(s, expected, rtol=1e-6, atol=0)


def cce_log_probabilities(z: np.ndarray, path: str) -> np.ndarray:
    """``log p`` of every entry of ``z`` as the cross-entropy from logits
    computes it (``-L`` of a one-row batch labelled with that entry), by
    the loss alone (``path='value'``) or with its gradient."""
    cce = CCE()

    def with_gradient(z, y):
        return cce.value_gradient_and_output_from_logits(z, y)[0]

    loss = {"value": cce.value_from_logits, "with gradient": with_gradient}[path]
    return np.array(
        [
            [-call_strictly(loss, row[None], np.array([k])) for k in range(len(row))]
            for row in z
        ]
    )


@pytest.mark.parametrize("path", ["value", "with gradient"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows_sum_to_one_and_log_probabilities_are_finite(dtype, path):
    z = extremes(dtype)
    p = call_strictly(softmax, z)
    assert p.dtype == z.dtype
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-6)
    log_p = cce_log_probabilities(z, path)
    assert_finite(log_p)
    assert (log_p <= 0).all()
    # Where the exact value is representable it is what comes out: in the
    # row [1e30, -1e30, 0, 1, -1, ...] the top two classes tie at log(1/2).
    row = z[1]
    expected = np.where(row == 1e30, -np.log(2), row - row.max())
    np.testing.assert_allclose(log_p[1], expected.astype(dtype), rtol=1e-6)


@pytest.mark.parametrize("path", ["value", "with gradient"])
def test_a_log_probability_beyond_the_float_range_gives_the_lowest_finite_value(
    path,
):
    # log p = -6e38 is not a float32: the lowest finite float32 stands for it.
    z = np.array([[3e38, -3e38]], dtype=np.float32)
    log_p = cce_log_probabilities(z, path)
    assert log_p[0, 0] == 0 and np.isfinite(log_p[0, 1])
    assert log_p[0, 1] <= -3.4e38


# ----------------------------------------------------------------------- losses
def logits_and_targets(dtype):
    """Column logits at the extremes and binary targets in both positions."""
    z = extremes(dtype).reshape(-1, 1)  # (28, 1)
    y = (np.arange(len(z)) % 2).astype(dtype).reshape(-1, 1)
    return z, np.concatenate([y, 1 - y]), np.concatenate([z, z])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_from_logits_at_extremes(dtype):
    _, y, z = logits_and_targets(dtype)
    bce = BCE()
    value = call_strictly(bce.value_from_logits, z, y)
    grad = call_strictly(bce.gradient_from_logits, z, y)
    both = call_strictly(bce.value_and_gradient_from_logits, z, y)
    assert np.isfinite(value) and both[0] == value
    assert_finite(grad)
    np.testing.assert_array_equal(both[1], grad)
    # Every term is softplus(z) - y z, e.g. a logit of -big with target 1
    # costs exactly big: the mean is a finite float even in float32.
    big = MAGNITUDES[dtype][-1]
    terms = np.maximum(z, 0) - y * z
    assert value == pytest.approx(float(np.mean(terms, dtype=np.float64)), rel=1e-6)
    assert value >= big / len(z)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_form", ["integers", "one_hot"])
def test_cce_from_logits_at_extremes(dtype, label_form):
    z = extremes(dtype)  # (4, 7)
    # The worst label: the class with the lowest logit of each row.
    labels = z.argmin(axis=1)
    y = labels if label_form == "integers" else np.eye(7, dtype=dtype)[labels]
    cce = CCE()
    value = call_strictly(cce.value_from_logits, z, y)
    grad = call_strictly(cce.gradient_from_logits, z, y)
    both = call_strictly(cce.value_and_gradient_from_logits, z, y)
    assert np.isfinite(value) and value == both[0]
    assert_finite(grad, both[1])
    # A mean over 4 rows, one of which has -log p >= big.
    assert value >= MAGNITUDES[dtype][-1] / len(z)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_and_cce_on_probabilities_of_exactly_zero_and_one(dtype):
    p = np.array([[0.0], [1.0], [0.0], [1.0]], dtype=dtype)
    y = np.array([[0.0], [1.0], [1.0], [0.0]], dtype=dtype)
    bce = BCE()
    value = call_strictly(bce, p, y)
    grad = call_strictly(bce.gradient, p, y)
    # Two right answers cost -log(1 - 1e-7), about 1e-7, each; two wrong ones
    # -log(1e-7) = 16.1 (15.9 in float32, where 1 - 1e-7 rounds up).
    assert 7.9 < value < 8.1
    assert_finite(grad)
    probabilities = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    cce = CCE()
    for labels in (np.array([0, 2]), np.eye(3, dtype=dtype)[[0, 2]]):
        value = call_strictly(cce, probabilities, labels)
        assert value == pytest.approx(-np.log(1e-7) / 2, rel=1e-3)
        assert_finite(call_strictly(cce.gradient, probabilities, labels))


@pytest.mark.parametrize("dtype, large", [("float32", 1e18), ("float64", 1e150)])
def test_mse_is_exact_while_its_squares_fit_the_dtype(dtype, large):
    # (2 * 1e18)**2 = 4e36 fits float32 (largest 3.4e38), (2e150)**2 float64.
    # Beyond that the squared error itself is not representable, and NumPy's
    # overflow warning is the right message: MSE is the textbook formula.
    x = np.array([[large, -large, 1.0, 0.0]], dtype=dtype)
    mse = MSE()
    expected = float(np.mean(np.square(2.0 * x.astype(np.float64))))
    assert call_strictly(mse, x, -x) == pytest.approx(expected, rel=1e-6)
    grad = call_strictly(mse.gradient, x, -x)
    assert grad.dtype == x.dtype
    np.testing.assert_allclose(grad, 4.0 * x.astype(np.float64) / x.size, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_all_values_finite_in_every_layout(dtype):
    from nnscratch.core.validation import all_values_finite

    big = np.full((4, 6), np.finfo(dtype).max / 2, dtype=dtype)  # squares overflow
    assert all_values_finite(big)
    assert all_values_finite(big.T)  # not contiguous: the elementwise test
    assert all_values_finite(np.zeros((0, 3), dtype=dtype))
    for bad in (np.nan, np.inf, -np.inf):
        spoiled = big.copy()
        spoiled[3, 5] = bad
        assert not all_values_finite(spoiled)
        assert not all_values_finite(spoiled.T)
        assert not all_values_finite(spoiled[:, ::-1])


def layout(a: np.ndarray) -> list[int]:
    """The strides of ``a``'s axes longer than 1 (a length-1 axis's is free)."""
    return [stride for stride, n in zip(a.strides, a.shape, strict=True) if n > 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize(
    "shape", [(), (0, 4), (8,), (300,), (128, 256), (3, 1, 5), (64, 8, 26, 26)]
)
def test_bounded_is_the_ufunc_against_a_scalar_bit_for_bit(dtype, shape):
    # relu and GELU's caps go through it: the values, the dtype and the bits
    # (NaN's sign, 0 for -0.0) must be np.maximum's and np.minimum's own.
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    if np.issubdtype(dtype, np.floating) and x.size >= 8:
        x.reshape(-1)[:8] = [-0.0, 0.0, np.nan, -np.nan, -np.inf, np.inf, -1.5, 2.5]
    for ufunc, value in ((np.maximum, 0), (np.maximum, 0.0), (np.minimum, 40.0)):
        expected = np.atleast_1d(ufunc(x, value))
        # contiguous, contiguous in another axis order, not contiguous
        for view in (x, x.T, x[..., ::2] if x.ndim else x):
            want = np.atleast_1d(ufunc(view, value))
            got = np.atleast_1d(bounded(ufunc, view, value))
            assert got.dtype == want.dtype and got.shape == want.shape
            assert layout(got) == layout(want)  # the ufunc's own
            assert got.tobytes() == want.tobytes()
        out = np.empty(x.shape, expected.dtype)
        assert bounded(ufunc, x, value, out=out) is out
        assert np.atleast_1d(out).tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    # (2048, 65): rows of 127 * 65 elements and 16 rows left over; (40, 4096):
    # rows of two; then shapes that take the plain broadcast (too small, rows
    # longer than the buffer already)
    "shape",
    [(2048, 65), (40, 4096), (8, 16, 1031), (300, 3), (3, 20000), (0, 5)],
)
def test_along_rows_is_the_plain_broadcast_bit_for_bit(dtype, shape):
    # Dense's bias and LayerNorm's gamma and beta go through it.
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    vector = rng.standard_normal(shape[-1]).astype(dtype)
    if x.size:
        x.reshape(-1)[:4] = [np.nan, -np.inf, -0.0, 1e30]
    for ufunc in (np.add, np.multiply, np.subtract):
        want = ufunc(x, vector)
        got = along_rows(ufunc, x, vector)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        in_place = x.copy()
        assert along_rows(ufunc, in_place, vector, out=in_place) is in_place
        assert in_place.tobytes() == want.tobytes()
        view = x[:, ::2] if x.ndim == 2 else x  # not contiguous: plain
        np.testing.assert_array_equal(
            along_rows(ufunc, view, vector[::2] if x.ndim == 2 else vector),
            ufunc(view, vector[::2] if x.ndim == 2 else vector),
        )
    # A float64 vector makes a float32 x's result float64, as broadcasting does.
    assert along_rows(np.add, x, vector.astype(np.float64)).dtype == np.float64
    assert buffer_elements() == np.getbufsize()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    leading=st.lists(st.integers(1, 70), min_size=0, max_size=2),
    width=st.integers(1, 9000),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_along_rows_and_bounded_match_numpy_on_any_shape(leading, width, dtype, seed):
    # Shapes around the buffer size (rows shorter, longer, rows left over)
    # and sizes around the tiling threshold; the bits must be NumPy's own.
    shape = (*leading, width)
    if np.prod(shape) > 400_000:
        shape = (max(1, 400_000 // width), width)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    vector = rng.standard_normal(width).astype(dtype)
    for ufunc in (np.add, np.multiply):
        assert along_rows(ufunc, x, vector).tobytes() == ufunc(x, vector).tobytes()
    for bound, value in ((np.maximum, 0.0), (np.minimum, 0.5)):
        assert bounded(bound, x, value).tobytes() == bound(x, value).tobytes()
