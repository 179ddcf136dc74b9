"""SGD and Adam against torch.optim, step for step, in float64.

Both start from the same parameters and see the same gradients: those of a
fixed non-quadratic function, recomputed at each step from the current
parameters, so any difference in an update shows up in every later step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import run_optimizer_against_torch, to_numpy, to_torch

from nnscratch import SGD, Activation, Adam, Dense, NeuralNetwork

SETTINGS = [
    ("sgd", {"learning_rate": 0.01}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", {"learning_rate": 1.5, "momentum": 0.5}),
    ("adam", {}),
    ("adam", {"learning_rate": 0.5}),
    ("adam", {"learning_rate": 0.05, "beta1": 0.5, "beta2": 0.9, "epsilon": 1e-3}),
]


def torch_factory(kind, settings):
    if kind == "sgd":
        return lambda p: torch.optim.SGD(
            p, lr=settings["learning_rate"], momentum=settings.get("momentum", 0.0)
        )
    return lambda p: torch.optim.Adam(
        p,
        lr=settings.get("learning_rate", 0.001),
        betas=(settings.get("beta1", 0.9), settings.get("beta2", 0.999)),
        eps=settings.get("epsilon", 1e-8),
    )


@pytest.mark.parametrize("kind, settings", SETTINGS)
@pytest.mark.parametrize("steps", [1, 12])
def test_optimizer_matches_torch(kind, settings, steps):
    ours_class = SGD if kind == "sgd" else Adam
    ours, theirs = run_optimizer_against_torch(
        ours_class(**settings), torch_factory(kind, settings), steps
    )
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-6, atol=1e-6)


def test_sgd_momentum_hand_worked():
    # v1 = g = 2, w1 = 1 - 0.5 * 2 = 0; v2 = 0.5 * 2 + 2 = 3, w2 = 0 - 0.5 * 3.
    w = np.array([1.0])
    optimizer = SGD(learning_rate=0.5, momentum=0.5)
    optimizer.step([w], [np.array([2.0])])
    assert w[0] == 0.0
    optimizer.step([w], [np.array([2.0])])
    assert w[0] == -1.5


def test_optimizer_updates_in_place_and_keeps_float32():
    w = np.ones((2, 2), dtype=np.float32)
    original = w
    for optimizer in (SGD(0.1, momentum=0.9), Adam(0.1)):
        optimizer.step([w], [np.ones((2, 2), dtype=np.float32)])
    assert w is original and w.dtype == np.float32


def test_whole_network_training_matches_torch():
    """10 mini-batch steps of a 2-layer MLP with softmax + CCE and Adam."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    labels = rng.integers(0, 3, 40)
    model = NeuralNetwork(
        loss_name="cce", optimizer=Adam(0.05), seed=1, dtype="float64"
    )
    model.add(Dense(5, 7, l2_lambda=0.01))
    model.add(Activation("tanh"))
    model.add(Dense(7, 3))
    model.add(Activation("softmax"))

    W1, b1, W2, b2 = (to_torch(a, requires_grad=True) for a in model.get_weights())
    optimizer_t = torch.optim.Adam([W1, b1, W2, b2], lr=0.05)
    for step in range(10):
        batch = slice(4 * step, 4 * step + 4)
        model.train_step(X[batch], labels[batch])
        optimizer_t.zero_grad()
        logits = torch.tanh(to_torch(X[batch]) @ W1 + b1) @ W2 + b2
        loss = F.cross_entropy(logits, torch.tensor(labels[batch]))
        (loss + 0.01 * (W1**2).sum()).backward()
        optimizer_t.step()
    for mine, reference in zip(model.get_weights(), (W1, b1, W2, b2), strict=True):
        np.testing.assert_allclose(mine, to_numpy(reference), rtol=1e-6, atol=1e-8)
