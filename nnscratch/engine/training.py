"""The training loop behind ``NeuralNetwork.train``.

:func:`fit` checks everything a call asks for before any state changes, then
one :class:`TrainingRun` walks the epochs, runs the callbacks at their hooks,
reports progress, and ends cleanly on Ctrl-C (after the current batch) or on
a loss that is no longer finite.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.validation import all_values_finite, check_positive_int
from nnscratch.engine.callbacks import Callback, EarlyStopping
from nnscratch.engine.data import ArrayData, StreamData, check_last_batch, model_data
from nnscratch.engine.tracking import LayerStatsTracker
from nnscratch.utils.metrics import accuracy

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork


class TrainingDivergedError(ArithmeticError):
    """Raised inside a training step whose loss, gradients or resulting
    weights are not finite."""


class TrainingDivergedWarning(RuntimeWarning):
    """Training stopped because the loss or the weights stopped being finite;
    the model holds the weights of the last good step."""


def all_finite(arrays: list[np.ndarray]) -> bool:
    """Whether every value of ``arrays`` is finite (see ``all_values_finite``)."""
    return all(map(all_values_finite, arrays))


class ArrayCopies:
    """Copies of some arrays, to put back later, kept between calls: taking
    the same arrays again (the usual case) allocates nothing."""

    def __init__(self) -> None:
        self.sources: list[np.ndarray] = []
        self.copies: list[np.ndarray] = []

    def take(self, sources: list[np.ndarray]) -> None:
        """Remember the values of ``sources``."""
        reuse = len(sources) == len(self.sources) and all(
            map(operator.is_, sources, self.sources)
        )
        if reuse:
            for source, copy in zip(sources, self.copies, strict=True):
                np.copyto(copy, source)
        else:
            self.copies = [np.array(source, copy=True) for source in sources]
        self.sources = list(sources)

    def restore(self) -> None:
        """Put the remembered values back, into the same arrays."""
        for source, copy in zip(self.sources, self.copies, strict=True):
            np.copyto(source, copy)


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
    distributed: Any = None,
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
    distributed : DataParallel, optional
        Train on every process of an MPI job (``mpiexec -n K python
        script.py``), ``batch_size`` being the global batch; see
        :class:`nnscratch.distributed.DataParallel`.

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
    options = {
        "epochs": epochs,
        "batch_size": batch_size,
        "X_val": X_val,
        "y_val": y_val,
        "early_stopping_patience": early_stopping_patience,
        "verbose": verbose,
        "callbacks": callbacks,
        "resume_from": resume_from,
        "track": track,
    }
    if distributed is not None:
        return distributed.fit(model, _fit, X, y, options)
    return _fit(model, X, y, options)


def _fit(
    model: NeuralNetwork,
    X: Any,
    y: Any,
    options: dict[str, Any],
    distributed: Any = None,
) -> dict[str, list[float]]:
    """:func:`fit` with its ``options`` by name, on this process
    (``distributed``: its share of a job)."""
    # Every layer's arrays views into the model's flat buffers again (a
    # replaced array is re-adopted, one of another shape refused) before
    # anything runs the layers.
    model.flat_parameters()
    data = model_data(model, "X", X, "y", y)
    X_val, y_val = options["X_val"], options["y_val"]
    val_data = None
    if X_val is not None or y_val is not None:
        val_data = model_data(model, "X_val", X_val, "y_val", y_val)
    epochs = check_positive_int("epochs", options["epochs"])
    batch_size = check_positive_int("batch_size", options["batch_size"])
    verbose = check_verbose(options["verbose"])
    resume_from, track = options["resume_from"], options["track"]
    check_last_batch(model, data, batch_size)
    if distributed is not None:
        distributed.check_batches(data, batch_size)
    callbacks = _with_early_stopping(
        options["callbacks"], options["early_stopping_patience"], val_data is not None
    )
    check_callbacks(callbacks, model, val_data is not None, track)
    # Everything is checked (the file to resume from included) before the
    # model changes: a refused call leaves it as it was.
    saved = None if resume_from is None else _load_run(model, resume_from)
    first_epoch = 0 if saved is None else saved.epochs_done
    for name, source in (("X", data), ("X_val", val_data)):
        _check_reusable(name, source, epochs - first_epoch)
    _begin_run(model, callbacks, saved, epochs, verbose)
    run = TrainingRun(model, data, val_data, epochs, batch_size, verbose, callbacks)
    model.tracker = LayerStatsTracker(model) if track else None
    try:
        if distributed is not None:
            distributed.begin(model, run)
        history = run.run(first_epoch)
    finally:
        if distributed is not None:
            distributed.end(model, run)
        model.tracker = None
        # The arrays that let a diverging step be undone live as long as
        # the run (see NeuralNetwork.train_step).
        model.__dict__.pop("_buffer_copies", None)
        model.optimizer.free_work_arrays()
    return model.history if resume_from is not None else history


def check_callbacks(
    callbacks: list, model: NeuralNetwork, has_val: bool, track: bool
) -> None:
    """Refuse, before anything trains, a callback that is not one, or one
    that needs a metric the run will not log (``check_logs``)."""
    for index, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise ValueError(
                f"callbacks[{index}]: expected a Callback (e.g. EarlyStopping). "
                f"Received {type(callback).__name__}"
            )
    keys = ["loss"] + (["accuracy"] if model.reports_accuracy else [])
    keys += [f"val_{key}" for key in keys] if has_val else []
    keys += [key for callback in callbacks for key in callback.log_keys]
    for callback in callbacks:
        check = getattr(callback, "check_logs", None)
        if check is not None:
            check(keys, track)


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
    saved: NeuralNetwork | None,
    epochs: int,
    verbose: int,
) -> None:
    """Start (or resume from ``saved``) a run and its callbacks."""
    # Before a resumed run installs its optimizer: the rate this run's
    # optimizer was made with, from which a new schedule starts.
    params = {
        "epochs": epochs,
        "verbose": verbose,
        "initial_learning_rate": model.optimizer.learning_rate,
    }
    stopper_states = []
    if saved is not None:
        stopper_states = _install_run(model, saved)
    else:
        model.history, model.epochs_done = {}, 0
        model.__dict__.pop("epoch_position", None)
    model.stop_training = False
    model.callbacks = callbacks
    for callback in callbacks:
        callback.model = model
        callback.params = dict(params)
        callback.on_train_begin()
    stoppers = [c for c in callbacks if isinstance(c, EarlyStopping)]
    for stopper, state in zip(stoppers, stopper_states, strict=False):
        stopper.set_state(state)  # after on_train_begin, which resets


def _load_run(model: NeuralNetwork, path: str | os.PathLike) -> NeuralNetwork:
    """A saved run of this network, checked; ``model`` is not changed."""
    saved = type(model).load(path)
    mine, theirs = model.get_config(), saved.get_config()
    for key in ("loss_name", "layers"):
        if mine[key] != theirs[key]:
            raise ValueError(
                f"resume_from: expected a file saved from this network "
                f"({key} {str(mine[key])[:200]!r}). Received "
                f"{str(theirs[key])[:200]!r}"
            )
    if type(saved.optimizer) is not type(model.optimizer):
        raise ValueError(
            f"resume_from: expected a {type(model.optimizer).__name__} run. "
            f"Received a {type(saved.optimizer).__name__} run"
        )
    if saved.epochs_done == 0 and saved.__dict__.get("epoch_position") is None:
        raise ValueError(
            "resume_from: expected a file saved after training. Received "
            "one with no training state"
        )
    return saved


def _install_run(model: NeuralNetwork, saved: NeuralNetwork) -> list[dict]:
    """Put a loaded run into ``model``; return the early-stopping states."""
    model.set_weights(saved.get_weights())
    model.optimizer.__dict__.update(saved.optimizer.__dict__)
    model.rng.bit_generator.state = saved.rng.bit_generator.state
    model.history, model.epochs_done = saved.history, saved.epochs_done
    position = saved.__dict__.get("epoch_position")
    if position is not None:
        model.epoch_position = position
    return saved.early_stopping_states


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


class StopRequested(Exception):  # noqa: N818 (a request, not an error)
    """The first Ctrl-C: stop after the current batch (not an error)."""


class Interrupts:
    """Ctrl-C during training: the first stops after the batch; a second
    one raises ``KeyboardInterrupt``, but never inside an update.

    Inside :meth:`atomic` (an optimizer step, the clean-up) a second Ctrl-C
    is held back and raised when the block ends, so the weights are always
    those of a whole step. Outside the main thread (where signal handlers
    cannot be set) Ctrl-C keeps its default behaviour.
    """

    def __init__(self) -> None:
        self.presses = 0
        self.depth = 0
        self.pending = False

    def pressed(self) -> bool:
        """Whether Ctrl-C was pressed (stop after this batch)."""
        return self.presses > 0

    def handle(self, signum: int, frame: Any) -> None:
        self.presses += 1
        if self.presses == 1:
            return
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt("training aborted by a second Ctrl-C")

    def atomic(self) -> Interrupts:
        """A block (``with interrupts.atomic():``) a second Ctrl-C does not
        cut short; it is raised after.

        The object is its own context manager: a generator-based one would
        cost ~1 us more at every training step.
        """
        return self

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, error_type: type | None, error: Any, traceback: Any) -> None:
        self.depth -= 1
        # An error already leaving the block goes on; the held-back Ctrl-C
        # waits for the next block's end.
        if error_type is None and not self.depth and self.pending:
            self.pending = False
            raise KeyboardInterrupt(
                "training aborted by a second Ctrl-C (after a whole step)"
            )

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle SIGINT as above while the block runs."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self.handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def interrupt_after_batch() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a request to stop at the end of the batch.

    Yields a function telling whether Ctrl-C was pressed (see
    :class:`Interrupts`).
    """
    with Interrupts().installed() as interrupts:
        yield interrupts.pressed


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
        self.interrupts = Interrupts()
        self.shard: Any = None
        """This process's share of each batch (data-parallel training)."""
        self.distributed: Any = None

    def run(self, first_epoch: int) -> dict[str, list[float]]:
        """Train epochs ``first_epoch .. epochs - 1``; return their history."""
        model = self.model
        history: dict[str, list[float]] = {}
        with self.interrupts.installed():
            try:
                for epoch in range(first_epoch, self.epochs):
                    logs = self.run_epoch(epoch, self.stop_requested)
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
            except (StopRequested, KeyboardInterrupt):
                # A second Ctrl-C (through the handler) aborts: raised, after
                # a whole step. A first one, or a KeyboardInterrupt raised by
                # other code between steps, stops after the batch.
                if self.interrupts.presses >= 2:
                    raise
                self.say("Training interrupted: returning the history so far.")
            except TrainingDivergedError as error:
                warnings.warn(str(error), TrainingDivergedWarning, stacklevel=4)
            # A second Ctrl-C during the clean-up (best weights put back) is
            # raised once it is done, never swallowed.
            with self.interrupts.atomic():
                for callback in self.callbacks:
                    callback.on_train_end()
        return history

    def stop_requested(self) -> bool:
        """Whether Ctrl-C asks to stop after this batch: here, or in
        data-parallel training on any process (known to all at the same step)."""
        if self.distributed is not None:
            return self.distributed.stop_requested
        return self.interrupts.pressed()

    def record(self, history: dict, logs: dict[str, float]) -> None:
        """Append an epoch's ``logs`` to this call's and the model's history."""
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
            self.model.history.setdefault(key, []).append(value)

    def run_epoch(self, epoch: int, interrupted: Callable[[], bool]) -> dict:
        """One pass over the shuffled training data, then validation.

        An epoch cut short by Ctrl-C leaves ``model.epoch_position`` (where
        it stopped); a run resumed from a file saved then finishes that
        epoch exactly: the same shuffled order, the batches not yet done.
        """
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch)
        model = self.model
        progress = self.progress_bar(epoch)
        position = model.__dict__.pop("epoch_position", None)
        if position is not None and position["epoch"] != epoch:
            position = None
        totals = {"samples": 0, "loss": 0.0, "correct": 0.0}
        start_batch, rng_at_start = 0, model.rng.bit_generator.state
        if position is not None:
            totals = dict(position["totals"])
            start_batch, rng_at_start = position["batches_done"], position["rng"]
        batches = self.resumed_batches(position)
        batch = start_batch - 1
        try:
            for batch, (x_batch, y_batch) in enumerate(batches, start=start_batch):
                loss, output = self.step(x_batch, y_batch, epoch, batch)
                self.accumulate(totals, loss, output, y_batch)
                logs = {"loss": loss}
                for callback in self.callbacks:
                    callback.on_batch_end(batch, logs)
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(self.epoch_logs(totals), refresh=False)
                if interrupted():
                    raise StopRequested
        except (StopRequested, KeyboardInterrupt):
            if batch >= start_batch:
                model.epoch_position = {
                    "epoch": epoch,
                    "batches_done": batch + 1,
                    "rng": rng_at_start,
                    "totals": totals,
                }
            raise
        logs = self.epoch_logs(totals)
        if self.val_data is not None:
            if self.distributed is not None:
                scores = self.distributed.score(self.model, self.val_data)
            else:
                scores = self.model.score(self.val_data)
            logs.update({f"val_{key}": value for key, value in scores.items()})
        if any("learning_rate" in c.log_keys for c in self.callbacks):
            # The rate this epoch used, in the logs before any callback runs,
            # so that a checkpoint saved by one of them holds it whatever
            # the callbacks' order.
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
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
        shard = self.shard
        if shard is not None and shard.total < shard.processes:
            # A streamed batch, known only now (arrays are checked up front);
            # every process sees its size, so all of them stop here together.
            raise ValueError(
                f"X: expected batches of at least {shard.processes} samples in "
                f"data-parallel training, one per process. Received a batch of "
                f"{shard.total} (epoch {epoch + 1}, batch {batch + 1})"
            )
        # Overflow in a diverging network is reported by TrainingDivergedError.
        tracker = self.model.tracker
        with self.interrupts.atomic(), np.errstate(over="ignore", invalid="ignore"):
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

    def resumed_batches(self, position: dict | None) -> Iterator:
        """This epoch's batches, from where ``position`` says it stopped.

        The shuffled order is drawn from the generator's state at the
        epoch's start, then the generator continues from where it was
        (dropout masks) and the batches already done are skipped.
        """
        rng, shard = self.model.rng, self.shard
        if position is None:
            return self.data.batches(self.batch_size, rng, shard=shard)
        now = rng.bit_generator.state
        rng.bit_generator.state = position["rng"]
        skip = position["batches_done"]
        if isinstance(self.data, ArrayData):
            batches = self.data.batches(self.batch_size, rng, skip=skip, shard=shard)
            first = next(batches, None)  # draws the order
            rng.bit_generator.state = now
            return itertools.chain([] if first is None else [first], batches)
        rng.bit_generator.state = now
        batches = self.data.batches(self.batch_size, rng, shard=shard)
        return itertools.islice(batches, skip, None)

    def accumulate(self, totals: dict, loss: float, output: np.ndarray, y: Any) -> None:
        """Add a batch to the running, sample-weighted epoch means.

        In data-parallel training ``loss`` is already the global batch's,
        and the global batch's accuracy came with it.
        """
        if self.distributed is not None:
            n = self.shard.total
            totals["correct"] += self.distributed.batch_accuracy * n
        else:
            n = len(output)
            if self.model.reports_accuracy:
                totals["correct"] += accuracy(y, output) * n
        totals["samples"] += n
        totals["loss"] += loss * n

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
