"""EarlyStopping: stop when a watched metric stops improving."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.validation import check_positive_int
from nnscratch.engine.callbacks.base import MonitorCallback


class EarlyStopping(MonitorCallback):
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
    >>> from nnscratch import NeuralNetwork
    >>> stopper = EarlyStopping(patience=2)
    >>> stopper.model = NeuralNetwork(loss_name="mse")
    >>> for epoch, val_loss in enumerate([0.5, 0.5, 0.4, 0.6, 0.7]):
    ...     stopper.on_epoch_end(epoch, {"val_loss": val_loss})
    >>> stopper.best, stopper.best_epoch, stopper.stopped_epoch
    (0.4, 2, 4)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 1,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = check_positive_int("patience", patience)
        self.restore_best_weights = restore_best_weights
        self.on_train_begin()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = 0
        self.reset_best()
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = self.monitored(logs)
        if value is None:
            return
        if self.is_improvement(value):
            self.best = value
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
