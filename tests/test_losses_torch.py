"""MSE, BCE and CCE against PyTorch in float64, including the fused logit paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TOLERANCE, numerical_gradient, to_numpy, to_torch

from nnscratch.core.functional import sigmoid, softmax
from nnscratch.losses.losses import BCE, CCE, MSE, get_loss

SHAPES = [(1, 1), (1, 4), (8, 1), (13, 5)]


def torch_value_and_grad(torch_loss, y_pred, *args):
    pred_t = to_torch(y_pred, requires_grad=True)
    value_t = torch_loss(pred_t, *args)
    value_t.backward()
    return float(value_t.detach()), to_numpy(pred_t.grad)


def assert_loss_matches(ours_value, ours_grad, torch_value, torch_grad):
    assert ours_value == pytest.approx(torch_value, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(ours_grad, torch_grad, **TOLERANCE)


@pytest.mark.parametrize("shape", SHAPES)
def test_mse_matches_torch(shape):
    rng = np.random.default_rng(shape[0])
    p, y = rng.standard_normal(shape), rng.standard_normal(shape)
    value, grad = torch_value_and_grad(F.mse_loss, p, to_torch(y))
    assert_loss_matches(MSE()(p, y), MSE().gradient(p, y), value, grad)


@pytest.mark.parametrize("shape", SHAPES)
def test_bce_matches_torch_on_probabilities(shape):
    rng = np.random.default_rng(shape[1])
    p = rng.uniform(0.01, 0.99, shape)
    y = rng.integers(0, 2, shape).astype(float)
    value, grad = torch_value_and_grad(F.binary_cross_entropy, p, to_torch(y))
    assert_loss_matches(BCE()(p, y), BCE().gradient(p, y), value, grad)


@pytest.mark.parametrize("shape", SHAPES)
def test_bce_from_logits_matches_torch(shape):
    rng = np.random.default_rng(7)
    z = rng.standard_normal(shape) * 5
    y = rng.uniform(0, 1, shape)  # soft targets are allowed in [0, 1]
    value, grad = torch_value_and_grad(
        F.binary_cross_entropy_with_logits, z, to_torch(y)
    )
    bce = BCE()
    assert_loss_matches(
        bce.value_from_logits(z, y), bce.gradient_from_logits(z, y), value, grad
    )


@pytest.mark.parametrize("shape", [(1, 2), (6, 3), (11, 10)])
@pytest.mark.parametrize("label_form", ["integers", "one_hot"])
def test_cce_matches_torch_on_probabilities(shape, label_form):
    rng = np.random.default_rng(shape[1])
    p = softmax(rng.standard_normal(shape))
    labels = rng.integers(0, shape[1], shape[0])
    y = labels if label_form == "integers" else np.eye(shape[1])[labels]
    # torch's nll_loss on log(p) is -mean_n log p[n, label_n].
    value, grad = torch_value_and_grad(
        lambda p_t: F.nll_loss(torch.log(p_t), torch.tensor(labels)), p
    )
    assert_loss_matches(CCE()(p, y), CCE().gradient(p, y), value, grad)


@pytest.mark.parametrize("label_form", ["integers", "one_hot"])
def test_cce_from_logits_matches_torch_cross_entropy(label_form):
    rng = np.random.default_rng(2)
    z = rng.standard_normal((9, 4)) * 3
    labels = rng.integers(0, 4, 9)
    y = labels if label_form == "integers" else np.eye(4)[labels]
    value, grad = torch_value_and_grad(F.cross_entropy, z, torch.tensor(labels))
    cce = CCE()
    assert_loss_matches(
        cce.value_from_logits(z, y), cce.gradient_from_logits(z, y), value, grad
    )


def test_cce_from_logits_with_soft_labels_matches_torch():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((5, 3))
    y = softmax(rng.standard_normal((5, 3)))
    value, grad = torch_value_and_grad(F.cross_entropy, z, to_torch(y))
    cce = CCE()
    assert_loss_matches(
        cce.value_from_logits(z, y), cce.gradient_from_logits(z, y), value, grad
    )


def test_fused_losses_stay_finite_and_exact_at_extreme_logits():
    # Logits of +-1000: the probabilities underflow to exactly 0 and 1, yet
    # the loss from the logits is the exact, finite value.
    z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    labels = np.array([1, 1])
    # Row 0 puts everything on the wrong class: -log softmax = 2000 exactly.
    assert CCE().value_from_logits(z, labels) == pytest.approx((2000.0 + 0.0) / 2)
    value, grad = torch_value_and_grad(F.cross_entropy, z, torch.tensor(labels))
    np.testing.assert_allclose(CCE().gradient_from_logits(z, labels), grad)
    zb = np.array([[1000.0], [-1000.0]])
    yb = np.array([[0.0], [0.0]])
    # softplus(1000) - 0 = 1000 and softplus(-1000) = 0: mean 500.
    assert BCE().value_from_logits(zb, yb) == pytest.approx(500.0)
    value, grad = torch_value_and_grad(
        F.binary_cross_entropy_with_logits, zb, to_torch(yb)
    )
    assert BCE().value_from_logits(zb, yb) == pytest.approx(value)
    np.testing.assert_allclose(BCE().gradient_from_logits(zb, yb), grad)


def test_bce_clips_probabilities_to_keep_the_log_finite():
    # p = 0 for a positive target: the clip makes it -log(1e-7) = 16.118...
    p, y = np.array([[0.0]]), np.array([[1.0]])
    assert BCE()(p, y) == pytest.approx(-np.log(1e-7))
    # The clip is flat outside [1e-7, 1 - 1e-7]: the gradient there is 0.
    assert BCE().gradient(p, y)[0, 0] == 0.0
    assert np.isfinite(CCE()(np.array([[0.0, 1.0]]), np.array([0])))


def test_bce_hand_worked_example():
    # p = [0.9, 0.2], y = [1, 0]: L = -(log 0.9 + log 0.8) / 2.
    p, y = np.array([[0.9], [0.2]]), np.array([[1.0], [0.0]])
    assert BCE()(p, y) == pytest.approx(-(np.log(0.9) + np.log(0.8)) / 2)
    # dL/dp = (p - y) / (p (1 - p)) / 2 = [-0.1 / 0.09, 0.2 / 0.16] / 2
    np.testing.assert_allclose(BCE().gradient(p, y), [[-0.1 / 0.18], [0.2 / 0.32]])


@pytest.mark.parametrize("name", ["mse", "bce", "cce"])
def test_loss_gradients_match_central_differences(name):
    rng = np.random.default_rng(3)
    loss = get_loss(name)
    p = softmax(rng.standard_normal((4, 3)))
    y = np.eye(3)[rng.integers(0, 3, 4)]
    numeric = numerical_gradient(lambda: loss(p, y), p)
    np.testing.assert_allclose(loss.gradient(p, y), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("loss", [BCE(), CCE()])
def test_logit_gradients_match_central_differences(loss):
    rng = np.random.default_rng(8)
    z = rng.standard_normal((5, 1 if isinstance(loss, BCE) else 3)) * 2
    y = (
        rng.integers(0, 2, z.shape).astype(float)
        if isinstance(loss, BCE)
        else rng.integers(0, 3, 5)
    )
    numeric = numerical_gradient(lambda: loss.value_from_logits(z, y), z)
    np.testing.assert_allclose(
        loss.gradient_from_logits(z, y), numeric, rtol=1e-6, atol=1e-8
    )


def test_fused_and_unfused_agree_where_probabilities_are_representable():
    rng = np.random.default_rng(9)
    z = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    assert CCE().value_from_logits(z, labels) == pytest.approx(
        CCE()(softmax(z), labels), rel=1e-12
    )
    zb, yb = rng.standard_normal((6, 1)), rng.integers(0, 2, (6, 1)).astype(float)
    assert BCE().value_from_logits(zb, yb) == pytest.approx(
        BCE()(sigmoid(zb), yb), rel=1e-12
    )


@pytest.mark.parametrize("name", ["bce", "cce"])
def test_the_training_pass_gives_value_gradient_and_output_together(name):
    # One pass over the logits for a training step: the same loss and
    # gradient as the separate methods, and the output activation's values.
    rng = np.random.default_rng(3)
    loss = get_loss(name)
    if name == "bce":
        z, y, activate = rng.standard_normal((6, 1)), rng.random((6, 1)), sigmoid
    else:
        z, y, activate = rng.standard_normal((6, 4)) * 5, rng.integers(0, 4, 6), softmax
    value, grad, output = loss.value_gradient_and_output_from_logits(z, y)
    assert value == loss.value_from_logits(z, y)
    np.testing.assert_array_equal(grad, loss.gradient_from_logits(z, y))
    np.testing.assert_allclose(output, activate(z), rtol=1e-14, atol=1e-16)
