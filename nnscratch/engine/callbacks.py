"""Callbacks: code that runs at fixed points of ``NeuralNetwork.train``."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.validation import (
    check_choice,
    check_float_in_range,
    check_positive_int,
)

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork


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
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"EarlyStopping: the monitored metric {self.monitor!r} is not "
                f"available; available: {sorted(logs or {})}",
                RuntimeWarning,
                stacklevel=2,
            )
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
