"""RMSprop, Adagrad, AdamW, SGD Nesterov and clipnorm against torch, in float64.

As in ``test_optimizers_torch.py``: ours and torch's start from the same
parameters and each takes the gradients of one fixed non-quadratic function at
its own current parameters, so a difference in any update shows up in every
later step. Clipping is compared with ``torch.nn.utils.clip_grad_norm_`` called
between ``backward()`` and ``step()``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import (
    TOLERANCE,
    optimizer_objective_t,
    run_optimizer_against_torch,
    to_numpy,
    to_torch,
)

from nnscratch import SGD, Activation, Adam, Dense, NeuralNetwork
from nnscratch.optimizers.adagrad import Adagrad
from nnscratch.optimizers.adamw import AdamW
from nnscratch.optimizers.optimizer import OPTIMIZER_TYPES, clip_by_global_norm
from nnscratch.optimizers.rmsprop import RMSprop


def torch_rmsprop(settings):
    return lambda p: torch.optim.RMSprop(
        p,
        lr=settings.get("learning_rate", 0.01),
        alpha=settings.get("rho", 0.99),
        eps=settings.get("epsilon", 1e-8),
        momentum=settings.get("momentum", 0.0),
    )


def torch_adagrad(settings):
    return lambda p: torch.optim.Adagrad(
        p,
        lr=settings.get("learning_rate", 0.01),
        eps=settings.get("epsilon", 1e-10),
        initial_accumulator_value=settings.get("initial_accumulator_value", 0.0),
    )


def torch_adam(settings, cls=torch.optim.Adam):
    extra = {}
    if cls is torch.optim.AdamW:
        extra["weight_decay"] = settings.get("weight_decay", 0.01)
    return lambda p: cls(
        p,
        lr=settings.get("learning_rate", 0.001),
        betas=(settings.get("beta1", 0.9), settings.get("beta2", 0.999)),
        eps=settings.get("epsilon", 1e-8),
        **extra,
    )


def torch_adamw(settings):
    return torch_adam(settings, torch.optim.AdamW)


def torch_sgd(settings):
    return lambda p: torch.optim.SGD(
        p,
        lr=settings.get("learning_rate", 0.01),
        momentum=settings.get("momentum", 0.0),
        nesterov=settings.get("nesterov", False),
    )


OURS = {
    "rmsprop": (RMSprop, torch_rmsprop),
    "adagrad": (Adagrad, torch_adagrad),
    "adamw": (AdamW, torch_adamw),
    "sgd": (SGD, torch_sgd),
    "adam": (Adam, torch_adam),
}

SETTINGS = [
    ("rmsprop", {}),
    ("rmsprop", {"learning_rate": 1.0}),
    ("rmsprop", {"learning_rate": 0.01, "momentum": 0.9}),
    ("rmsprop", {"learning_rate": 1.0, "rho": 0.5, "epsilon": 1e-3, "momentum": 0.9}),
    ("adagrad", {}),
    ("adagrad", {"learning_rate": 1.0}),
    (
        "adagrad",
        {"learning_rate": 0.5, "epsilon": 1e-6, "initial_accumulator_value": 0.3},
    ),
    ("adamw", {}),
    ("adamw", {"learning_rate": 1.0, "weight_decay": 0.1}),
    ("adamw", {"learning_rate": 0.05, "beta1": 0.5, "beta2": 0.9, "weight_decay": 0.5}),
    ("adamw", {"learning_rate": 0.1, "weight_decay": 0.0}),
    ("sgd", {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"learning_rate": 1.0, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.5, "nesterov": True}),
]

CLIPPED = [
    ("sgd", {"learning_rate": 0.1}, 0.5),
    ("sgd", {"learning_rate": 1.0, "momentum": 0.9}, 0.5),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, 1.0),
    ("adam", {"learning_rate": 0.5}, 0.1),
    ("adam", {}, 2.0),
    ("rmsprop", {"learning_rate": 0.01, "momentum": 0.9}, 1.0),
    ("rmsprop", {"learning_rate": 1.0}, 0.05),
    ("adagrad", {"learning_rate": 1.0}, 0.3),
    ("adamw", {"learning_rate": 1.0, "weight_decay": 0.1}, 0.3),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}, 1e3),  # never clips
]


def check_against_torch(kind, settings, steps, clipnorm=None):
    ours_class, torch_factory = OURS[kind]
    extra = {} if clipnorm is None else {"clipnorm": clipnorm}
    ours, theirs = run_optimizer_against_torch(
        ours_class(**settings, **extra), torch_factory(settings), steps, clipnorm
    )
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine, reference, **TOLERANCE)


@pytest.mark.parametrize("steps", [1, 12])
@pytest.mark.parametrize("kind, settings", SETTINGS)
def test_optimizer_matches_torch(kind, settings, steps):
    check_against_torch(kind, settings, steps)


@pytest.mark.parametrize("steps", [1, 12])
@pytest.mark.parametrize("kind, settings, clipnorm", CLIPPED)
def test_clipnorm_matches_torch_clip_grad_norm(kind, settings, clipnorm, steps):
    check_against_torch(kind, settings, steps, clipnorm)


def test_clipping_applies_in_those_runs():
    # The objective's gradient norm at the start is well above the small limits.
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]
    params_t = [to_torch(p, requires_grad=True) for p in start]
    optimizer_objective_t(params_t, to_torch(rng.standard_normal((3, 2)))).backward()
    grads = [to_numpy(p.grad) for p in params_t]
    _, norm = clip_by_global_norm(grads, 1.0)
    assert norm > 2.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_by_global_norm_matches_torch(dtype):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(shape).astype(dtype) for shape in [(5, 3), (3,), ()]]
    originals = [g.copy() for g in grads]
    tensors = [torch.zeros(g.shape, dtype=torch.float64) for g in grads]
    for tensor, g in zip(tensors, grads, strict=True):
        tensor.grad = to_torch(g)
    norm_t = torch.nn.utils.clip_grad_norm_(tensors, 0.7)

    clipped, norm = clip_by_global_norm(grads, 0.7)
    assert norm == pytest.approx(float(norm_t), rel=1e-6)
    for mine, tensor, original, g in zip(
        clipped, tensors, originals, grads, strict=True
    ):
        assert mine.dtype == dtype and mine.shape == original.shape
        rtol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(mine, to_numpy(tensor.grad), rtol=rtol)
        np.testing.assert_array_equal(g, original)  # the input is untouched


def test_clip_by_global_norm_hand_worked():
    # g = (3, 4) has norm 5; the scale is 1 / (5 + 1e-6), just under 1/5.
    clipped, norm = clip_by_global_norm([np.array([3.0, 4.0])], 1.0)
    assert norm == 5.0
    np.testing.assert_allclose(clipped[0], [3.0 / 5.000001, 4.0 / 5.000001])
    # Below the limit nothing is scaled, and no copy is made. At the limit
    # itself torch still scales, by 0.5 / (0.5 + 1e-6).
    g = np.array([0.3, 0.4])
    assert clip_by_global_norm([g], 0.6)[0][0] is g
    np.testing.assert_allclose(clip_by_global_norm([g], 0.5)[0][0], g / 1.000002)


def test_clipnorm_step_leaves_callers_gradients_unchanged():
    w = np.array([1.0, 1.0])
    grad = np.array([30.0, 40.0])
    SGD(learning_rate=1.0, clipnorm=5.0).step([w], [grad])
    np.testing.assert_array_equal(grad, [30.0, 40.0])
    # The step used the clipped gradient (3, 4) * 5 / (5 + 1e-6).
    np.testing.assert_allclose(w, [1.0 - 3.0, 1.0 - 4.0], rtol=1e-6)


def test_rmsprop_hand_worked():
    # s = 0.5 * 0 + 0.5 * 4 = 2; w = 1 - 0.1 * 2 / sqrt(2) = 1 - 0.1 * sqrt(2).
    w = np.array([1.0])
    RMSprop(learning_rate=0.1, rho=0.5, epsilon=1e-12).step([w], [np.array([2.0])])
    assert w[0] == pytest.approx(1.0 - 0.1 * np.sqrt(2.0), rel=1e-12)


def test_adagrad_hand_worked():
    # s = 1 + 9 = 10 (from the initial value 1); w = 2 - 0.5 * 3 / sqrt(10).
    w = np.array([2.0])
    opt = Adagrad(learning_rate=0.5, initial_accumulator_value=1.0, epsilon=1e-12)
    opt.step([w], [np.array([3.0])])
    assert w[0] == pytest.approx(2.0 - 1.5 / np.sqrt(10.0), rel=1e-12)


def test_adamw_is_adam_after_decoupled_decay():
    # One AdamW step = shrink by (1 - lr * wd), then Adam's step from there.
    rng = np.random.default_rng(0)
    w, g = rng.standard_normal(5), rng.standard_normal(5)
    decayed = w * (1.0 - 0.1 * 0.3)
    AdamW(learning_rate=0.1, weight_decay=0.3).step([w], [g])
    Adam(learning_rate=0.1).step([decayed], [g])
    np.testing.assert_allclose(w, decayed, rtol=1e-15)
    assert issubclass(AdamW, Adam)


def test_sgd_nesterov_hand_worked():
    # v1 = 2, w1 = 1 - 0.5 * (2 + 0.5 * 2) = -0.5;
    # v2 = 0.5 * 2 + 2 = 3, w2 = -0.5 - 0.5 * (2 + 0.5 * 3) = -2.25.
    w = np.array([1.0])
    optimizer = SGD(learning_rate=0.5, momentum=0.5, nesterov=True)
    optimizer.step([w], [np.array([2.0])])
    assert w[0] == -0.5
    optimizer.step([w], [np.array([2.0])])
    assert w[0] == -2.25


# Factories: each test gets fresh optimizers (they keep per-parameter state).
ALL_NEW = [
    lambda: RMSprop(0.1),
    lambda: RMSprop(0.1, momentum=0.9, clipnorm=1.0),
    lambda: Adagrad(0.1, initial_accumulator_value=0.1),
    lambda: AdamW(0.1),
    lambda: SGD(0.1, momentum=0.9, nesterov=True),
    lambda: SGD(0.1, clipnorm=0.5),
    lambda: Adam(0.1, clipnorm=0.5),
]
IDS = [repr(make()) for make in ALL_NEW]


@pytest.mark.parametrize("make_optimizer", ALL_NEW, ids=IDS)
def test_updates_in_place_and_keep_float32(make_optimizer):
    optimizer = make_optimizer()
    w = np.ones((2, 2), dtype=np.float32)
    grad = np.full((2, 2), 3.0, dtype=np.float32)
    original = w
    for _ in range(3):
        optimizer.step([w], [grad])
    assert w is original and w.dtype == np.float32
    assert all(a.dtype == np.float32 for s in optimizer.state for a in s.values())
    assert not np.array_equal(w, np.ones((2, 2)))
    np.testing.assert_array_equal(grad, 3.0)


@pytest.mark.parametrize("make_optimizer", ALL_NEW, ids=IDS)
def test_config_rebuilds_the_same_optimizer(make_optimizer):
    optimizer = make_optimizer()
    config = optimizer.get_config()
    assert "clipnorm" in config
    rebuilt = OPTIMIZER_TYPES[type(optimizer).__name__](**config)
    assert type(rebuilt) is type(optimizer)
    assert rebuilt.get_config() == config


def test_repr_shows_the_arguments_that_differ_from_defaults():
    assert repr(AdamW()) == "AdamW()"
    assert repr(SGD(0.3, momentum=0.7)) == "SGD(learning_rate=0.3, momentum=0.7)"
    assert (
        repr(RMSprop(momentum=0.9, clipnorm=1.0))
        == "RMSprop(clipnorm=1.0, momentum=0.9)"
    )


BAD = [
    (lambda: RMSprop(learning_rate=-1), r"learning_rate: expected a number in \[0.0"),
    (lambda: RMSprop(rho=1.0), r"rho: expected a number in \[0.0, 1.0\)\. Received: 1"),
    (lambda: RMSprop(rho=-0.1), r"rho: expected .* Received: -0.1"),
    (lambda: RMSprop(epsilon=0.0), r"epsilon: expected a number in \(0.0, inf\]"),
    (lambda: RMSprop(momentum=1.0), r"momentum: expected .* Received: 1.0"),
    (lambda: RMSprop(momentum="0.9"), r"momentum: expected .* Received: '0.9'"),
    (lambda: Adagrad(epsilon=-1e-10), r"epsilon: expected .* Received: -1e-10"),
    (
        lambda: Adagrad(initial_accumulator_value=-0.1),
        r"initial_accumulator_value: expected a number in \[0.0, inf\]",
    ),
    (
        lambda: Adagrad(initial_accumulator_value=float("nan")),
        r"initial_accumulator_value: expected .* Received: nan",
    ),
    (lambda: AdamW(weight_decay=-0.01), r"weight_decay: expected .* Received: -0.01"),
    (lambda: AdamW(weight_decay=None), r"weight_decay: expected .* Received: None"),
    (lambda: AdamW(beta1=1.0), r"beta1: expected .* Received: 1.0"),
    (lambda: SGD(nesterov=True), r"nesterov: expected momentum > 0 .* momentum=0.0"),
    (
        lambda: SGD(momentum=0.9, nesterov="yes"),
        r"nesterov: expected True or False\. Received: 'yes'",
    ),
    (lambda: SGD(clipnorm=0), r"clipnorm: expected a number in \(0.0, inf\]"),
    (lambda: Adam(clipnorm=-1.0), r"clipnorm: expected .* Received: -1.0"),
    (lambda: RMSprop(clipnorm="1"), r"clipnorm: expected .* Received: '1'"),
    (lambda: AdamW(clipnorm=float("inf")), r"clipnorm: expected .* Received: inf"),
]


@pytest.mark.parametrize("make, message", BAD)
def test_bad_hyperparameters_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_gradients_with_clipnorm_change_nothing():
    w = np.ones(3)
    optimizer = RMSprop(0.1, momentum=0.9, clipnorm=1.0)
    with pytest.raises(ValueError, match=r"expected gradients of shapes \[\(3,\)\]"):
        optimizer.step([w], [np.ones(4)])
    np.testing.assert_array_equal(w, 1.0)
    assert optimizer.iterations == 0 and optimizer.state is None


@pytest.mark.parametrize("make_optimizer", ALL_NEW, ids=IDS)
def test_model_with_each_optimizer_saves_and_loads(tmp_path, make_optimizer):
    optimizer = make_optimizer()
    rng = np.random.default_rng(0)
    X, labels = rng.standard_normal((24, 3)), rng.integers(0, 2, 24)
    model = NeuralNetwork(loss_name="cce", optimizer=optimizer, seed=0)
    model.add(Dense(3, 4))
    model.add(Activation("tanh"))
    model.add(Dense(4, 2))
    model.add(Activation("softmax"))
    model.train(X, labels, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path)
    assert type(loaded.optimizer) is type(optimizer)
    assert loaded.optimizer.get_config() == optimizer.get_config()
    # The optimizer's per-parameter state travels with a trained model.
    assert loaded.optimizer.iterations == optimizer.iterations
    for mine, theirs in zip(loaded.optimizer.state, optimizer.state, strict=True):
        assert sorted(mine) == sorted(theirs)
        for name in mine:
            np.testing.assert_array_equal(mine[name], theirs[name])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    loaded.train(X, labels, epochs=1, batch_size=8, verbose=0)  # trains on
