"""ModelCheckpoint: save the model after every epoch, or only when it improved.

The file is written through a temporary file and a rename, so a process
killed while writing leaves the previous file whole.
"""

from __future__ import annotations

import os
import string
from typing import Any

from nnscratch.engine.callbacks.base import MonitorCallback


class ModelCheckpoint(MonitorCallback):
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

    writes_files = True

    def __init__(
        self,
        path: str | os.PathLike,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        self.path = os.fspath(path)
        self.save_best_only = bool(save_best_only)
        self.saved: list[str] = []

    def check_logs(self, keys: list[str], track: bool = False) -> None:
        """Refuse, before training, a path whose fields the run will not log
        (``{val_loss}`` without validation data) or cannot format."""
        try:
            fields = {
                name.split(".")[0].split("[")[0]
                for _, name, _, _ in string.Formatter().parse(self.path)
                if name is not None
            }
        except ValueError as error:
            raise ValueError(f"ModelCheckpoint path: {error}") from None
        available = {"epoch", *keys}
        missing = sorted(fields - available) if not track else []
        if missing:
            raise ValueError(
                f"ModelCheckpoint path {self.path!r}: expected fields from the "
                f"logs this run writes ({', '.join(sorted(available))}). "
                f"Received {', '.join('{' + name + '}' for name in missing)}"
                + (
                    " (validation data gives val_* keys)"
                    if any(name.startswith("val_") for name in missing)
                    else ""
                )
            )
        try:
            self.path.format(epoch=1, **dict.fromkeys(keys, 0.5))
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as error:
            if not track:
                raise ValueError(
                    f"ModelCheckpoint path {self.path!r}: cannot be formatted "
                    f"from the logs ({type(error).__name__}: {error})"
                ) from None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.save_best_only:
            value = self.monitored(logs)
            if value is None or not self.is_improvement(value):
                return  # nothing saved
            self.best = value
        path = self.path.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        self.saved.append(path)
