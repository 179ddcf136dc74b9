"""Callbacks: code that runs at fixed points of ``NeuralNetwork.train``."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.validation import (
    check_choice,
    check_float_in_range,
    check_positive_int,
)

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork


def monitored_value(
    callback: str, monitor: str, logs: dict[str, Any] | None
) -> float | None:
    """``logs[monitor]``, or None with a warning naming what is available."""
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(
            f"{callback}: the monitored metric {monitor!r} is not available; "
            f"available: {sorted(logs or {})}",
            RuntimeWarning,
            stacklevel=3,
        )
    return value


class Callback:
    """Base class: override the hooks you need; each does nothing by default.

    ``self.model`` is the model being trained, set before ``on_train_begin``.
    ``logs`` is a dict of this epoch's metrics (``loss``, ``val_loss``, ...).
    """

    model: NeuralNetwork

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called once before the first epoch of every ``train`` call."""

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called once after the last epoch (also after a stop)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before epoch ``epoch`` (counted from 0)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after epoch ``epoch`` with its metrics in ``logs``."""

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each optimizer step with the batch's ``loss``."""


class EarlyStopping(Callback):
    """Stop training when a monitored metric stops improving, as Keras does.

    Parameters
    ----------
    monitor : str, default 'val_loss'
        The ``logs`` key to watch.
    patience : int, default 1
        Epochs without improvement after which training stops.
    min_delta : float, default 0.0
        An improvement must beat the best value by more than this.
    mode : {'auto', 'min', 'max'}, default 'auto'
        Whether lower or higher is better; ``'auto'`` picks ``'max'`` for
        accuracies and ``'min'`` otherwise.
    restore_best_weights : bool, default False
        At the end of training, put back the weights of the best epoch
        (whether or not training stopped early).

    Examples
    --------
    >>> stopper = EarlyStopping(patience=2)
    >>> stopper.improved(0.5), stopper.improved(0.5), stopper.improved(0.4)
    (True, False, True)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 1,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        self.monitor = monitor
        self.patience = check_positive_int("patience", patience)
        self.min_delta = check_float_in_range("min_delta", min_delta, 0.0, np.inf)
        mode = check_choice("mode", mode, {"auto", "min", "max"})
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self.on_train_begin()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = 0
        self.best = np.inf if self.mode == "min" else -np.inf
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = monitored_value("EarlyStopping", self.monitor, logs)
        if value is None:
            return
        if self.improved(value):
            self.wait = 0
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def get_state(self) -> dict[str, Any]:
        """The counters and best weights that a resumed run needs."""
        return {
            "wait": self.wait,
            "best": float(self.best),
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`get_state` of an earlier, interrupted run."""
        self.wait = state["wait"]
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.best_weights = state["best_weights"]


def _check_non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 0, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}: expected an integer >= 0. Received: {value!r}")
    return int(value)


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of every epoch.

    Before epoch ``epoch`` (counted from 0) it sets
    ``model.optimizer.learning_rate = schedule(epoch, initial_learning_rate)``,
    and after the epoch it records the rate used in ``logs['learning_rate']``.

    Parameters
    ----------
    schedule : callable ``(epoch, initial_learning_rate) -> float``
        A schedule from ``nnscratch.optimizers.schedules`` (``StepDecay``,
        ``ExponentialDecay``, ``CosineAnnealing``) or any such function.
        Unlike Keras's callback, whose function receives the *current* rate,
        it receives the rate the run started with (torch's ``base_lr``), so
        that a schedule is a formula of the epoch alone, as in torch's
        schedulers: e.g. ``lambda epoch, lr0: lr0 * 0.9 ** epoch``.
    verbose : int, default 0
        0 is silent; 1 prints the rate set at each epoch.
    initial_learning_rate : float, optional
        The rate passed to ``schedule``. By default the optimizer's rate when
        this callback first starts training; give it when resuming a saved
        run with a new callback, whose optimizer holds an already scheduled
        rate.

    Examples
    --------
    >>> import numpy as np
    >>> from nnscratch import NeuralNetwork, Dense, SGD
    >>> from nnscratch.optimizers.schedules import StepDecay
    >>> model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.1), seed=0)
    >>> model.add(Dense(2, 1))
    >>> X, y = np.ones((4, 2)), np.zeros((4, 1))
    >>> scheduler = LearningRateScheduler(StepDecay(step_size=2, gamma=0.5))
    >>> _ = model.train(X, y, epochs=5, verbose=0, callbacks=[scheduler])
    >>> model.optimizer.learning_rate      # epoch 4 ran at 0.1 * 0.5 ** (4 // 2)
    0.025
    """

    def __init__(
        self,
        schedule: Callable[[int, float], float],
        verbose: int = 0,
        initial_learning_rate: float | None = None,
    ) -> None:
        if not callable(schedule):
            raise ValueError(
                "schedule: expected a function of (epoch, initial_learning_rate), "
                f"e.g. StepDecay(10, 0.5). Received: {schedule!r}"
            )
        self.schedule = schedule
        self.verbose = _check_non_negative_int("verbose", verbose)
        self.initial_learning_rate = (
            None
            if initial_learning_rate is None
            else check_float_in_range(
                "initial_learning_rate",
                initial_learning_rate,
                0.0,
                np.inf,
                low_inclusive=False,
            )
        )

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.initial_learning_rate is None:
            self.initial_learning_rate = self.model.optimizer.learning_rate

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        rate = self.schedule(epoch, self.initial_learning_rate)
        is_real = isinstance(rate, numbers.Real) and not isinstance(rate, bool)
        if not (is_real and np.isfinite(rate) and rate >= 0):
            raise ValueError(
                f"LearningRateScheduler: expected the schedule to return a number "
                f">= 0 for epoch {epoch}. Received: {rate!r}"
            )
        self.model.optimizer.learning_rate = float(rate)
        if self.verbose:
            print(
                f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate "
                f"to {float(rate)}."
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class ReduceLROnPlateau(Callback):
    """Reduce the learning rate when a metric has stopped improving.

    The rule of ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (stepped with
    the monitored value after every epoch), with Keras's names: ``min_delta``
    is torch's ``threshold`` and, by default, relative as in torch
    (``threshold_mode='rel'``), not absolute as Keras's ``min_delta``.

    Parameters
    ----------
    monitor : str, default 'val_loss'
        The ``logs`` key to watch.
    factor : float in (0, 1), default 0.1
        ``new rate = rate * factor``.
    patience : int >= 0, default 10
        Epochs without improvement tolerated; the rate drops on the next one.
    min_delta : float >= 0, default 1e-4
        The margin an improvement must beat (torch's ``threshold``).
    mode : {'min', 'max'}, default 'min'
        Whether lower or higher values are better.
    cooldown : int >= 0, default 0
        Epochs after a reduction during which bad epochs are not counted.
    min_lr : float >= 0, default 0.0
        The rate never goes below this.
    threshold_mode : {'rel', 'abs'}, default 'rel'
        How ``min_delta`` compares with the best value (see Notes).

    Notes
    -----
    After each epoch, with the monitored ``value`` (mode 'min'):

    - improved if ``value < best * (1 - min_delta)`` ('rel') or
      ``value < best - min_delta`` ('abs'); mode 'max': ``value > best *
      (1 + min_delta)`` or ``value > best + min_delta``
    - improved: ``best <- value``, ``wait <- 0``; otherwise ``wait <- wait + 1``
    - in cooldown: ``cooldown_counter <- cooldown_counter - 1``, ``wait <- 0``
    - if ``wait > patience``: ``rate <- max(rate * factor, min_lr)`` (skipped
      when that changes it by no more than 1e-8, torch's ``eps``), then
      ``cooldown_counter <- cooldown`` and ``wait <- 0``

    The counters and ``best`` start afresh at every ``train`` call, as in
    Keras. ``logs['learning_rate']`` records the rate the epoch ran with.

    Examples
    --------
    >>> from nnscratch import NeuralNetwork, SGD
    >>> reducer = ReduceLROnPlateau(factor=0.5, patience=1)
    >>> reducer.model = NeuralNetwork(loss_name="mse", optimizer=SGD(1.0))
    >>> reducer.on_train_begin()
    >>> for val_loss in [1.0, 0.5, 0.6, 0.7, 0.4]:  # two bad epochs after 0.5
    ...     reducer.on_epoch_end(0, {"val_loss": val_loss})
    >>> reducer.model.optimizer.learning_rate
    0.5
    """

    MIN_CHANGE = 1e-8
    """A reduction smaller than this is skipped (torch's ``eps``)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        mode: str = "min",
        cooldown: int = 0,
        min_lr: float = 0.0,
        threshold_mode: str = "rel",
    ) -> None:
        if not isinstance(monitor, str):
            raise ValueError(f"monitor: expected a logs key. Received: {monitor!r}")
        self.monitor = monitor
        self.factor = check_float_in_range(
            "factor", factor, 0.0, 1.0, low_inclusive=False, high_inclusive=False
        )
        self.patience = _check_non_negative_int("patience", patience)
        self.min_delta = check_float_in_range("min_delta", min_delta, 0.0, np.inf)
        self.mode = check_choice("mode", mode, {"min", "max"})
        self.cooldown = _check_non_negative_int("cooldown", cooldown)
        self.min_lr = check_float_in_range("min_lr", min_lr, 0.0, np.inf)
        self.threshold_mode = check_choice(
            "threshold_mode", threshold_mode, {"rel", "abs"}
        )
        self.on_train_begin()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.best = np.inf if self.mode == "min" else -np.inf
        self.wait = 0
        self.cooldown_counter = 0

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats ``self.best`` by the ``min_delta`` margin."""
        if self.mode == "min" and self.threshold_mode == "rel":
            return value < self.best * (1.0 - self.min_delta)
        if self.mode == "min":
            return value < self.best - self.min_delta
        if self.threshold_mode == "rel":
            return value > self.best * (1.0 + self.min_delta)
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        optimizer = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = optimizer.learning_rate
        value = monitored_value("ReduceLROnPlateau", self.monitor, logs)
        if value is None:
            return
        value = float(value)
        if self.improved(value):
            self.best = value
            self.wait = 0
        else:
            self.wait += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0  # bad epochs in cooldown do not count
        if self.wait > self.patience:
            old_rate = optimizer.learning_rate
            new_rate = max(old_rate * self.factor, self.min_lr)
            if old_rate - new_rate > self.MIN_CHANGE:
                optimizer.learning_rate = new_rate
            self.cooldown_counter = self.cooldown
            self.wait = 0
