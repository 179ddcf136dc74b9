"""Learning-rate schedules and their callbacks against torch.optim.lr_scheduler.

Torch's schedulers are stepped once per epoch, after the optimizer, the way
its documentation trains: the rate read before epoch ``e``'s optimizer step is
the rate of epoch ``e``, which our schedules must give for ``(e, lr0)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnscratch import SGD, Activation, Adam, Callback, Dense, NeuralNetwork
from nnscratch.engine.callbacks import LearningRateScheduler, ReduceLROnPlateau
from nnscratch.optimizers.schedules import (
    SCHEDULE_TYPES,
    CosineAnnealing,
    ExponentialDecay,
    StepDecay,
)

EPOCHS = 30


def torch_rates(make_scheduler, initial_learning_rate, epochs=EPOCHS):
    """The learning rate torch uses in each of ``epochs`` epochs."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=initial_learning_rate)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: nothing moves, but the order is torch's
        scheduler.step()
    return rates


SCHEDULES = [
    (StepDecay(7, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5), 0.1),
    (StepDecay(1), lambda o: torch.optim.lr_scheduler.StepLR(o, 1), 1.0),
    (StepDecay(40, 0.3), lambda o: torch.optim.lr_scheduler.StepLR(o, 40, 0.3), 0.2),
    (
        ExponentialDecay(0.9),
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9),
        0.05,
    ),
    (
        ExponentialDecay(1.0),
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 1.0),
        3.0,
    ),
    (
        CosineAnnealing(EPOCHS),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, EPOCHS),
        0.1,
    ),
    (
        CosineAnnealing(10, eta_min=0.001),  # 30 epochs: down, up and down again
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, eta_min=0.001),
        0.1,
    ),
    (
        CosineAnnealing(7, eta_min=0.5),  # eta_min above the initial rate
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.5),
        0.2,
    ),
]


@pytest.mark.parametrize("schedule, make_torch, lr0", SCHEDULES, ids=repr)
def test_schedule_matches_torch_per_epoch(schedule, make_torch, lr0):
    ours = [schedule(epoch, lr0) for epoch in range(EPOCHS)]
    # Torch updates the rate recursively, so the two differ by rounding only.
    np.testing.assert_allclose(
        ours, torch_rates(make_torch, lr0), rtol=1e-9, atol=1e-15
    )
    assert all(isinstance(rate, float) for rate in ours)


def test_schedules_hand_worked():
    assert [StepDecay(3, 0.1)(e, 2.0) for e in (0, 2, 3, 5, 6)] == pytest.approx(
        [2.0, 2.0, 0.2, 0.2, 0.02]
    )
    assert ExponentialDecay(0.5)(3, 8.0) == 1.0  # 8 * 0.5**3
    # Half way, the cosine term (1 + cos(pi / 2)) / 2 is 1/2: 0.1 + (1.1 - 0.1) / 2.
    assert CosineAnnealing(10, eta_min=0.1)(5, 1.1) == pytest.approx(0.6)
    assert CosineAnnealing(10)(10, 1.0) == 0.0
    assert CosineAnnealing(10)(20, 1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("schedule", [s for s, _, _ in SCHEDULES], ids=repr)
def test_schedule_config_rebuilds_it(schedule):
    config = schedule.get_config()
    rebuilt = SCHEDULE_TYPES[type(schedule).__name__](**config)
    assert rebuilt.get_config() == config
    assert [rebuilt(e, 0.1) for e in range(12)] == [schedule(e, 0.1) for e in range(12)]


BAD_SCHEDULES = [
    (lambda: StepDecay(0), r"step_size: expected a positive integer\. Received: 0"),
    (lambda: StepDecay(2.5), r"step_size: expected a positive integer\. Received: 2.5"),
    (lambda: StepDecay(2, gamma=0), r"gamma: expected a number in \(0.0, 1.0\]"),
    (lambda: StepDecay(2, gamma=1.5), r"gamma: expected .* Received: 1.5"),
    (lambda: ExponentialDecay(-0.1), r"gamma: expected .* Received: -0.1"),
    (lambda: ExponentialDecay("0.9"), r"gamma: expected .* Received: '0.9'"),
    (lambda: CosineAnnealing(0), r"T_max: expected a positive integer\. Received: 0"),
    (lambda: CosineAnnealing(10, eta_min=-1e-3), r"eta_min: expected .* -0.001"),
    (lambda: StepDecay(2)(-1, 0.1), r"epoch: expected an integer >= 0\. Received: -1"),
    (
        lambda: StepDecay(2)(1.5, 0.1),
        r"epoch: expected an integer >= 0\. Received: 1.5",
    ),
    (
        lambda: ExponentialDecay(0.9)(1, -0.1),
        r"initial_learning_rate: expected a number in \[0.0, inf\]",
    ),
]


@pytest.mark.parametrize("make, message", BAD_SCHEDULES)
def test_bad_schedule_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ------------------------------------------------------------ ReduceLROnPlateau
def scripted_losses(seed=0, epochs=60):
    """Improving, then noisy plateaus, small gains and a late improvement."""
    rng = np.random.default_rng(seed)
    trend = np.concatenate(
        [np.linspace(1.0, 0.5, 10), np.full(25, 0.5), np.linspace(0.5, 0.2, 25)]
    )[:epochs]
    noise = rng.normal(0.0, 0.01, epochs) * (rng.random(epochs) < 0.7)
    losses = trend + noise
    losses[40:44] = losses[39] * (1 - 5e-5)  # gains below the relative threshold
    return [float(v) for v in losses]


PLATEAU_SETTINGS = [
    {},
    {"patience": 2},
    {"patience": 0, "factor": 0.5},
    {"patience": 3, "cooldown": 2, "factor": 0.5},
    {"patience": 1, "min_lr": 0.02, "factor": 0.3},
    {"patience": 2, "min_delta": 0.02, "threshold_mode": "abs"},
    {"patience": 2, "min_delta": 0.0},
    {"patience": 1, "mode": "max", "cooldown": 1},
    {"patience": 2, "mode": "max", "min_delta": 0.05, "threshold_mode": "abs"},
]


def torch_plateau(settings):
    return lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
        o,
        mode=settings.get("mode", "min"),
        factor=settings.get("factor", 0.1),
        patience=settings.get("patience", 10),
        threshold=settings.get("min_delta", 1e-4),
        threshold_mode=settings.get("threshold_mode", "rel"),
        cooldown=settings.get("cooldown", 0),
        min_lr=settings.get("min_lr", 0.0),
    )


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("settings", PLATEAU_SETTINGS, ids=str)
def test_reduce_on_plateau_matches_torch(settings, seed):
    losses = scripted_losses(seed)
    param = torch.zeros(1, requires_grad=True)
    optimizer_t = torch.optim.SGD([param], lr=0.1)
    scheduler_t = torch_plateau(settings)(optimizer_t)

    reducer = ReduceLROnPlateau(**settings)
    reducer.model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.1))
    reducer.on_train_begin()
    reductions = 0
    for epoch, value in enumerate(losses):
        logs = {"loss": 1.0, "val_loss": value}
        reducer.on_epoch_end(epoch, logs)
        assert logs["learning_rate"] == optimizer_t.param_groups[0]["lr"]
        optimizer_t.step()
        scheduler_t.step(value)
        ours = reducer.model.optimizer.learning_rate
        theirs = optimizer_t.param_groups[0]["lr"]
        assert ours == pytest.approx(theirs, rel=1e-12), f"epoch {epoch}"
        reductions += ours < logs["learning_rate"]
    if settings.get("mode") != "max":
        assert reductions > 0  # the script exercises the reductions


def test_reduce_on_plateau_hand_worked():
    # patience 1: the second epoch in a row without a 1% gain cuts the rate.
    reducer = ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.01)
    reducer.model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.8))
    rates = []
    for value in [1.0, 0.995, 0.994, 0.5, 0.499, 0.498]:
        reducer.on_epoch_end(0, {"val_loss": value})
        rates.append(reducer.model.optimizer.learning_rate)
    # 1.0 best; 0.995 and 0.994 are not below 0.99: cut at the 2nd -> 0.4;
    # 0.5 is best; 0.499 and 0.498 are not below 0.495: cut -> 0.2.
    assert rates == [0.8, 0.8, 0.4, 0.4, 0.4, 0.2]


def tiny_model(optimizer, seed=0):
    model = NeuralNetwork(loss_name="cce", optimizer=optimizer, seed=seed)
    model.add(Dense(3, 5))
    model.add(Activation("tanh"))
    model.add(Dense(5, 2))
    model.add(Activation("softmax"))
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 3))
    return X, (X[:, 0] > 0).astype(int)


def test_reduce_on_plateau_in_train(data):
    # In mode 'max' a falling training loss never improves after epoch 1: with
    # patience 0 every later epoch halves the rate.
    X, labels = data
    model = tiny_model(Adam(0.01))
    reducer = ReduceLROnPlateau(monitor="loss", mode="max", patience=0, factor=0.5)
    model.train(X, labels, epochs=5, batch_size=8, verbose=0, callbacks=[reducer])
    assert model.optimizer.learning_rate == pytest.approx(0.01 * 0.5**4)


def test_reduce_on_plateau_warns_when_the_metric_is_missing(data):
    X, labels = data
    model = tiny_model(Adam(0.01))
    with pytest.warns(RuntimeWarning, match=r"'val_loss' is not available"):
        model.train(X, labels, epochs=1, verbose=0, callbacks=[ReduceLROnPlateau()])
    assert model.optimizer.learning_rate == 0.01


# --------------------------------------------------------- LearningRateScheduler
class RateRecorder(Callback):
    """Runs after the scheduler: the ``logs`` it sees and the rate in use."""

    def __init__(self):
        self.logged, self.used = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.used.append(self.model.optimizer.learning_rate)

    def on_epoch_end(self, epoch, logs=None):
        self.logged.append(logs["learning_rate"])


@pytest.mark.parametrize(
    "schedule", [StepDecay(2, 0.5), ExponentialDecay(0.8), CosineAnnealing(4)], ids=repr
)
def test_scheduler_sets_the_rate_of_every_epoch_in_train(data, schedule):
    X, labels = data
    model = tiny_model(SGD(0.2, momentum=0.9))
    recorder = RateRecorder()
    callbacks = [LearningRateScheduler(schedule), recorder]
    model.train(X, labels, epochs=6, batch_size=8, verbose=0, callbacks=callbacks)
    expected = [schedule(epoch, 0.2) for epoch in range(6)]
    assert recorder.used == expected
    assert recorder.logged == expected


def test_scheduled_training_equals_setting_the_rate_by_hand(data):
    X, labels = data
    scheduled = tiny_model(SGD(0.5, momentum=0.9))
    scheduler = LearningRateScheduler(StepDecay(2, 0.1))
    scheduled.train(X, labels, epochs=5, batch_size=8, verbose=0, callbacks=[scheduler])

    by_hand = tiny_model(SGD(0.5, momentum=0.9))
    for epoch in range(5):
        by_hand.optimizer.learning_rate = 0.5 * 0.1 ** (epoch // 2)
        by_hand.train(X, labels, epochs=1, batch_size=8, verbose=0)
    for mine, reference in zip(
        scheduled.get_weights(), by_hand.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(mine, reference)


def test_history_records_the_scheduled_rate(data):
    X, labels = data
    model = tiny_model(SGD(0.2))
    scheduler = LearningRateScheduler(CosineAnnealing(T_max=5, eta_min=0.01))
    history = model.train(X, labels, epochs=6, verbose=0, callbacks=[scheduler])
    expected = [
        0.01 + (0.2 - 0.01) * (1 + math.cos(math.pi * epoch / 5)) / 2
        for epoch in range(6)
    ]
    np.testing.assert_allclose(history["learning_rate"], expected, rtol=1e-12)


def test_scheduler_keeps_the_initial_rate_across_train_calls(data):
    X, labels = data
    model = tiny_model(SGD(0.2))
    scheduler = LearningRateScheduler(ExponentialDecay(0.5))
    model.train(X, labels, epochs=3, verbose=0, callbacks=[scheduler])
    assert model.optimizer.learning_rate == 0.05
    model.train(X, labels, epochs=2, verbose=0, callbacks=[scheduler])
    assert scheduler.initial_learning_rate == 0.2
    assert model.optimizer.learning_rate == 0.1  # epoch 1 of the new call
    given = LearningRateScheduler(ExponentialDecay(0.5), initial_learning_rate=1.0)
    model.train(X, labels, epochs=1, verbose=0, callbacks=[given])
    assert model.optimizer.learning_rate == 1.0


def test_scheduler_verbose_prints_the_rate(data, capsys):
    X, labels = data
    model = tiny_model(SGD(0.2))
    scheduler = LearningRateScheduler(StepDecay(1, 0.5), verbose=1)
    model.train(X, labels, epochs=2, verbose=0, callbacks=[scheduler])
    out = capsys.readouterr().out
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.1." in out


def test_a_plain_function_works_as_schedule(data):
    X, labels = data
    model = tiny_model(SGD(0.2))
    scheduler = LearningRateScheduler(lambda epoch, lr0: lr0 / (1 + epoch))
    model.train(X, labels, epochs=4, verbose=0, callbacks=[scheduler])
    assert model.optimizer.learning_rate == pytest.approx(0.2 / 4)


@pytest.mark.parametrize(
    "bad_rate", [float("nan"), -0.1, float("inf"), "0.1", None], ids=repr
)
def test_a_schedule_returning_a_bad_rate_raises_before_training(data, bad_rate):
    X, labels = data
    model = tiny_model(SGD(0.2))
    weights = model.get_weights()
    scheduler = LearningRateScheduler(lambda epoch, lr0: bad_rate)
    with pytest.raises(ValueError, match=r"expected the schedule to return a number"):
        model.train(X, labels, epochs=1, verbose=0, callbacks=[scheduler])
    assert model.optimizer.learning_rate == 0.2
    for before, after in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


BAD_CALLBACKS = [
    (lambda: LearningRateScheduler(0.1), r"schedule: expected a function"),
    (
        lambda: LearningRateScheduler(StepDecay(2), verbose=-1),
        r"verbose: expected an integer >= 0\. Received: -1",
    ),
    (
        lambda: LearningRateScheduler(StepDecay(2), initial_learning_rate=0),
        r"initial_learning_rate: expected a number in \(0.0, inf\]",
    ),
    (
        lambda: ReduceLROnPlateau(factor=1.0),
        r"factor: expected a number in \(0.0, 1.0\)",
    ),
    (lambda: ReduceLROnPlateau(factor=0), r"factor: expected .* Received: 0"),
    (lambda: ReduceLROnPlateau(patience=-1), r"patience: expected an integer >= 0"),
    (lambda: ReduceLROnPlateau(patience=2.5), r"patience: expected .* Received: 2.5"),
    (lambda: ReduceLROnPlateau(min_delta=-1e-4), r"min_delta: expected .* -0.0001"),
    (lambda: ReduceLROnPlateau(mode="auto"), r"mode: expected one of \['max', 'min'\]"),
    (lambda: ReduceLROnPlateau(cooldown=-1), r"cooldown: expected an integer >= 0"),
    (lambda: ReduceLROnPlateau(min_lr=-0.1), r"min_lr: expected .* Received: -0.1"),
    (
        lambda: ReduceLROnPlateau(threshold_mode="relative"),
        r"threshold_mode: expected one of \['abs', 'rel'\]\. Received: 'relative'",
    ),
    (lambda: ReduceLROnPlateau(monitor=None), r"monitor: expected a logs key"),
]


@pytest.mark.parametrize("make, message", BAD_CALLBACKS)
def test_bad_callback_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()
