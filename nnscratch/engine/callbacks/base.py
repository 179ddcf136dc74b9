"""What every callback shares: the hooks, and watching a metric.

:class:`MonitorCallback` holds the one decision that early stopping,
checkpoints and learning-rate plateaus share: which ``logs`` key to watch,
whether lower or higher is better, by what margin, and whether a value is an
improvement (a check that changes no state).
"""

from __future__ import annotations

import numbers
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.validation import check_choice, check_float_in_range

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
    params: dict[str, Any]
    """Set before ``on_train_begin``, as in Keras: ``epochs``, ``verbose``
    and ``initial_learning_rate`` (the optimizer's rate before a resumed
    run installed its own)."""
    log_keys: tuple[str, ...] = ()
    """The ``logs`` keys this callback adds at the end of an epoch."""
    writes_files: bool = False
    """Whether it writes files (checkpoints, logs): in data-parallel
    training such a callback runs on process 0 only."""

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


class MonitorCallback(Callback):
    """A callback that watches one metric and remembers its best value.

    Parameters
    ----------
    monitor : str
        The ``logs`` key to watch, e.g. ``'val_loss'``.
    mode : {'auto', 'min', 'max'}
        Whether lower or higher is better; ``'auto'`` picks ``'max'`` for
        accuracies and ``'min'`` otherwise.
    min_delta : float >= 0
        The margin an improvement must beat the best value by.
    threshold_mode : {'abs', 'rel'}, default 'abs'
        ``'abs'``: ``value < best - min_delta`` (mode min); ``'rel'``:
        ``value < best * (1 - min_delta)``, as torch's schedulers.

    Examples
    --------
    >>> watcher = MonitorCallback("val_loss", "auto", 0.1)
    >>> watcher.is_improvement(0.5)       # anything beats the start (inf)
    True
    >>> watcher.best = 0.5
    >>> watcher.is_improvement(0.45), watcher.is_improvement(0.3)
    (False, True)
    """

    def __init__(
        self, monitor: str, mode: str, min_delta: float, threshold_mode: str = "abs"
    ) -> None:
        if not isinstance(monitor, str):
            raise ValueError(f"monitor: expected a logs key. Received: {monitor!r}")
        self.monitor = monitor
        mode = check_choice("mode", mode, {"auto", "min", "max"})
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.mode = mode
        self.min_delta = check_float_in_range("min_delta", min_delta, 0.0, np.inf)
        self.threshold_mode = check_choice(
            "threshold_mode", threshold_mode, {"rel", "abs"}
        )
        self.reset_best()

    def reset_best(self) -> None:
        """Forget the best value: the next one is an improvement."""
        self.best = np.inf if self.mode == "min" else -np.inf

    def is_improvement(self, value: float) -> bool:
        """Whether ``value`` beats ``self.best`` by the margin; changes nothing."""
        if self.threshold_mode == "rel":
            factor = (
                1.0 - self.min_delta if self.mode == "min" else 1.0 + self.min_delta
            )
            target = self.best * factor
        else:
            target = (
                self.best - self.min_delta
                if self.mode == "min"
                else (self.best + self.min_delta)
            )
        return value < target if self.mode == "min" else value > target

    def monitored(self, logs: dict[str, Any] | None) -> float | None:
        """The watched value in ``logs``, or None with a warning."""
        return monitored_value(type(self).__name__, self.monitor, logs)


def check_non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 0, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}: expected an integer >= 0. Received: {value!r}")
    return int(value)
