"""Whole networks: backpropagation against central differences, in float64."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_layer_gradients, numerical_gradient
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch import SGD, Activation, Dense, Dropout, Layer, NeuralNetwork

HIDDEN_ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax"]


class Identity(Layer):
    """Ends a network without a fused activation, to check the plain loss path."""

    def forward(self, x, training=False):
        return x

    def backward(self, grad):
        return grad


def make_targets(loss_name, n, n_out, rng):
    if loss_name == "mse":
        return rng.standard_normal((n, n_out))
    if loss_name == "bce":
        return rng.integers(0, 2, (n, n_out)).astype(float)
    return rng.integers(0, n_out, n)


def build(loss_name, sizes, hidden, l2_lambda, fused=True, seed=0):
    model = NeuralNetwork(
        loss_name=loss_name, optimizer=SGD(), seed=seed, dtype="float64"
    )
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        model.add(Dense(n_in, n_out, initialization="xavier", l2_lambda=l2_lambda))
        if i < len(sizes) - 2:
            model.add(Activation(hidden))
    head = {"mse": None, "bce": "sigmoid", "cce": "softmax"}[loss_name]
    if head:
        model.add(Activation(head))
    if not fused:
        model.add(Identity())
    return model


def assert_network_gradients(model, X, y, rtol=1e-5, atol=1e-8):
    y = model.loss.check_targets(y, model.forward(X[:1]).shape, model.dtype)
    model.compute_gradients(X, y)
    analytic = [layer.grads[k].copy() for layer in model.layers for k in layer.params]

    def loss():
        data_loss, _, _ = model._loss_and_output(X, y, training=False)
        return data_loss + model.regularization_loss()

    params = [layer.params[k] for layer in model.layers for k in layer.params]
    for grad, param in zip(analytic, params, strict=True):
        np.testing.assert_allclose(
            grad, numerical_gradient(loss, param), rtol=rtol, atol=atol
        )


@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss_name", ["mse", "bce", "cce"])
@pytest.mark.parametrize("l2_lambda", [0.0, 0.05])
def test_network_gradients(hidden, loss_name, l2_lambda):
    rng = np.random.default_rng(0)
    model = build(loss_name, [4, 5, 3, 3], hidden, l2_lambda)
    X = rng.standard_normal((6, 4))
    assert_network_gradients(model, X, make_targets(loss_name, 6, 3, rng))


@pytest.mark.parametrize("loss_name", ["bce", "cce"])
def test_unfused_loss_path_gradients(loss_name):
    rng = np.random.default_rng(1)
    model = build(loss_name, [3, 4, 2], "tanh", 0.01, fused=False)
    assert not model._fused_output
    X = rng.standard_normal((5, 3))
    assert_network_gradients(model, X, make_targets(loss_name, 5, 2, rng))


def test_network_with_dropout_in_training_mode():
    # Reseeding the dropout generator before every forward fixes the mask,
    # which makes the training-mode network a deterministic function to check.
    rng = np.random.default_rng(2)
    model = NeuralNetwork(loss_name="mse", optimizer=SGD(), seed=0, dtype="float64")
    for layer in (Dense(4, 6), Dropout(0.4), Activation("tanh"), Dense(6, 2)):
        model.add(layer)
    dropout = model.layers[1]
    X, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))

    def loss():
        dropout.rng = np.random.default_rng(3)
        data_loss, _, _ = model._loss_and_output(X, y, training=True)
        return data_loss

    dropout.rng = np.random.default_rng(3)
    model.compute_gradients(X, y, training=True)
    assert 0 < np.count_nonzero(dropout._scaled_mask) < dropout._scaled_mask.size
    for layer in model.layers:
        for key, param in layer.params.items():
            np.testing.assert_allclose(
                layer.grads[key], numerical_gradient(loss, param), rtol=1e-6, atol=1e-8
            )


@pytest.mark.parametrize("layer", [Dense(3, 4, l2_lambda=0.1), Activation("softmax")])
def test_single_layer_gradients(layer):
    layer.build(np.random.default_rng(0), np.dtype("float64"))
    check_layer_gradients(layer, np.random.default_rng(1).standard_normal((4, 3)))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    hidden=st.sampled_from(HIDDEN_ACTIVATIONS),
    loss_name=st.sampled_from(["mse", "bce", "cce"]),
    l2_lambda=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_random_network_gradients(n, sizes, hidden, loss_name, l2_lambda, seed):
    rng = np.random.default_rng(seed)
    if loss_name == "cce":
        sizes[-1] = max(sizes[-1], 2)
    model = build(loss_name, sizes, hidden, l2_lambda, seed=seed)
    # Inputs away from 0 keep ReLU off its kink, where the derivative jumps.
    X = rng.standard_normal((n, sizes[0]))
    X += np.sign(X) * 0.05
    y = make_targets(loss_name, n, sizes[-1], rng)
    if hidden == "relu":
        pre = X
        for layer in model.layers:
            pre = layer.forward(pre)
            if isinstance(layer, Dense) and np.min(np.abs(pre)) < 1e-4:
                return  # a pre-activation sits on the kink; skip this draw
    assert_network_gradients(model, X, y)
