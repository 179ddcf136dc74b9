"""NeuralNetwork: layers, a loss and an optimizer, and the loop that trains them."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.validation import (
    check_choice,
    check_float_array,
    check_positive_int,
)
from nnscratch.engine.batches import (
    ArrayData,
    StreamData,
    check_finite_in_chunks,
    is_batch_source,
    iterate_source,
)
from nnscratch.engine.callbacks import Callback, EarlyStopping
from nnscratch.engine.tracking import LayerStatsTracker
from nnscratch.engine.training import TrainingDivergedError, TrainingRun
from nnscratch.layers.activation import Activation
from nnscratch.losses.losses import get_loss
from nnscratch.optimizers.adam import Adam
from nnscratch.optimizers.optimizer import Optimizer
from nnscratch.utils.metrics import accuracy

DTYPES = {"float32", "float64"}


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
        # The training run so far, kept across train() calls and saved with
        # the model so that a run can resume exactly.
        self.history: dict[str, list[float]] = {}
        self.epochs_done = 0
        self.callbacks: list[Callback] = []
        self.early_stopping_states: list[dict] = []
        self.tracker: LayerStatsTracker | None = None

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
        # The first layer's input is the data: no gradient is needed for it.
        layer.input_gradient_needed = bool(self.layers)
        self.layers.append(layer)

    def summary(
        self,
        input_shape: tuple[int, ...] | None = None,
        print_fn: Any = print,
    ) -> None:
        """Print a table of the layers, their output shapes and parameter counts.

        ``input_shape`` (without the batch axis) is needed when the first layer
        does not imply it (e.g. a Conv2D). ``print_fn`` receives the table as
        one string, as in Keras.
        """
        from nnscratch.engine.summary import summary

        print_fn(summary(self, input_shape))

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
    def forward(
        self, x: np.ndarray, training: bool = False, layers: list | None = None
    ) -> np.ndarray:
        """Run ``x`` through every layer (or the given ``layers``) in order.

        ``x`` must already be in ``self.dtype``. While a tracker is attached
        (``train(track=True)``) it sees each training output.
        """
        for layer in self.layers if layers is None else layers:
            x = layer.forward(x, training=training)
            if training and self.tracker is not None:
                self.tracker.observe_output(layer, x)
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
            isinstance(last, Activation)
            and self.loss.output_activation is not None
            and last.name == self.loss.output_activation
        )

    def _loss_and_output(
        self, x: np.ndarray, y: np.ndarray, training: bool, backward: bool = False
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Forward pass: data loss, network output and, if ``backward``, the
        gradient that starts backpropagation (into the logits when fused)."""
        if self._fused_output:
            logits = self.forward(x, training, self.layers[:-1])
            output = self.forward(logits, training, self.layers[-1:])
            if backward:
                data_loss, grad = self.loss.value_and_gradient_from_logits(logits, y)
            else:
                data_loss, grad = self.loss.value_from_logits(logits, y), None
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
        # A training forward updates buffers (BatchNorm's running statistics);
        # a diverging step must not leave its statistics behind.
        buffers = [b for layer in self.layers for b in layer.buffers.values()]
        saved_buffers = [b.copy() for b in buffers]
        try:
            loss, output = self.compute_gradients(x, y, training=True)
            params, grads = self._params_and_grads()
            if not all(np.isfinite(g).all() for g in grads):
                raise TrainingDivergedError("a gradient is not finite")
        except TrainingDivergedError:
            for buffer, saved in zip(buffers, saved_buffers, strict=True):
                buffer[...] = saved
            raise
        self.optimizer.step(params, grads)
        return loss, output

    def _params_and_grads(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Every trainable array and its gradient, in layer order."""
        params, grads = [], []
        for layer in self.layers:
            for key, param in layer.params.items():
                params.append(param)
                grads.append(layer.grads[key])
        return params, grads

    def train(
        self,
        X: Any,
        y: Any = None,
        epochs: int = 100,
        batch_size: int = 32,
        X_val: Any = None,
        y_val: Any = None,
        early_stopping_patience: int | None = None,
        verbose: int = 1,
        callbacks: list[Callback] | None = None,
        resume_from: str | os.PathLike | None = None,
        track: bool = False,
    ) -> dict[str, list[float]]:
        """Train on shuffled mini-batches; return the per-epoch history.

        Parameters
        ----------
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
        verbose : int, default 1
            0 trains silently, 1 shows a progress bar per epoch, 2 prints one
            line per epoch.
        callbacks : list of Callback, optional
            Hooks run during training, e.g. ``EarlyStopping``.
        resume_from : path-like, optional
            A file written by :meth:`save` during an earlier run of this same
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
        data = self._data("X", X, "y", y)
        val_data = None
        if X_val is not None or y_val is not None:
            val_data = self._data("X_val", X_val, "y_val", y_val)
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose < 0:
            raise ValueError(f"verbose: expected 0, 1 or 2. Received: {verbose!r}")
        self._check_last_batch(data, batch_size)
        callbacks = _with_early_stopping(
            callbacks, early_stopping_patience, val_data is not None
        )
        first_epoch = self._begin_run(callbacks, resume_from)
        for name, source in (("X", data), ("X_val", val_data)):
            _check_reusable(name, source, epochs - first_epoch)
        run = TrainingRun(self, data, val_data, epochs, batch_size, verbose, callbacks)
        self.tracker = LayerStatsTracker(self) if track else None
        try:
            history = run.run(first_epoch)
        finally:
            self.tracker = None
        return self.history if resume_from is not None else history

    def _begin_run(
        self, callbacks: list[Callback], resume_from: str | os.PathLike | None
    ) -> int:
        """Start (or resume) a run and its callbacks; return the first epoch."""
        first_epoch, stopper_states = 0, []
        if resume_from is not None:
            first_epoch, stopper_states = self._resume(resume_from)
        else:
            self.history, self.epochs_done = {}, 0
        self.stop_training = False
        self.callbacks = callbacks
        for callback in callbacks:
            callback.model = self
            callback.on_train_begin()
        stoppers = [c for c in callbacks if isinstance(c, EarlyStopping)]
        for stopper, state in zip(stoppers, stopper_states, strict=False):
            stopper.set_state(state)  # after on_train_begin, which resets
        return first_epoch

    def _resume(self, path: str | os.PathLike) -> tuple[int, list[dict]]:
        """Load a saved run into this model; return (epochs done, stopper states)."""
        from nnscratch.engine.serialization import load_model, model_config

        saved = load_model(path)
        mine, theirs = model_config(self), model_config(saved)
        for key in ("loss_name", "layers"):
            if mine[key] != theirs[key]:
                raise ValueError(
                    f"resume_from: expected a file saved from this network "
                    f"({key} {mine[key]!r}). Received {theirs[key]!r}"
                )
        if type(saved.optimizer) is not type(self.optimizer):
            raise ValueError(
                f"resume_from: expected a {type(self.optimizer).__name__} run. "
                f"Received a {type(saved.optimizer).__name__} run"
            )
        if saved.epochs_done == 0:
            raise ValueError(
                "resume_from: expected a file saved after training. Received "
                "one with no training state"
            )
        self.set_weights(saved.get_weights())
        self.optimizer.__dict__.update(saved.optimizer.__dict__)
        self.rng.bit_generator.state = saved.rng.bit_generator.state
        self.history, self.epochs_done = saved.history, saved.epochs_done
        return saved.epochs_done, saved.early_stopping_states

    def _check_last_batch(self, data: Any, batch_size: int) -> None:
        """Refuse a split whose last batch is too small for a layer (BatchNorm)."""
        needed = max(getattr(layer, "min_batch_size", 1) for layer in self.layers)
        if isinstance(data, ArrayData) and needed > 1:
            remainder = data.n_samples % batch_size or batch_size
            if remainder < needed:
                layer = next(
                    layer
                    for layer in self.layers
                    if getattr(layer, "min_batch_size", 1) == needed
                )
                raise ValueError(
                    f"batch_size: {type(layer).__name__} needs at least {needed} "
                    f"samples per training batch. Received batch_size={batch_size}, "
                    f"which leaves a last batch of {remainder} of "
                    f"{data.n_samples} samples"
                )

    # --------------------------------------------------------------- inference
    @property
    def reports_accuracy(self) -> bool:
        """Whether this model reports accuracy: every loss but ``mse``."""
        return self.loss_name != "mse"

    def predict(self, X: Any, batch_size: int = 256) -> np.ndarray:
        """Network outputs for ``X`` (probabilities for sigmoid/softmax heads).

        Parameters
        ----------
        X : ndarray of shape (N, ...), or an iterable of batches
            A memory-mapped array is read one batch at a time; an iterable
            may yield ``x_batch`` arrays or ``(x_batch, y_batch)`` pairs.
        batch_size : int, default 256
            Rows run at a time, which bounds memory; the result is the same.

        Returns
        -------
        ndarray of shape (N, outputs)
        """
        batch_size = check_positive_int("batch_size", batch_size)
        if is_batch_source(X):
            batches = (
                item[0] if isinstance(item, tuple | list) else item
                for item in iterate_source("X", X)
            )
        else:
            X = check_float_array("X", X, min_ndim=2, check_finite=False)
            self._check_output_shape(X)
            batches = (X[i : i + batch_size] for i in range(0, len(X), batch_size))
        outputs = []
        for x_batch in batches:
            # Checked batch by batch, while the batch is in cache: nothing is
            # trained here, so a NaN found halfway changes nothing, and a
            # separate pass over a large X first would cost ~5% of predict.
            x_batch = check_float_array("X", x_batch, min_ndim=2)
            outputs.append(self.forward(np.asarray(x_batch, dtype=self.dtype)))
        if not outputs:
            raise ValueError("X: expected at least one batch. Received none")
        return np.concatenate(outputs)

    def evaluate(self, X: Any, y: Any = None, batch_size: int = 256) -> dict:
        """Loss (including penalties) and, unless ``mse``, accuracy on ``(X, y)``.

        ``X`` may also be an iterable of ``(x_batch, y_batch)`` pairs, as in
        :meth:`train`.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        return self.score(self._data("X", X, "y", y), batch_size)

    def score(self, data: Any, batch_size: int = 256) -> dict[str, float]:
        """Sample-weighted mean loss (and accuracy) over checked data, in order."""
        samples, loss_sum, correct = 0, 0.0, 0.0
        for x_batch, y_batch in data.batches(batch_size):
            data_loss, output, _ = self._loss_and_output(x_batch, y_batch, False)
            samples += len(output)
            loss_sum += data_loss * len(output)
            if self.reports_accuracy:
                correct += accuracy(y_batch, output) * len(output)
        if samples == 0:
            raise ValueError("X: expected at least one batch. Received none")
        scores = {"loss": loss_sum / samples + self.regularization_loss()}
        if self.reports_accuracy:
            scores["accuracy"] = correct / samples
        return scores

    # ---------------------------------------------------------------- checking
    def _check_output_shape(self, X: np.ndarray) -> tuple[int, ...]:
        """Run one sample through the network: layers reject a wrong shape."""
        if not self.layers:
            raise ValueError("the model has no layers: expected add() before use")
        return self.forward(np.asarray(X[:1], dtype=self.dtype)).shape

    def _data(self, x_name: str, X: Any, y_name: str, y: Any) -> Any:
        """Wrap training or evaluation data, checked: arrays now, streams per batch."""
        if is_batch_source(X):
            if y is not None:
                raise ValueError(
                    f"{y_name}: expected None when {x_name} yields (x, y) batches. "
                    f"Received {type(y).__name__}"
                )
            return StreamData(
                x_name,
                X,
                lambda xb, yb: self._check_arrays(x_name, xb, y_name, yb, False),
            )
        return ArrayData(
            *self._check_arrays(x_name, X, y_name, y, True), dtype=self.dtype
        )

    def _check_arrays(
        self, x_name: str, X: Any, y_name: str, y: Any, scan_all: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validate inputs and targets; return the targets as the loss takes them.

        With ``scan_all`` a large (memory-mapped) ``X`` is scanned for NaN in
        blocks; otherwise ``X`` is one batch, converted to the model's dtype.
        """
        if X is None or y is None:
            raise ValueError(
                f"{x_name}, {y_name}: expected both arrays. Received "
                f"{x_name}={'None' if X is None else 'array'}, "
                f"{y_name}={'None' if y is None else 'array'}"
            )
        if scan_all:
            X = check_float_array(x_name, X, min_ndim=2, check_finite=False)
            check_finite_in_chunks(x_name, X)
        else:
            X = np.asarray(check_float_array(x_name, X, min_ndim=2), dtype=self.dtype)
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
