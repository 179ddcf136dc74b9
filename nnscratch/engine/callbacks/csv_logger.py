"""CSVLogger: the history as a CSV file, one row per epoch, as training goes."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from nnscratch.engine.callbacks.base import Callback
from nnscratch.utils.io import atomic_write


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

    writes_files = True

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
