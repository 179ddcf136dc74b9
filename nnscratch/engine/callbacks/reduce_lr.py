"""ReduceLROnPlateau: lower the learning rate when a metric stops improving."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range
from nnscratch.engine.callbacks.base import MonitorCallback, check_non_negative_int


class ReduceLROnPlateau(MonitorCallback):
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
        if mode not in ("min", "max"):
            raise ValueError(
                f"mode: expected one of ['max', 'min']. Received: {mode!r}"
            )
        super().__init__(monitor, mode, min_delta, threshold_mode)
        self.factor = check_float_in_range(
            "factor", factor, 0.0, 1.0, low_inclusive=False, high_inclusive=False
        )
        self.patience = check_non_negative_int("patience", patience)
        self.cooldown = check_non_negative_int("cooldown", cooldown)
        self.min_lr = check_float_in_range("min_lr", min_lr, 0.0, np.inf)
        self.on_train_begin()

    log_keys = ("learning_rate",)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.reset_best()
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        optimizer = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = optimizer.learning_rate
        value = self.monitored(logs)
        if value is None:
            return
        value = float(value)
        if self.is_improvement(value):
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
