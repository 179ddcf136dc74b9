"""NeuralNetwork: layers, a loss and an optimizer, and the loop that trains them."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.validation import (
    check_choice,
    check_float_array,
    check_positive_int,
)
from nnscratch.engine.callbacks import Callback, EarlyStopping
from nnscratch.losses.losses import get_loss
from nnscratch.optimizers.adam import Adam
from nnscratch.optimizers.optimizer import Optimizer
from nnscratch.utils.metrics import accuracy

DTYPES = {"float32", "float64"}


class TrainingDivergedError(ArithmeticError):
    """Raised inside a training step whose loss or gradients are not finite."""


class NeuralNetwork:
    """A sequential network: layers in the order added, trained by mini-batches.

    Parameters
    ----------
    loss_name : {'mse', 'bce', 'cce'}
        The data loss (a mean over the batch); see ``nnscratch.losses``.
    optimizer : Optimizer, optional
        How parameters are updated; ``Adam()`` if not given.
    seed : int, optional
        Seeds weight initialisation, shuffling and dropout: the same seed
        gives the same weights and history.
    dtype : {'float32', 'float64'}, default 'float32'
        The dtype every array is computed in (float64 for gradient checks).

    Examples
    --------
    >>> from nnscratch import NeuralNetwork, Dense, Activation, Adam
    >>> from nnscratch.utils.data import get_toy_data
    >>> X_train, y_train, X_val, y_val = get_toy_data(n_samples=200)
    >>> model = NeuralNetwork(loss_name="bce", optimizer=Adam(0.01), seed=0)
    >>> model.add(Dense(2, 8))
    >>> model.add(Activation("relu"))
    >>> model.add(Dense(8, 1, initialization="xavier"))
    >>> model.add(Activation("sigmoid"))
    >>> history = model.train(X_train, y_train, epochs=3, batch_size=32, verbose=0)
    >>> sorted(history), len(history["loss"])
    (['accuracy', 'loss'], 3)
    >>> model.predict(X_val[:2]).shape
    (2, 1)
    """

    def __init__(
        self,
        loss_name: str,
        optimizer: Optimizer | None = None,
        seed: int | None = None,
        dtype: str = "float32",
    ) -> None:
        self.loss = get_loss(loss_name)
        self.loss_name = loss_name
        if optimizer is None:
            optimizer = Adam()
        if not isinstance(optimizer, Optimizer):
            raise ValueError(
                "optimizer: expected an Optimizer such as Adam() or SGD(). "
                f"Received: {optimizer!r}"
            )
        self.optimizer = optimizer
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed: expected an integer or None. Received: {seed!r}")
        self.seed = seed
        try:
            dtype_name = np.dtype(dtype).name
        except TypeError:
            dtype_name = str(dtype)
        self.dtype = np.dtype(check_choice("dtype", dtype_name, DTYPES))
        self.rng = np.random.default_rng(seed)
        self.layers: list[Layer] = []
        self.stop_training = False

    # ----------------------------------------------------------------- building
    def add(self, layer: Layer) -> None:
        """Append ``layer``; its starting weights are drawn from the model's seed.

        Weights written into ``layer.params`` after ``add`` are kept: ``train``
        never re-initialises.
        """
        if not isinstance(layer, Layer):
            raise ValueError(
                f"add: expected a Layer (e.g. Dense, Activation). Received: {layer!r}"
            )
        layer.build(self.rng, self.dtype)
        self.layers.append(layer)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every layer's params and buffers, in layer order."""
        return [array.copy() for array in self._state_arrays()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Copy ``weights`` (as from :meth:`get_weights`) into the layers in place."""
        arrays = self._state_arrays()
        shapes = [a.shape for a in arrays]
        if len(weights) != len(arrays) or [np.shape(w) for w in weights] != shapes:
            raise ValueError(
                f"set_weights: expected arrays of shapes {shapes}. "
                f"Received {[np.shape(w) for w in weights]}"
            )
        for target, source in zip(arrays, weights, strict=True):
            target[...] = source

    def _state_arrays(self) -> list[np.ndarray]:
        return [
            array
            for layer in self.layers
            for store in (layer.params, layer.buffers)
            for array in store.values()
        ]

    # ------------------------------------------------------------------ forward
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run ``x`` through every layer; ``x`` must already be in ``self.dtype``."""
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    @property
    def _fused_output(self) -> bool:
        """Whether the last layer is the activation the loss can take logits for.

        Softmax + CCE (and sigmoid + BCE) are then computed from the logits,
        which stays exact where the probabilities underflow, and the gradient
        into the logits is the simple ``(p - y) / N``.
        """
        last = self.layers[-1] if self.layers else None
        return (
            self.loss.output_activation is not None
            and getattr(last, "name", None) == self.loss.output_activation
            and type(last).__name__ == "Activation"
        )

    def _loss_and_output(
        self, x: np.ndarray, y: np.ndarray, training: bool, backward: bool = False
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Forward pass: data loss, network output and, if ``backward``, the
        gradient that starts backpropagation (into the logits when fused)."""
        if self._fused_output:
            logits = x
            for layer in self.layers[:-1]:
                logits = layer.forward(logits, training=training)
            output = self.layers[-1].forward(logits, training=training)
            data_loss = self.loss.value_from_logits(logits, y)
            grad = self.loss.gradient_from_logits(logits, y) if backward else None
        else:
            output = self.forward(x, training=training)
            data_loss = self.loss(output, y)
            grad = self.loss.gradient(output, y) if backward else None
        return data_loss, output, grad

    def regularization_loss(self) -> float:
        """Sum of every layer's penalty term."""
        return float(sum(layer.regularization_loss() for layer in self.layers))

    # ----------------------------------------------------------------- training
    def compute_gradients(
        self, x: np.ndarray, y: np.ndarray, training: bool = False
    ) -> tuple[float, np.ndarray]:
        """Forward and backward on a batch; fills every ``layer.grads``.

        Parameters
        ----------
        x : ndarray of shape (N, ...), in ``self.dtype``
        y : ndarray
            Targets as the loss takes them (see ``Loss.check_targets``).
        training : bool, default False
            Whether layers run in training mode (dropout masks, batch statistics).

        Returns
        -------
        loss : float
            Data loss plus every layer's penalty.
        output : ndarray
            The network output for ``x``.
        """
        data_loss, output, grad = self._loss_and_output(x, y, training, backward=True)
        loss = data_loss + self.regularization_loss()
        if not np.isfinite(loss):
            raise TrainingDivergedError(f"the loss is {loss}")
        backprop_layers = self.layers[:-1] if self._fused_output else self.layers
        for layer in reversed(backprop_layers):
            grad = layer.backward(grad)
        return loss, output

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One optimizer step on a batch; returns (loss incl. penalty, output).

        Raises ``TrainingDivergedError`` before touching the weights when the
        loss or a gradient is not finite.
        """
        loss, output = self.compute_gradients(x, y, training=True)
        params, grads = [], []
        for layer in self.layers:
            for key, param in layer.params.items():
                params.append(param)
                grads.append(layer.grads[key])
        if not all(np.isfinite(g).all() for g in grads):
            raise TrainingDivergedError("a gradient is not finite")
        self.optimizer.step(params, grads)
        return loss, output

    def train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 100,
        batch_size: int = 32,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        early_stopping_patience: int | None = None,
        verbose: int = 1,
        callbacks: list[Callback] | None = None,
    ) -> dict[str, list[float]]:
        """Train on shuffled mini-batches; return the per-epoch history.

        Parameters
        ----------
        X : ndarray of shape (N, ...)
            Inputs, the batch on the first axis.
        y : ndarray
            Targets in a form the loss takes (see ``nnscratch.losses``).
        epochs : int, default 100
        batch_size : int, default 32
            The last batch of an epoch may be smaller.
        X_val, y_val : ndarray, optional
            Validation data, scored after every epoch (``val_loss``, ...).
        early_stopping_patience : int, optional
            Stop after this many epochs without a strictly lower ``val_loss``
            and end with the best weights (needs validation data).
        verbose : int, default 1
            0 trains silently; 1 and 2 print a line per epoch.
        callbacks : list of Callback, optional
            Hooks run during training, e.g. ``EarlyStopping``.

        Returns
        -------
        dict of str to list of float
            ``loss`` (including penalties) and, unless the loss is ``'mse'``,
            ``accuracy``; with validation data ``val_loss`` and
            ``val_accuracy``. One entry per epoch trained.
        """
        X, y = self._check_data("X", X, "y", y)
        has_val = X_val is not None or y_val is not None
        if has_val:
            X_val, y_val = self._check_data("X_val", X_val, "y_val", y_val)
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose < 0:
            raise ValueError(f"verbose: expected 0, 1 or 2. Received: {verbose!r}")
        callbacks = list(callbacks or [])
        if early_stopping_patience is not None:
            if not has_val:
                raise ValueError(
                    "early_stopping_patience: expected validation data (X_val, "
                    "y_val) to watch val_loss. Received none"
                )
            callbacks.append(
                EarlyStopping(
                    patience=early_stopping_patience, restore_best_weights=True
                )
            )
        return self._fit(X, y, epochs, batch_size, X_val, y_val, verbose, callbacks)

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int,
        batch_size: int,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        verbose: int,
        callbacks: list[Callback],
    ) -> dict[str, list[float]]:
        history: dict[str, list[float]] = {}
        self.stop_training = False
        for callback in callbacks:
            callback.model = self
            callback.on_train_begin()
        for epoch in range(epochs):
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            try:
                logs = self._train_epoch(X, y, batch_size, epoch, callbacks)
            except TrainingDivergedError as error:
                warnings.warn(str(error), RuntimeWarning, stacklevel=3)
                break
            if X_val is not None:
                logs.update(
                    {f"val_{k}": v for k, v in self._score(X_val, y_val).items()}
                )
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
            if verbose:
                metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
                print(f"Epoch {epoch + 1}/{epochs} - {metrics}")
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end()
        return history

    def _train_epoch(
        self,
        X: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        epoch: int,
        callbacks: list[Callback],
    ) -> dict[str, float]:
        """One pass over shuffled ``X``; returns the epoch's mean loss and accuracy."""
        order = self.rng.permutation(len(X))
        loss_sum, correct_sum = 0.0, 0.0
        for batch, start in enumerate(range(0, len(X), batch_size)):
            # Sorted indices read a memory-mapped X front to back; the order
            # within a batch does not change the (summed) gradient.
            index = np.sort(order[start : start + batch_size])
            x_batch = np.asarray(X[index], dtype=self.dtype)
            y_batch = y[index]
            # Overflow in a diverging network is reported by TrainingDivergedError.
            with np.errstate(over="ignore", invalid="ignore"):
                try:
                    loss, output = self.train_step(x_batch, y_batch)
                except TrainingDivergedError as error:
                    raise TrainingDivergedError(
                        f"Training stopped at epoch {epoch + 1}, batch {batch + 1}: "
                        f"{error}. The weights of the last good step are kept."
                    ) from None
            loss_sum += loss * len(index)
            if self.loss_name != "mse":
                correct_sum += accuracy(y_batch, output) * len(index)
            for callback in callbacks:
                callback.on_batch_end(batch, {"loss": loss})
        logs = {"loss": loss_sum / len(X)}
        if self.loss_name != "mse":
            logs["accuracy"] = correct_sum / len(X)
        return logs

    # --------------------------------------------------------------- inference
    def predict(self, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Network outputs for ``X`` (probabilities for sigmoid/softmax heads).

        Parameters
        ----------
        X : ndarray of shape (N, ...)
        batch_size : int, default 256
            Rows run at a time, which bounds memory; the result is the same.

        Returns
        -------
        ndarray of shape (N, outputs)
        """
        X = check_float_array("X", X, min_ndim=2)
        self._check_output_shape(X)
        batch_size = check_positive_int("batch_size", batch_size)
        outputs = [
            self.forward(np.asarray(X[start : start + batch_size], dtype=self.dtype))
            for start in range(0, len(X), batch_size)
        ]
        return np.concatenate(outputs)

    def evaluate(
        self, X: np.ndarray, y: np.ndarray, batch_size: int = 256
    ) -> dict[str, float]:
        """Loss (including penalties) and, unless ``mse``, accuracy on ``(X, y)``."""
        X, y = self._check_data("X", X, "y", y)
        return self._score(X, y, check_positive_int("batch_size", batch_size))

    def _score(self, X: np.ndarray, y: np.ndarray, batch_size: int = 256) -> dict:
        loss_sum, outputs = 0.0, []
        for start in range(0, len(X), batch_size):
            x_batch = np.asarray(X[start : start + batch_size], dtype=self.dtype)
            y_batch = y[start : start + batch_size]
            data_loss, output, _ = self._loss_and_output(x_batch, y_batch, False)
            loss_sum += data_loss * len(x_batch)
            outputs.append(output)
        scores = {"loss": loss_sum / len(X) + self.regularization_loss()}
        if self.loss_name != "mse":
            scores["accuracy"] = accuracy(y, np.concatenate(outputs))
        return scores

    # ---------------------------------------------------------------- checking
    def _check_output_shape(self, X: np.ndarray) -> tuple[int, ...]:
        """Run one sample through the network: layers reject a wrong shape."""
        if not self.layers:
            raise ValueError("the model has no layers: expected add() before use")
        return self.forward(np.asarray(X[:1], dtype=self.dtype)).shape

    def _check_data(
        self, x_name: str, X: Any, y_name: str, y: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validate inputs and targets; return the targets as the loss takes them."""
        if X is None or y is None:
            raise ValueError(
                f"{x_name}, {y_name}: expected both arrays. Received "
                f"{x_name}={'None' if X is None else 'array'}, "
                f"{y_name}={'None' if y is None else 'array'}"
            )
        X = check_float_array(x_name, X, min_ndim=2)
        y = check_float_array(y_name, y, min_ndim=1)
        if len(X) != len(y):
            raise ValueError(
                f"{y_name}: expected {len(X)} targets, one per row of {x_name}. "
                f"Received {len(y)}"
            )
        return X, self.loss.check_targets(y, self._check_output_shape(X), self.dtype)

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write architecture and weights to one ``.npz`` file, atomically.

        No pickle is used; see :meth:`load`.
        """
        from nnscratch.engine.serialization import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NeuralNetwork:
        """Rebuild a model saved by :meth:`save`.

        Raises ``ValueError`` for a file it cannot trust: not a model file,
        truncated, corrupt, pickled, or with missing, extra or mis-shaped
        arrays.
        """
        from nnscratch.engine.serialization import load_model

        return load_model(path)

    def __repr__(self) -> str:
        layers = ", ".join(repr(layer) for layer in self.layers)
        return (
            f"NeuralNetwork(loss_name={self.loss_name!r}, "
            f"optimizer={self.optimizer!r}, layers=[{layers}])"
        )
