"""The epoch loop behind ``NeuralNetwork.train``.

One :class:`TrainingRun` is one call of ``train``: it walks the epochs, runs
the callbacks at their hooks, reports progress, and ends cleanly on Ctrl-C
(after the current batch) or on a loss that is no longer finite.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.engine.batches import ArrayData
from nnscratch.engine.callbacks import Callback
from nnscratch.utils.metrics import accuracy

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork


class TrainingDivergedError(ArithmeticError):
    """Raised inside a training step whose loss or gradients are not finite."""


@contextlib.contextmanager
def interrupt_after_batch() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a request to stop at the end of the batch.

    Yields a function telling whether Ctrl-C was pressed. Stopping between
    batches never leaves an optimizer step half applied. A second Ctrl-C
    interrupts at once, as usual. Outside the main thread (where signal
    handlers cannot be set) Ctrl-C keeps its default behaviour.
    """
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed.is_set
        return

    def request_stop(signum: int, frame: Any) -> None:
        pressed.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield pressed.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


class TrainingRun:
    """The loop of one ``train`` call.

    Parameters
    ----------
    model : NeuralNetwork
    data, val_data : ArrayData or StreamData
        Training batches, and optional validation data scored after each epoch.
    epochs : int
        Total epochs of the run (a resumed run starts at ``model.epochs_done``).
    batch_size : int
    verbose : int
        0 silent, 1 a progress bar per epoch, 2 one line per epoch.
    callbacks : list of Callback
    """

    def __init__(
        self,
        model: NeuralNetwork,
        data: Any,
        val_data: Any,
        epochs: int,
        batch_size: int,
        verbose: int,
        callbacks: list[Callback],
    ) -> None:
        self.model = model
        self.data = data
        self.val_data = val_data
        self.epochs = epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self.callbacks = callbacks

    def run(self, first_epoch: int) -> dict[str, list[float]]:
        """Train epochs ``first_epoch .. epochs - 1``; return their history."""
        model = self.model
        history: dict[str, list[float]] = {}
        try:
            with interrupt_after_batch() as interrupted:
                for epoch in range(first_epoch, self.epochs):
                    logs = self.run_epoch(epoch, interrupted)
                    # Recorded before the callbacks run, so that a checkpoint
                    # saved by one of them includes this epoch ...
                    self.record(history, logs)
                    model.epochs_done = epoch + 1
                    recorded = set(logs)
                    for callback in self.callbacks:
                        callback.on_epoch_end(epoch, logs)
                    # ... and once more for what they add (a learning rate).
                    self.record(
                        history, {k: logs[k] for k in logs if k not in recorded}
                    )
                    if model.stop_training:
                        break
        except KeyboardInterrupt:
            self.say("Training interrupted: returning the history so far.")
        except TrainingDivergedError as error:
            warnings.warn(str(error), RuntimeWarning, stacklevel=4)
        for callback in self.callbacks:
            callback.on_train_end()
        return history

    def record(self, history: dict, logs: dict[str, float]) -> None:
        """Append an epoch's ``logs`` to this call's and the model's history."""
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
            self.model.history.setdefault(key, []).append(value)

    def run_epoch(self, epoch: int, interrupted: Callable[[], bool]) -> dict:
        """One pass over the shuffled training data, then validation."""
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch)
        progress = self.progress_bar(epoch)
        totals = {"samples": 0, "loss": 0.0, "correct": 0.0}
        batches = self.data.batches(self.batch_size, self.model.rng)
        for batch, (x_batch, y_batch) in enumerate(batches):
            loss, output = self.step(x_batch, y_batch, epoch, batch)
            self.accumulate(totals, loss, output, y_batch)
            logs = {"loss": loss}
            for callback in self.callbacks:
                callback.on_batch_end(batch, logs)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(self.epoch_logs(totals), refresh=False)
            if interrupted():
                raise KeyboardInterrupt
        logs = self.epoch_logs(totals)
        if self.val_data is not None:
            scores = self.model.score(self.val_data)
            logs.update({f"val_{key}": value for key, value in scores.items()})
        progress_logs = dict(logs)
        if self.model.tracker is not None:
            logs.update(self.model.tracker.epoch_stats())
        if progress is not None:
            progress.set_postfix(progress_logs, refresh=True)
            progress.close()
        elif self.verbose == 2:
            metrics = " - ".join(
                f"{key}: {value:.4f}" for key, value in progress_logs.items()
            )
            self.say(f"Epoch {epoch + 1}/{self.epochs} - {metrics}")
        return logs

    def step(self, x_batch: np.ndarray, y_batch: np.ndarray, epoch: int, batch: int):
        """One optimizer step; a non-finite loss names where it happened."""
        # Overflow in a diverging network is reported by TrainingDivergedError.
        tracker = self.model.tracker
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                if tracker is None:
                    return self.model.train_step(x_batch, y_batch)
                tracker.before_step()
                result = self.model.train_step(x_batch, y_batch)
                tracker.after_step()
                return result
            except TrainingDivergedError as error:
                raise TrainingDivergedError(
                    f"Training stopped at epoch {epoch + 1}, batch {batch + 1}: "
                    f"{error}. The weights of the last good step are kept."
                ) from None

    def accumulate(self, totals: dict, loss: float, output: np.ndarray, y: Any) -> None:
        """Add a batch to the running, sample-weighted epoch means."""
        n = len(output)
        totals["samples"] += n
        totals["loss"] += loss * n
        if self.model.reports_accuracy:
            totals["correct"] += accuracy(y, output) * n

    def epoch_logs(self, totals: dict) -> dict[str, float]:
        samples = max(totals["samples"], 1)
        logs = {"loss": totals["loss"] / samples}
        if self.model.reports_accuracy:
            logs["accuracy"] = totals["correct"] / samples
        return logs

    def progress_bar(self, epoch: int) -> Any:
        """A tqdm bar over this epoch's batches when ``verbose == 1``."""
        if self.verbose != 1:
            return None
        from tqdm import tqdm

        total = None
        if isinstance(self.data, ArrayData):
            total = -(-self.data.n_samples // self.batch_size)
        return tqdm(
            total=total,
            desc=f"Epoch {epoch + 1}/{self.epochs}",
            unit="batch",
            file=sys.stdout,
            leave=True,
            dynamic_ncols=True,
        )

    def say(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stdout)
