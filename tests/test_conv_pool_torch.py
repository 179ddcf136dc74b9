"""Conv2D, MaxPool2D, AvgPool2D and Flatten against PyTorch, in float64, to 1e-6."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    TOLERANCE,
    check_layer_gradients,
    compare_layer_with_torch,
    to_numpy,
    to_torch,
)

from nnscratch.engine.model import NeuralNetwork
from nnscratch.layers.activation import Activation
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.flatten import Flatten
from nnscratch.layers.pooling import AvgPool2D, MaxPool2D
from nnscratch.optimizers.adam import Adam

FLOAT64 = np.dtype("float64")


def conv_layer(c_in, c_out, kernel, stride=1, padding=0, l2_lambda=0.0, seed=0):
    """A float64 Conv2D with random weights and a nonzero bias."""
    rng = np.random.default_rng(seed)
    layer = Conv2D(c_in, c_out, kernel, stride, padding, l2_lambda=l2_lambda)
    layer.build(rng, FLOAT64)
    layer.params["b"] = rng.standard_normal(c_out)
    return layer


def compare_conv(n, c_in, h, w, c_out, kernel, stride, padding, l2_lambda=0.0):
    rng = np.random.default_rng(n * 1000 + h * 10 + w)
    layer = conv_layer(c_in, c_out, kernel, stride, padding, l2_lambda, seed=h + w)
    x = rng.standard_normal((n, c_in, h, w))

    def torch_conv(x_t, W_t, b_t):
        return F.conv2d(x_t, W_t, b_t, stride=stride, padding=padding)

    def l2_penalty(W_t, b_t):
        return l2_lambda * (W_t**2).sum()

    compare_layer_with_torch(
        layer, torch_conv, x, ("W", "b"), rng=rng, torch_penalty=l2_penalty
    )


# (N, C, H, W, out_channels, kernel, stride, padding)
CONV_CASES = [
    (2, 3, 6, 6, 4, 1, 1, 0),  # 1x1 kernel
    (2, 3, 7, 7, 4, 3, 1, 0),
    (2, 2, 9, 8, 3, 5, 1, 0),  # 5x5 kernel, non-square input
    (3, 2, 8, 8, 3, 3, 2, 0),  # stride 2 (a row and column left over)
    (2, 2, 7, 7, 3, 3, 1, 1),  # padding 1 ("same")
    (2, 3, 9, 7, 2, 3, 2, 1),  # stride 2 + padding 1, odd sizes
    (2, 1, 11, 11, 2, 5, 2, 2),
    (1, 1, 5, 5, 1, 3, 1, 1),  # a batch of 1, one channel in and out
    (1, 2, 3, 3, 2, 3, 1, 0),  # kernel as large as the input: 1x1 output
    (2, 3, 7, 10, 2, (2, 3), (1, 2), (0, 1)),  # non-square everything
    (1, 4, 6, 5, 5, (3, 1), (2, 1), (1, 0)),
    (2, 1, 12, 12, 8, 3, 1, 0),  # the benchmark's layer, smaller images
]


@pytest.mark.parametrize("n, c, h, w, c_out, kernel, stride, padding", CONV_CASES)
def test_conv2d_matches_torch(n, c, h, w, c_out, kernel, stride, padding):
    compare_conv(n, c, h, w, c_out, kernel, stride, padding)


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 0), (3, 2, 1)])
def test_conv2d_l2_penalty_matches_torch(kernel, stride, padding):
    compare_conv(2, 2, 7, 6, 3, kernel, stride, padding, l2_lambda=0.3)


def test_conv2d_random_shapes_match_torch():
    """Seeded property test: random N, C, H, W, kernel, stride and padding."""
    rng = np.random.default_rng(2024)
    for _ in range(12):
        kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
        stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
        padding = tuple(int(p) for p in rng.integers(0, 3, size=2))
        # Any size from "the padded input just fits the kernel" upwards.
        h, w = (
            int(rng.integers(max(1, k - 2 * p), k + 7))
            for k, p in zip(kernel, padding, strict=True)
        )
        n, c, c_out = (int(v) for v in rng.integers(1, 4, size=3))
        compare_conv(n, c, h, w, c_out, kernel, stride, padding)


def test_conv2d_worked_by_hand():
    # x = [[1, 2], [3, 4]] padded by 1 to xp (4x4, x in the middle);
    # W = [[1, 0], [0, -1]], b = 0.5, so y[r, s] = xp[r, s] - xp[r+1, s+1] + 0.5:
    #   y[0, 0] = 0 - 1 + .5 = -.5   y[0, 1] = 0 - 2 + .5 = -1.5  y[0, 2] = .5
    #   y[1, 0] = 0 - 3 + .5 = -2.5  y[1, 1] = 1 - 4 + .5 = -2.5  y[1, 2] = 2.5
    #   y[2, 0] = .5                 y[2, 1] = 3 + .5 = 3.5       y[2, 2] = 4.5
    layer = Conv2D(1, 1, kernel_size=2, padding=1)
    layer.params = {"W": np.array([[[[1.0, 0.0], [0.0, -1.0]]]]), "b": np.array([0.5])}
    y = layer.forward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = [[-0.5, -1.5, 0.5], [-2.5, -2.5, 2.5], [0.5, 3.5, 4.5]]
    np.testing.assert_allclose(y[0, 0], expected)
    # With g = 1 everywhere, dx[p] = sum of W over the kernel entries that
    # land on p: every pixel of x is hit by both W[0,0]=1 and W[1,1]=-1 -> 0.
    # dW[i, j] = sum over the 9 windows of xp[r+i, s+j] = sum(x) = 10; db = 9.
    dx = layer.backward(np.ones((1, 1, 3, 3)))
    np.testing.assert_allclose(dx, np.zeros((1, 1, 2, 2)))
    np.testing.assert_allclose(layer.grads["W"], np.full((1, 1, 2, 2), 10.0))
    np.testing.assert_allclose(layer.grads["b"], [9.0])


def test_conv2d_numerical_gradients():
    layer = conv_layer(2, 2, (3, 2), stride=(2, 1), padding=1, l2_lambda=0.1)
    x = np.random.default_rng(3).standard_normal((2, 2, 5, 4))
    check_layer_gradients(layer, x)


def test_conv2d_initialization_fans():
    # He: std = sqrt(2 / fan_in), fan_in = C*kh*kw = 16*5*5 = 400.
    layer = Conv2D(16, 64, 5)
    layer.build(np.random.default_rng(0), FLOAT64)
    assert layer.params["W"].shape == (64, 16, 5, 5)
    assert layer.params["W"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.05)
    np.testing.assert_array_equal(layer.params["b"], np.zeros(64))
    # Xavier: sqrt(2 / (fan_in + fan_out)), fan_out = O*kh*kw = 64*25 = 1600.
    layer = Conv2D(16, 64, 5, initialization="xavier")
    layer.build(np.random.default_rng(0), FLOAT64)
    assert layer.params["W"].std() == pytest.approx(np.sqrt(2 / 2000), rel=0.05)


# ------------------------------------------------------------------- pooling
TORCH_POOLS = {MaxPool2D: F.max_pool2d, AvgPool2D: F.avg_pool2d}

# (N, C, H, W, pool_size, stride)
POOL_CASES = [
    (2, 3, 8, 8, 2, None),
    (2, 3, 7, 7, 2, None),  # a row and column left over, dropped
    (2, 2, 7, 7, 3, 2),  # overlapping windows
    (1, 1, 6, 6, 3, 1),  # heavily overlapping, a batch of 1
    (2, 2, 8, 6, (2, 3), None),  # non-square window
    (1, 3, 9, 7, (3, 2), (2, 1)),  # non-square window and stride
    (3, 1, 5, 5, 5, None),  # one window covering the whole image
    (2, 2, 10, 9, 2, 3),  # stride larger than the window: gaps
]


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("n, c, h, w, pool_size, stride", POOL_CASES)
def test_pooling_matches_torch(pool, n, c, h, w, pool_size, stride):
    rng = np.random.default_rng(h * 10 + w)
    x = rng.standard_normal((n, c, h, w))

    def torch_pool(x_t):
        return TORCH_POOLS[pool](x_t, pool_size, stride)

    compare_layer_with_torch(pool(pool_size, stride), torch_pool, x, rng=rng)


@pytest.mark.parametrize("pool_size, stride", [(2, None), (3, 2), (3, 1)])
def test_max_pool_ties_pick_the_same_element_as_torch(pool_size, stride):
    # Values from {0, 1, 2} tie in nearly every window; torch routes the
    # gradient to the first maximum in row-major window order.
    x = np.random.default_rng(7).integers(0, 3, size=(2, 2, 7, 7)).astype(float)
    layer = MaxPool2D(pool_size, stride)
    compare_layer_with_torch(layer, lambda x_t: F.max_pool2d(x_t, pool_size, stride), x)
    x = np.ones((1, 1, 4, 4))  # all tied: each window's top-left pixel wins
    dx = layer.backward(np.ones(layer.forward(x).shape))
    x_t = to_torch(x, requires_grad=True)
    F.max_pool2d(x_t, pool_size, stride).sum().backward()
    np.testing.assert_array_equal(dx, to_numpy(x_t.grad))


def test_max_pool_propagates_nan_as_torch():
    x = np.random.default_rng(8).standard_normal((1, 2, 5, 5))
    x[0, 0, 1, 1] = x[0, 1, 2, 3] = x[0, 1, 3, 3] = np.nan
    compare_layer_with_torch(MaxPool2D(3, 1), lambda x_t: F.max_pool2d(x_t, 3, 1), x)


def test_pooling_random_shapes_match_torch():
    """Seeded property test over random shapes, windows and strides."""
    rng = np.random.default_rng(99)
    for trial in range(10):
        pool = (MaxPool2D, AvgPool2D)[trial % 2]
        pool_size = tuple(int(k) for k in rng.integers(1, 5, size=2))
        stride = tuple(int(s) for s in rng.integers(1, 5, size=2))
        h, w = (int(rng.integers(k, k + 8)) for k in pool_size)
        n, c = (int(v) for v in rng.integers(1, 4, size=2))
        x = rng.standard_normal((n, c, h, w))
        compare_layer_with_torch(
            pool(pool_size, stride),
            lambda x_t, p=pool, k=pool_size, s=stride: TORCH_POOLS[p](x_t, k, s),
            x,
            rng=rng,
        )


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
def test_pooling_numerical_gradients(pool):
    x = np.random.default_rng(4).standard_normal((2, 2, 6, 5))
    check_layer_gradients(pool(3, (2, 1)), x)


# ------------------------------------------------------------------- flatten
@pytest.mark.parametrize("shape", [(1, 3), (2, 3, 4, 5), (3, 2, 5), (1, 1, 1, 1)])
def test_flatten_matches_torch(shape):
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    compare_layer_with_torch(Flatten(), torch.nn.Flatten(), x)


def test_flatten_of_a_transposed_view_matches_torch():
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 2)).transpose(0, 3, 1, 2)
    compare_layer_with_torch(Flatten(), torch.nn.Flatten(), x)


def test_flatten_numerical_gradients():
    check_layer_gradients(Flatten(), np.ones((2, 3, 2, 2)))


# --------------------------------------------------------------------- dtype
def test_float32_stays_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    conv = Conv2D(3, 4, 3, padding=1, l2_lambda=0.1)  # float32 weights
    layers = [conv, MaxPool2D(2), AvgPool2D(3, 1), Flatten()]
    for layer in layers:
        x = layer.forward(x)
        assert x.dtype == np.float32, type(layer).__name__
    grad = np.ones_like(x)
    for layer in reversed(layers):
        grad = layer.backward(grad)
        assert grad.dtype == np.float32, type(layer).__name__
    assert conv.grads["W"].dtype == conv.grads["b"].dtype == np.float32


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_channels": 0}, "in_channels: expected a positive integer"),
        ({"out_channels": 2.0}, "out_channels: expected a positive integer"),
        ({"kernel_size": 0}, r"kernel_size: expected an integer >= 1.*Received: 0"),
        ({"kernel_size": (3, -1)}, r"kernel_size: .*Received: \(3, -1\)"),
        ({"kernel_size": (3, 3, 3)}, "kernel_size: expected an integer >= 1"),
        ({"kernel_size": "3"}, "kernel_size: expected an integer >= 1"),
        ({"kernel_size": None}, "kernel_size: expected an integer >= 1"),
        ({"kernel_size": 2.5}, "kernel_size: expected an integer >= 1"),
        ({"stride": 0}, "stride: expected an integer >= 1"),
        ({"stride": True}, "stride: expected an integer >= 1"),
        ({"padding": -1}, "padding: expected an integer >= 0"),
        ({"initialization": "glorot"}, r"initialization: expected one of \['he'"),
        ({"l2_lambda": -0.1}, "l2_lambda: expected a number in"),
        ({"l2_lambda": float("nan")}, "l2_lambda: expected a number in"),
    ],
)
def test_conv2d_bad_arguments(kwargs, match):
    arguments = {"in_channels": 1, "out_channels": 2, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        Conv2D(**arguments)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pool_size": 0}, "pool_size: expected an integer >= 1"),
        ({"pool_size": (2,)}, "pool_size: expected an integer >= 1"),
        ({"pool_size": -2}, "pool_size: expected an integer >= 1"),
        ({"stride": 0}, "stride: expected an integer >= 1"),
        ({"stride": (1, 0)}, "stride: expected an integer >= 1"),
    ],
)
@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
def test_pooling_bad_arguments(pool, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pool(**kwargs)


@pytest.mark.parametrize(
    "shape, match",
    [
        (
            (2, 3, 8),
            r"input of shape \(N, 3, H, W\). Received shape \(2, 3, 8\)",
        ),
        ((2, 2, 8, 8), r"input of shape \(N, 3, H, W\). Received shape"),
        ((2, 3, 8, 8, 1), r"input of shape \(N, 3, H, W\)"),
        (
            (2, 3, 2, 8),
            r"at least 5x5 pixels \(the window\) after padding \(1, 1\). Received 2x8",
        ),
        ((2, 3, 8, 2), r"at least 5x5 pixels .*Received 8x2"),
    ],
)
def test_conv2d_bad_input_changes_nothing(shape, match):
    layer = Conv2D(3, 2, 5, padding=1)
    weights = {key: value.copy() for key, value in layer.params.items()}
    with pytest.raises(ValueError, match=f"Conv2D: expected .*{match}"):
        layer.forward(np.zeros(shape, dtype=np.float32))
    for key, value in weights.items():
        np.testing.assert_array_equal(layer.params[key], value)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 2, 6, 6)))  # nothing was cached


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(
    "shape, match",
    [
        ((2, 8, 8), r"input of shape \(N, C, H, W\). Received shape"),
        ((2, 1, 2, 8), r"at least 3x3 pixels \(the window\). Received 2x8"),
    ],
)
def test_pooling_bad_input(pool, shape, match):
    layer = pool(3)
    with pytest.raises(ValueError, match=f"{pool.__name__}: expected .*{match}"):
        layer.forward(np.zeros(shape))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 1, 2, 2)))


def test_flatten_bad_input():
    with pytest.raises(ValueError, match=r"Flatten: expected .*Received shape \(4,\)"):
        Flatten().forward(np.zeros(4))


@pytest.mark.parametrize(
    "layer", [Conv2D(1, 1, 3), MaxPool2D(), AvgPool2D(), Flatten()]
)
def test_backward_before_forward_is_a_clear_error(layer):
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 1, 2, 2)))


# --------------------------------------------------------- inside a model
def small_cnn(seed=0):
    model = NeuralNetwork(
        loss_name="cce", optimizer=Adam(learning_rate=0.01), seed=seed, dtype="float64"
    )
    model.add(Conv2D(1, 4, 3, padding=1))
    model.add(Activation("relu"))
    model.add(MaxPool2D(2))
    model.add(Conv2D(4, 3, (3, 2), stride=[1, 2], l2_lambda=0.001))
    model.add(Activation("relu"))
    model.add(AvgPool2D(2, stride=1))
    model.add(Flatten())  # (3, 1, 1) -> 3
    model.add(Dense(3, 3))
    model.add(Activation("softmax"))
    return model


def test_small_cnn_trains_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 1, 8, 8))
    y = rng.integers(0, 3, size=48)
    X[y == 1, :, :4] += 1.0  # something to learn: class 1 is bright on top
    model = small_cnn()
    history = model.train(X, y, epochs=6, batch_size=16, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    assert all(np.isfinite(history["loss"]))

    path = tmp_path / "cnn.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path)
    configs = [layer.get_config() for layer in model.layers]
    assert [layer.get_config() for layer in loaded.layers] == configs
    assert json.loads(json.dumps(configs)) == configs  # JSON-friendly
    assert configs[3]["kernel_size"] == [3, 2] and configs[3]["stride"] == [1, 2]
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(X), loaded.predict(X))


def test_small_cnn_gradients_match_torch():
    """The whole network's dL/dW against torch on one batch."""
    model = small_cnn()
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((4, 1, 8, 8)), rng.integers(0, 3, size=4)
    model.compute_gradients(X, y)
    params = [to_torch(p, requires_grad=True) for p in model.get_weights()]
    W1, b1, W2, b2, Wd, bd = params
    h = F.max_pool2d(F.relu(F.conv2d(to_torch(X), W1, b1, padding=1)), 2)
    h = F.avg_pool2d(F.relu(F.conv2d(h, W2, b2, stride=(1, 2))), 2, stride=1)
    logits = h.flatten(1) @ Wd + bd
    loss = F.cross_entropy(logits, torch.tensor(y)) + 0.001 * (W2**2).sum()
    loss.backward()
    grads = [g for layer in model.layers for g in layer.grads.values()]
    for ours, theirs in zip(grads, params, strict=True):
        np.testing.assert_allclose(ours, to_numpy(theirs.grad), **TOLERANCE)
