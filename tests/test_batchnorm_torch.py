"""BatchNorm against torch.nn.BatchNorm1d / BatchNorm2d, in float64, to 1e-6."""

from __future__ import annotations

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

from nnscratch import SGD, Activation, Dense, NeuralNetwork
from nnscratch.core.layer import LAYER_TYPES
from nnscratch.layers.batchnorm import BatchNorm

# (N, F) and (N, C, H, W): batches of 2, odd sizes, a batch of 1 with pixels.
SHAPES = [(2, 1), (2, 3), (5, 7), (16, 4), (2, 3, 1, 1), (1, 2, 3, 3), (3, 4, 5, 2)]


def make_layer(num_features, rng, momentum=0.1, epsilon=1e-5):
    """A float64 BatchNorm with random gamma, beta and running statistics."""
    layer = BatchNorm(num_features, momentum=momentum, epsilon=epsilon)
    layer.to_dtype(np.dtype("float64"))
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, num_features)
    layer.params["beta"][:] = rng.standard_normal(num_features)
    layer.buffers["running_mean"][:] = rng.standard_normal(num_features)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, num_features)
    return layer


def torch_batch_norm(layer, training):
    """``F.batch_norm`` on tensor copies of the layer's buffers, and those copies."""
    running = {name: to_torch(value) for name, value in layer.buffers.items()}

    def forward(x_t, gamma_t, beta_t):
        return F.batch_norm(
            x_t,
            running["running_mean"],
            running["running_var"],
            gamma_t,
            beta_t,
            training=training,
            momentum=layer.momentum,
            eps=layer.epsilon,
        )

    return forward, running


def torch_module(layer, ndim):
    module_type = torch.nn.BatchNorm1d if ndim == 2 else torch.nn.BatchNorm2d
    module = module_type(
        layer.num_features, eps=layer.epsilon, momentum=layer.momentum
    ).double()
    with torch.no_grad():
        module.weight.copy_(to_torch(layer.params["gamma"]))
        module.bias.copy_(to_torch(layer.params["beta"]))
    return module


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum, epsilon", [(0.1, 1e-5), (0.7, 1e-3)])
def test_training_matches_torch(shape, momentum, epsilon):
    rng = np.random.default_rng(sum(shape))
    layer = make_layer(shape[1], rng, momentum, epsilon)
    x = rng.standard_normal(shape) * 3 + 1
    forward, running = torch_batch_norm(layer, training=True)
    compare_layer_with_torch(
        layer, forward, x, ("gamma", "beta"), training=True, rng=rng
    )
    for name, value in running.items():
        np.testing.assert_allclose(
            layer.buffers[name], to_numpy(value), **TOLERANCE, err_msg=name
        )


@pytest.mark.parametrize("shape", [(1, 3), *SHAPES])
def test_inference_matches_torch_and_keeps_the_running_stats(shape):
    rng = np.random.default_rng(len(shape) + shape[0])
    layer = make_layer(shape[1], rng)
    before = {name: value.copy() for name, value in layer.buffers.items()}
    x = rng.standard_normal(shape)
    forward, _ = torch_batch_norm(layer, training=False)
    compare_layer_with_torch(layer, forward, x, ("gamma", "beta"), rng=rng)
    for name, value in before.items():
        np.testing.assert_array_equal(layer.buffers[name], value)


@pytest.mark.parametrize("ndim", [2, 4])
@pytest.mark.parametrize("momentum", [0.0, 0.1, 0.35, 1.0])
def test_running_stats_match_torch_over_several_batches(ndim, momentum):
    rng = np.random.default_rng(ndim * 10 + int(momentum * 100))
    channels = 3
    layer = BatchNorm(channels, momentum=momentum)
    layer.to_dtype(np.dtype("float64"))
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, channels)
    layer.params["beta"][:] = rng.standard_normal(channels)
    module = torch_module(layer, ndim)
    for step, n in enumerate([2, 7, 4, 3, 2]):
        shape = (n, channels) if ndim == 2 else (n, channels, 3, 5)
        x = rng.standard_normal(shape) * (step + 1) + step
        module.train()
        y_t = module(to_torch(x))
        np.testing.assert_allclose(
            layer.forward(x, training=True), to_numpy(y_t), **TOLERANCE
        )
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(
            layer.buffers[name], to_numpy(getattr(module, name)), **TOLERANCE
        )
    module.eval()
    x = rng.standard_normal((5, channels) if ndim == 2 else (5, channels, 2, 2))
    np.testing.assert_allclose(
        layer.forward(x, training=False), to_numpy(module(to_torch(x))), **TOLERANCE
    )


@pytest.mark.parametrize("trial", range(5))
def test_random_shapes_match_torch(trial):
    rng = np.random.default_rng(100 + trial)
    n, channels = int(rng.integers(2, 9)), int(rng.integers(1, 6))
    shape = (n, channels)
    if trial % 2:
        shape += tuple(int(size) for size in rng.integers(1, 5, size=2))
    layer = make_layer(channels, rng, momentum=float(rng.uniform(0, 1)))
    forward, running = torch_batch_norm(layer, training=True)
    x = rng.standard_normal(shape) * rng.uniform(0.1, 10)
    compare_layer_with_torch(
        layer, forward, x, ("gamma", "beta"), training=True, rng=rng
    )
    np.testing.assert_allclose(
        layer.buffers["running_var"], to_numpy(running["running_var"]), **TOLERANCE
    )


@pytest.mark.parametrize("shape", [(2, 2), (5, 3), (2, 2, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_gradient_is_numerically_correct(shape, training):
    rng = np.random.default_rng(7)
    # In training the output depends on the batch statistics only, so the
    # running ones moving during the finite differences change nothing.
    layer = make_layer(shape[1], rng)
    x = rng.standard_normal(shape)
    check_layer_gradients(layer, x, training=training, rng=rng)


def test_worked_example():
    # One feature, x = [1, 3]: mean 2, biased var 1, so xhat = [-1, 1] / sqrt(1 + eps)
    # and y = 2 * xhat + 0.5. The unbiased variance is 2, so with momentum 0.1
    # running_mean = 0.9 * 0 + 0.1 * 2 = 0.2, running_var = 0.9 * 1 + 0.1 * 2 = 1.1.
    layer = BatchNorm(1, momentum=0.1, epsilon=1e-5)
    layer.to_dtype(np.dtype("float64"))
    layer.params["gamma"][:] = 2.0
    layer.params["beta"][:] = 0.5
    y = layer.forward(np.array([[1.0], [3.0]]), training=True)
    np.testing.assert_allclose(
        y[:, 0], [0.5 - 2 / np.sqrt(1 + 1e-5), 0.5 + 2 / np.sqrt(1 + 1e-5)]
    )
    np.testing.assert_allclose(layer.buffers["running_mean"], [0.2])
    np.testing.assert_allclose(layer.buffers["running_var"], [1.1])
    # g = [1, 0]: dbeta = 1, dgamma = sum(g * xhat) = -1/std, and
    # dx = (1/2) * 2/std * (2g - 1 - xhat * dgamma) = (1/std) * ([1, -1] + xhat/std)
    #    = (1/std) * (1 - 1/std**2) * [1, -1]. Nearly 0: two samples normalise
    # to xhat = +-sqrt(var / (var + eps)), which depends on x only through eps.
    dx = layer.backward(np.array([[1.0], [0.0]]))
    std = np.sqrt(1 + 1e-5)
    np.testing.assert_allclose(layer.grads["beta"], [1.0])
    np.testing.assert_allclose(layer.grads["gamma"], [-1 / std])
    np.testing.assert_allclose(
        dx[:, 0], (1 - 1 / std**2) / std * np.array([1.0, -1.0]), rtol=1e-9
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_features": 0}, "num_features: expected a positive integer"),
        ({"num_features": 2.0}, "num_features: expected a positive integer"),
        ({"num_features": None}, "num_features: expected a positive integer"),
        ({"num_features": 3, "momentum": -0.1}, r"momentum: expected a number in \[0"),
        ({"num_features": 3, "momentum": 1.5}, "momentum: expected"),
        ({"num_features": 3, "momentum": float("nan")}, "momentum: expected"),
        ({"num_features": 3, "momentum": "0.1"}, "momentum: expected"),
        ({"num_features": 3, "epsilon": 0.0}, r"epsilon: expected a number in \(0"),
        ({"num_features": 3, "epsilon": -1e-5}, "epsilon: expected"),
        ({"num_features": 3, "epsilon": float("inf")}, "epsilon: expected"),
        ({"num_features": 3, "epsilon": None}, "epsilon: expected"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchNorm(**kwargs)


@pytest.mark.parametrize(
    "shape", [(4, 2), (4, 4), (4, 2, 5, 5), (6,), (4, 3, 5), (2, 3, 2, 2, 2)]
)
@pytest.mark.parametrize("training", [True, False])
def test_wrong_input_shape_raises_and_changes_nothing(shape, training):
    layer = make_layer(3, np.random.default_rng(0))
    before = [
        array.copy() for array in (*layer.params.values(), *layer.buffers.values())
    ]
    expected = r"expected input of shape \(N, 3\) or \(N, 3, H, W\). Received shape"
    with pytest.raises(ValueError, match=expected):
        layer.forward(np.ones(shape), training=training)
    after = [*layer.params.values(), *layer.buffers.values()]
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1, 1)])
def test_one_value_per_channel_in_training_raises_as_torch_does(shape):
    layer = make_layer(3, np.random.default_rng(0))
    before = {name: value.copy() for name, value in layer.buffers.items()}
    with pytest.raises(ValueError, match="more than 1 value per channel when training"):
        layer.forward(np.ones(shape), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch_module(layer, len(shape)).train()(to_torch(np.ones(shape)))
    for name, value in before.items():
        np.testing.assert_array_equal(layer.buffers[name], value)
    # Inference on a single sample is fine.
    assert layer.forward(np.ones(shape), training=False).shape == shape


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        BatchNorm(2).backward(np.ones((3, 2)))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 5)])
@pytest.mark.parametrize("training", [True, False])
def test_float32_stays_float32(shape, training):
    layer = BatchNorm(3)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y = layer.forward(x, training=training)
    dx = layer.backward(np.ones_like(x))
    arrays = [y, dx, *layer.params.values(), *layer.grads.values()]
    arrays += list(layer.buffers.values())
    assert all(array.dtype == np.float32 for array in arrays)


def test_params_buffers_and_config():
    layer = BatchNorm(4, momentum=0.2, epsilon=1e-3)
    assert set(layer.params) == set(layer.grads) == {"gamma", "beta"}
    assert set(layer.buffers) == {"running_mean", "running_var"}
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(4))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(4))
    np.testing.assert_array_equal(layer.buffers["running_mean"], np.zeros(4))
    np.testing.assert_array_equal(layer.buffers["running_var"], np.ones(4))
    config = layer.get_config()
    assert config == {"num_features": 4, "momentum": 0.2, "epsilon": 1e-3}
    assert LAYER_TYPES["BatchNorm"](**config).get_config() == config
    assert repr(layer) == "BatchNorm(num_features=4, momentum=0.2, epsilon=0.001)"


# ------------------------------------------------------------ inside a model
def build_model(seed=0):
    model = NeuralNetwork(
        loss_name="cce", optimizer=SGD(0.1), seed=seed, dtype="float64"
    )
    model.add(Dense(4, 8))
    model.add(BatchNorm(8))
    model.add(Activation("relu"))
    model.add(Dense(8, 3))
    model.add(Activation("softmax"))
    return model


def eval_forward_by_hand(model, X):
    """Dense -> BatchNorm with running statistics -> relu -> Dense -> softmax."""
    dense1, norm, _, dense2, _ = model.layers
    h = X @ dense1.params["W"] + dense1.params["b"]
    std = np.sqrt(norm.buffers["running_var"] + norm.epsilon)
    h = (h - norm.buffers["running_mean"]) / std * norm.params["gamma"]
    h = np.maximum(h + norm.params["beta"], 0.0)
    logits = h @ dense2.params["W"] + dense2.params["b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def trained_model():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 4)) * 2 + 1
    y = rng.integers(0, 3, 60)
    model = build_model()
    history = model.train(X, y, epochs=3, batch_size=16, verbose=0)
    return model, X, history


def test_training_in_a_model_moves_the_running_stats(trained_model):
    model, _, history = trained_model
    norm = model.layers[1]
    assert len(history["loss"]) == 3
    assert not np.allclose(norm.buffers["running_mean"], 0.0)
    assert not np.allclose(norm.buffers["running_var"], 1.0)
    assert all(array.dtype == np.float64 for array in norm.buffers.values())


def test_predict_uses_the_running_stats(trained_model):
    model, X, _ = trained_model
    before = [array.copy() for array in model.layers[1].buffers.values()]
    prediction = model.predict(X)
    np.testing.assert_allclose(prediction, eval_forward_by_hand(model, X), rtol=1e-12)
    # predict (inference) leaves the running statistics alone ...
    for old, new in zip(before, model.layers[1].buffers.values(), strict=True):
        np.testing.assert_array_equal(old, new)
    # ... and differs from a training-mode pass, which uses the batch's own.
    assert not np.allclose(model.forward(X, training=True), prediction)


def test_save_and_load_round_trip_params_and_buffers(trained_model, tmp_path):
    model, X, _ = trained_model
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]
    for original, copy in zip(model.layers, loaded.layers, strict=True):
        assert original.get_config() == copy.get_config()
        for store in ("params", "buffers"):
            ours, theirs = getattr(original, store), getattr(copy, store)
            assert set(ours) == set(theirs)
            for name in ours:
                assert theirs[name].dtype == ours[name].dtype
                np.testing.assert_array_equal(theirs[name], ours[name])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
