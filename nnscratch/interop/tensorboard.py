"""TensorBoard: a callback writing training curves and histograms, as Keras's.

The event files are written by tensorboardX (extra ``[tensorboard]``), in
Keras's layout, so that ``tensorboard --logdir LOG_DIR`` shows training and
validation curves on the same charts:

- ``LOG_DIR/train``: ``epoch_loss``, ``epoch_accuracy``, ``epoch_learning_rate``
  and every other ``logs`` entry as ``epoch_<name>``; ``batch_loss`` with
  ``update_freq``; weight and gradient histograms with ``histogram_freq``.
- ``LOG_DIR/validation``: each ``val_<name>`` entry as ``epoch_<name>``.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from nnscratch import NeuralNetwork, Dense, SGD
>>> model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.1), seed=0)
>>> model.add(Dense(2, 1))
>>> X, y = np.ones((8, 2)), np.zeros((8, 1))
>>> log_dir = tempfile.mkdtemp()
>>> _ = model.train(X, y, epochs=2, verbose=0, X_val=X, y_val=y,
...                 callbacks=[TensorBoard(log_dir, histogram_freq=1)])
>>> from tensorboard.backend.event_processing.event_accumulator import (
...     EventAccumulator)
>>> events = EventAccumulator(f"{log_dir}/train").Reload()
>>> [event.step for event in events.Scalars("epoch_loss")]
[0, 1]
>>> sorted(events.Tags()["histograms"])
['0_Dense/W', '0_Dense/W/gradient', '0_Dense/b', '0_Dense/b/gradient']
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.tree import walk
from nnscratch.engine.callbacks import Callback
from nnscratch.interop._optional import require

__all__ = ["TensorBoard"]

EXTRA = "tensorboard"


def _named_layers(layers: list[Layer]) -> Iterator[tuple[str, Layer]]:
    """Every layer with a name: its path in the model tree and its type."""
    for path, layer in walk(layers):
        yield f"{path}_{type(layer).__name__}", layer


class TensorBoard(Callback):
    """Write a run's curves (and optionally histograms) for TensorBoard.

    Parameters
    ----------
    log_dir : path-like, default 'logs'
        Event files go to ``log_dir/train`` and ``log_dir/validation``.
    histogram_freq : int >= 0, default 0
        Every this many epochs, a histogram of every param of every layer
        (tag ``'{path}_{Layer}/{key}'``, e.g. ``'0_Dense/W'``) and, with
        ``write_grads``, of its gradient from the epoch's last batch
        (``'0_Dense/W/gradient'``); 0 writes none.
    write_grads : bool, default True
        Whether histograms include the gradients.
    update_freq : 'epoch' or int, default 'epoch'
        ``'epoch'`` writes scalars once per epoch; an int ``n`` also writes
        ``batch_loss`` every ``n`` batches (step: batches seen so far).

    Notes
    -----
    Steps are epochs counted from 0 (a resumed run continues the count).
    ``epoch_learning_rate`` is the rate the epoch ran with: the
    ``learning_rate`` a scheduler put in ``logs``, else the optimizer's.
    """

    writes_files = True

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs",
        histogram_freq: int = 0,
        write_grads: bool = True,
        update_freq: str | int = "epoch",
    ) -> None:
        require("tensorboardX", EXTRA)  # fail here, not at the first epoch
        is_int = isinstance(histogram_freq, int) and not isinstance(
            histogram_freq, bool
        )
        if not is_int or histogram_freq < 0:
            raise ValueError(
                "histogram_freq: expected an integer >= 0. "
                f"Received: {histogram_freq!r}"
            )
        batches = isinstance(update_freq, int) and not isinstance(update_freq, bool)
        if update_freq != "epoch" and not (batches and update_freq >= 1):
            raise ValueError(
                "update_freq: expected 'epoch' or a positive number of batches. "
                f"Received: {update_freq!r}"
            )
        self.log_dir = Path(log_dir)
        self.histogram_freq = histogram_freq
        self.write_grads = bool(write_grads)
        self.update_freq = update_freq
        self._writers: dict[str, Any] = {}
        self._batches_seen = 0

    def _writer(self, name: str) -> Any:
        """The event writer of ``log_dir/name``, opened on first use."""
        if name not in self._writers:
            tensorboardx = require("tensorboardX", EXTRA)
            self._writers[name] = tensorboardx.SummaryWriter(
                logdir=str(self.log_dir / name)
            )
        return self._writers[name]

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._batches_seen = 0

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches_seen += 1
        if self.update_freq == "epoch" or self._batches_seen % self.update_freq:
            return
        loss = (logs or {}).get("loss")
        if loss is not None:
            self._writer("train").add_scalar(
                "batch_loss", float(loss), self._batches_seen
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        rate = logs.pop("learning_rate", self.model.optimizer.learning_rate)
        train = self._writer("train")
        train.add_scalar("epoch_learning_rate", float(rate), epoch)
        for key, value in logs.items():
            if not np.isscalar(value):
                continue
            if key.startswith("val_"):
                self._writer("validation").add_scalar(
                    f"epoch_{key[4:]}", float(value), epoch
                )
            else:
                train.add_scalar(f"epoch_{key}", float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_histograms(train, epoch)
        for writer in self._writers.values():
            writer.flush()

    def _write_histograms(self, writer: Any, epoch: int) -> None:
        for name, layer in _named_layers(self.model.layers):
            for key, value in layer.params.items():
                writer.add_histogram(f"{name}/{key}", np.asarray(value), epoch)
                grad = layer.grads.get(key)
                if self.write_grads and grad is not None:
                    writer.add_histogram(
                        f"{name}/{key}/gradient", np.asarray(grad), epoch
                    )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
