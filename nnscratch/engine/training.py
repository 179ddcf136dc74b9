"""The training loop behind ``NeuralNetwork.train``.

:func:`fit` checks everything a call asks for before any state changes, then
one :class:`TrainingRun` walks the epochs, runs the callbacks at their hooks,
reports progress, and ends cleanly on Ctrl-C (after the current batch) or on
a loss that is no longer finite.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.validation import check_positive_int
from nnscratch.engine.callbacks import Callback, EarlyStopping
from nnscratch.engine.data import ArrayData, StreamData, check_last_batch, model_data
from nnscratch.engine.tracking import LayerStatsTracker
from nnscratch.utils.metrics import accuracy

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork


class TrainingDivergedError(ArithmeticError):
    """Raised inside a training step whose loss or gradients are not finite."""


def fit(
    model: NeuralNetwork,
    X: Any,
    y: Any = None,
    epochs: int = 100,
    batch_size: int = 32,
    X_val: Any = None,
    y_val: Any = None,
    early_stopping_patience: int | None = None,
    verbose: int | bool = 1,
    callbacks: list[Callback] | None = None,
    resume_from: str | os.PathLike | None = None,
    track: bool = False,
) -> dict[str, list[float]]:
    """Train ``model`` on shuffled mini-batches; return the per-epoch history.

    Parameters
    ----------
    model : NeuralNetwork
    X : ndarray of shape (N, ...), or an iterable of batches
        Inputs, the batch on the first axis. A memory-mapped array is read
        one batch at a time. Instead of arrays, ``X`` may be an iterable of
        ``(x_batch, y_batch)`` pairs (iterated anew every epoch) or a
        function returning one; then ``y`` is None.
    y : ndarray
        Targets in a form the loss takes (see ``nnscratch.losses``).
    epochs : int, default 100
        Epochs in total; a run resumed from a file trains the rest.
    batch_size : int, default 32
        The last batch of an epoch may be smaller.
    X_val, y_val : ndarray or iterable of batches, optional
        Validation data, scored after every epoch (``val_loss``, ...).
    early_stopping_patience : int, optional
        Stop after this many epochs without a strictly lower ``val_loss``
        and end with the best weights (needs validation data).
    verbose : {0, 1, 2} or bool, default 1
        0 (False) trains silently, 1 (True) shows a progress bar per epoch,
        2 prints one line per epoch.
    callbacks : list of Callback, optional
        Hooks run during training, e.g. ``EarlyStopping``.
    resume_from : path-like, optional
        A file written by ``save`` during an earlier run of this same
        network: its weights, optimizer state, random state, history and
        early-stopping state are loaded, and training continues up to
        ``epochs`` in total, exactly as if it had never stopped.
    track : bool, default False
        Also record, per layer and epoch, the mean and standard deviation
        of its outputs, the norm of its weight gradients and the
        update-to-weight ratio (see ``nnscratch.engine.tracking``).

    Returns
    -------
    dict of str to list of float
        ``loss`` (including penalties) and, unless the loss is ``'mse'``,
        ``accuracy``; with validation data ``val_loss`` and
        ``val_accuracy``. One entry per epoch of this call, or of the whole
        run when resuming.

    Notes
    -----
    Ctrl-C stops training after the current batch and returns the history
    so far (with early stopping, the best weights are restored).
    """
    data = model_data(model, "X", X, "y", y)
    val_data = None
    if X_val is not None or y_val is not None:
        val_data = model_data(model, "X_val", X_val, "y_val", y_val)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    verbose = check_verbose(verbose)
    check_last_batch(model, data, batch_size)
    callbacks = _with_early_stopping(
        callbacks, early_stopping_patience, val_data is not None
    )
    first_epoch = _begin_run(model, callbacks, resume_from)
    for name, source in (("X", data), ("X_val", val_data)):
        _check_reusable(name, source, epochs - first_epoch)
    run = TrainingRun(model, data, val_data, epochs, batch_size, verbose, callbacks)
    model.tracker = LayerStatsTracker(model) if track else None
    try:
        history = run.run(first_epoch)
    finally:
        model.tracker = None
    return model.history if resume_from is not None else history


def check_verbose(verbose: Any) -> int:
    """0, 1 or 2; ``False``/``True`` mean 0/1, as in Keras."""
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 0, 1 or 2. Received: {verbose!r}")
    return verbose


def _begin_run(
    model: NeuralNetwork,
    callbacks: list[Callback],
    resume_from: str | os.PathLike | None,
) -> int:
    """Start (or resume) a run and its callbacks; return the first epoch."""
    first_epoch, stopper_states = 0, []
    if resume_from is not None:
        first_epoch, stopper_states = _resume(model, resume_from)
    else:
        model.history, model.epochs_done = {}, 0
    model.stop_training = False
    model.callbacks = callbacks
    for callback in callbacks:
        callback.model = model
        callback.on_train_begin()
    stoppers = [c for c in callbacks if isinstance(c, EarlyStopping)]
    for stopper, state in zip(stoppers, stopper_states, strict=False):
        stopper.set_state(state)  # after on_train_begin, which resets
    return first_epoch


def _resume(model: NeuralNetwork, path: str | os.PathLike) -> tuple[int, list[dict]]:
    """Load a saved run into ``model``; return (epochs done, stopper states)."""
    saved = type(model).load(path)
    mine, theirs = model.get_config(), saved.get_config()
    for key in ("loss_name", "layers"):
        if mine[key] != theirs[key]:
            raise ValueError(
                f"resume_from: expected a file saved from this network "
                f"({key} {mine[key]!r}). Received {theirs[key]!r}"
            )
    if type(saved.optimizer) is not type(model.optimizer):
        raise ValueError(
            f"resume_from: expected a {type(model.optimizer).__name__} run. "
            f"Received a {type(saved.optimizer).__name__} run"
        )
    if saved.epochs_done == 0:
        raise ValueError(
            "resume_from: expected a file saved after training. Received "
            "one with no training state"
        )
    model.set_weights(saved.get_weights())
    model.optimizer.__dict__.update(saved.optimizer.__dict__)
    model.rng.bit_generator.state = saved.rng.bit_generator.state
    model.history, model.epochs_done = saved.history, saved.epochs_done
    return saved.epochs_done, saved.early_stopping_states


def _check_reusable(name: str, data: Any, epochs: int) -> None:
    """A generator object can be read once: refuse it for several epochs."""
    if not isinstance(data, StreamData) or epochs <= 1 or callable(data.source):
        return
    if iter(data.source) is data.source:
        raise ValueError(
            f"{name}: expected an iterable that can be read once per epoch for "
            f"{epochs} epochs. Received a one-pass {type(data.source).__name__}; "
            "pass a function that returns a new generator, or a list"
        )


def _with_early_stopping(
    callbacks: list[Callback] | None, patience: int | None, has_val: bool
) -> list[Callback]:
    """The callbacks, with ``early_stopping_patience``'s EarlyStopping first."""
    callbacks = list(callbacks or [])
    if patience is None:
        return callbacks
    if not has_val:
        raise ValueError(
            "early_stopping_patience: expected validation data (X_val, y_val) "
            "to watch val_loss. Received none"
        )
    # First, so that callbacks after it (a checkpoint) see its updated state.
    stopper = EarlyStopping(patience=patience, restore_best_weights=True)
    return [stopper, *callbacks]


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
