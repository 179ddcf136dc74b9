"""LearningRateScheduler: set the learning rate from a schedule, epoch by epoch."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range
from nnscratch.engine.callbacks.base import Callback, check_non_negative_int


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
        self.verbose = check_non_negative_int("verbose", verbose)
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

    log_keys = ("learning_rate",)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.initial_learning_rate is None:
            # The rate the run's optimizer was made with: on resume, the
            # optimizer then holds an already scheduled rate.
            params = getattr(self, "params", {})
            self.initial_learning_rate = params.get(
                "initial_learning_rate", self.model.optimizer.learning_rate
            )

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
