"""Callbacks that write files during training: model checkpoints and CSV logs.

Both write through a temporary file and a rename, so a process killed while
writing leaves the previous file whole.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.core.validation import check_choice
from nnscratch.engine.callbacks import Callback, monitored_value
from nnscratch.utils.io import atomic_write


class ModelCheckpoint(Callback):
    """Save the model after every epoch, or only when it improved.

    The file is a complete model with its training state (see
    ``NeuralNetwork.save``), so ``train(..., resume_from=path)`` continues
    the run from it.

    Parameters
    ----------
    path : path-like
        Where to save. May hold ``str.format`` fields filled from the epoch
        (counted from 1) and its logs, e.g. ``'model-{epoch:03d}-{val_loss:.3f}.npz'``.
    monitor : str, default 'val_loss'
        The metric that decides what is "best".
    save_best_only : bool, default False
        Save only when ``monitor`` is better than at every earlier save.
    mode : {'auto', 'min', 'max'}, default 'auto'
        ``'auto'`` maximises accuracies and minimises everything else.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from nnscratch import NeuralNetwork, Dense
    >>> model = NeuralNetwork(loss_name="mse", seed=0)
    >>> model.add(Dense(2, 1))
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> checkpoint = ModelCheckpoint(folder / "epoch{epoch}.npz", monitor="loss")
    >>> _ = model.train(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
    ...                 callbacks=[checkpoint])
    >>> sorted(p.name for p in folder.iterdir())
    ['epoch1.npz', 'epoch2.npz']
    """

    def __init__(
        self,
        path: str | os.PathLike,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        self.path = os.fspath(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        mode = check_choice("mode", mode, {"auto", "min", "max"})
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.mode = mode
        self.best = np.inf if mode == "min" else -np.inf
        self.saved: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.save_best_only:
            value = monitored_value("ModelCheckpoint", self.monitor, logs)
            if value is None:
                return  # nothing saved
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        path = self.path.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        self.saved.append(path)


class CSVLogger(Callback):
    """Write the history to a CSV file, one row per epoch, as training goes.

    Parameters
    ----------
    path : path-like
    separator : str, default ','
    append : bool, default False
        Keep the rows of an existing file (e.g. when resuming) and add to them.

    Notes
    -----
    The whole file is rewritten atomically after each epoch, so it is always a
    complete CSV; the header grows if a later epoch logs a new key.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from nnscratch import NeuralNetwork, Dense
    >>> model = NeuralNetwork(loss_name="mse", seed=0)
    >>> model.add(Dense(2, 1))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = model.train(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
    ...                 callbacks=[CSVLogger(path)])
    >>> path.read_text().splitlines()[0]
    'epoch,loss'
    """

    def __init__(
        self, path: str | os.PathLike, separator: str = ",", append: bool = False
    ) -> None:
        self.path = Path(path)
        self.separator = separator
        self.append = bool(append)
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.rows = []
        if self.append and self.path.exists():
            with open(self.path, newline="") as handle:
                self.rows = list(csv.DictReader(handle, delimiter=self.separator))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # Counted from 0 in the file, as Keras's CSVLogger does.
        self.rows.append({"epoch": epoch, **(logs or {})})
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        text = io.StringIO()
        writer = csv.DictWriter(
            text, fieldnames=columns, delimiter=self.separator, lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(self.rows)
        with atomic_write(self.path) as handle:
            handle.write(text.getvalue().encode())
