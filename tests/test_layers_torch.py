"""Dense, Activation and Dropout against PyTorch, in float64, to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TOLERANCE, compare_layer_with_torch, to_numpy, to_torch

from nnscratch import Activation, Dense, Dropout

# (batch, in, out): a batch of 1, odd sizes, and a wide layer.
DENSE_SHAPES = [(1, 1, 1), (1, 3, 5), (7, 5, 3), (32, 20, 11)]


@pytest.mark.parametrize("n, n_in, n_out", DENSE_SHAPES)
@pytest.mark.parametrize("l2_lambda", [0.0, 0.3])
def test_dense_matches_torch_linear(n, n_in, n_out, l2_lambda):
    rng = np.random.default_rng(n * 100 + n_in)
    layer = Dense(n_in, n_out, l2_lambda=l2_lambda)
    layer.params = {
        "W": rng.standard_normal((n_in, n_out)),
        "b": rng.standard_normal(n_out),
    }
    x = rng.standard_normal((n, n_in))

    def torch_dense(x_t, W_t, b_t):
        # Our W is (in, out); torch.nn.Linear stores its transpose (out, in).
        return F.linear(x_t, W_t.T, b_t)

    def l2_penalty(W_t, b_t):
        return l2_lambda * (W_t**2).sum()

    compare_layer_with_torch(
        layer, torch_dense, x, ("W", "b"), rng=rng, torch_penalty=l2_penalty
    )


def test_dense_l2_gradient_is_two_lambda_w():
    # Worked by hand: x = 0 makes the data gradient of W zero, so dW is the
    # penalty's alone: 2 * 0.5 * W = W.
    layer = Dense(2, 2, l2_lambda=0.5)
    layer.params["W"] = np.array([[1.0, -2.0], [3.0, 4.0]])
    layer.params["b"] = np.zeros(2)
    layer.forward(np.zeros((1, 2)))
    layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(layer.grads["W"], layer.params["W"])
    np.testing.assert_array_equal(layer.grads["b"], [1.0, 1.0])
    assert layer.regularization_loss() == 0.5 * (1 + 4 + 9 + 16)


TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=-1),
}


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (9, 5), (3, 2, 7)])
def test_activation_matches_torch(name, shape):
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    x = rng.standard_normal(shape) * 3
    compare_layer_with_torch(Activation(name), TORCH_ACTIVATIONS[name], x, rng=rng)


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
def test_activation_is_finite_and_matches_torch_at_extreme_inputs(name):
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    compare_layer_with_torch(Activation(name), TORCH_ACTIVATIONS[name], x)


def test_softmax_backward_is_the_jacobian_vector_product():
    # J = diag(y) - y y^T, formed explicitly and multiplied, per sample.
    rng = np.random.default_rng(3)
    layer = Activation("softmax")
    x, g = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    y = layer.forward(x)
    jacobians = np.stack([np.diag(row) - np.outer(row, row) for row in y])
    np.testing.assert_allclose(
        layer.backward(g), np.einsum("nij,nj->ni", jacobians, g), rtol=1e-12
    )


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 0.9])
def test_dropout_matches_torch_given_the_same_mask(rate):
    rng = np.random.default_rng(5)
    layer = Dropout(rate)
    layer.rng = np.random.default_rng(11)
    x = rng.standard_normal((50, 40)) + 5.0  # no zeros: a 0 in y means dropped
    y = layer.forward(x, training=True)
    kept = y != 0
    assert abs(kept.mean() - (1 - rate)) < 0.05
    # torch's dropout is x * mask / (1 - rate); apply the same mask in torch.
    x_t = to_torch(x, requires_grad=True)
    y_t = x_t * to_torch(kept) / (1 - rate)
    np.testing.assert_allclose(y, to_numpy(y_t), **TOLERANCE)
    upstream = rng.standard_normal(x.shape)
    y_t.backward(to_torch(upstream))
    np.testing.assert_allclose(
        layer.backward(upstream), to_numpy(x_t.grad), **TOLERANCE
    )


def test_dropout_is_identity_at_inference_and_keeps_dtype():
    layer = Dropout(0.5)
    x = np.ones((3, 4), dtype=np.float32)
    assert layer.forward(x, training=True).dtype == np.float32
    assert layer.forward(x, training=False) is x
    np.testing.assert_array_equal(layer.backward(x), x)


def test_dropout_keeps_the_expected_value():
    layer = Dropout(0.3)
    layer.rng = np.random.default_rng(0)
    y = layer.forward(np.ones((200, 500)), training=True)
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    assert abs(y.mean() - 1.0) < 0.01


@pytest.mark.parametrize("layer", [Dense(2, 3), Activation("tanh"), Dropout(0.5)])
def test_backward_before_forward_is_a_clear_error(layer):
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 3)))
