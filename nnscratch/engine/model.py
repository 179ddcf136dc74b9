"""NeuralNetwork: layers, a loss and an optimizer, and what they do together.

The model runs its layers forward and backward, takes optimizer steps, and
predicts; the training loop is in :mod:`nnscratch.engine.training`, data
checks in :mod:`nnscratch.engine.data`, and files in :mod:`nnscratch.saving`,
which talks to a model only through :meth:`NeuralNetwork.get_config`,
:meth:`~NeuralNetwork.from_config`, :meth:`~NeuralNetwork.state_dict` and
:meth:`~NeuralNetwork.load_state_dict`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nnscratch.core import tree
from nnscratch.core.flat import FlatParameters
from nnscratch.core.layer import Layer, backward_into_input
from nnscratch.core.registry import layer_config, layer_from_config
from nnscratch.core.validation import DTYPES, check_choice, check_positive_int
from nnscratch.engine.data import input_batches, model_data
from nnscratch.engine.training import (
    ArrayCopies,
    TrainingDivergedError,
    all_finite,
    fit,
)
from nnscratch.layers.activation import Activation
from nnscratch.losses.losses import get_loss
from nnscratch.optimizers.adam import Adam
from nnscratch.optimizers.optimizer import Optimizer, optimizer_from_config
from nnscratch.saving import model_file
from nnscratch.utils.metrics import accuracy


class NeuralNetwork:
    """A network of layers in the order added, trained by mini-batches.

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
        optimizer = Adam() if optimizer is None else optimizer
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
        self.callbacks: list = []
        self.early_stopping_states: list[dict] = []
        self.tracker: Any = None
        self.feature_names: list[str] | None = None
        """The names of the input columns, when the data had them (a CSV's
        header): saved with the model, so predictions can pick them by name."""
        self.tokenizer: Any = None
        """The tokenizer of a text model (a ``CharTokenizer``), saved with it."""
        self.class_labels: list[int] | None = None
        """The label of each output class when the data's labels were not
        0..K-1 (scikit-learn's ``classes_``): output ``k`` is class
        ``class_labels[k]``. Saved with the model."""

    # ----------------------------------------------------------------- building
    def add(self, layer: Layer) -> None:
        """Append ``layer`` (any Layer, containers included) and build it.

        A layer not yet built draws its starting weights from the model's
        seed; weights written into ``layer.params`` after ``add`` are kept:
        ``train`` never re-initialises.
        """
        if not isinstance(layer, Layer):
            raise ValueError(
                f"add: expected a Layer (e.g. Dense, Activation). Received: {layer!r}"
            )
        layer.build(self.rng, self.dtype)
        self.layers.append(layer)
        self.flat_parameters()

    def flat_parameters(self) -> FlatParameters:
        """The model's flat parameter and gradient buffers (see
        :mod:`nnscratch.core.flat`), with every layer's arrays views into
        them again: an array a user replaced is re-adopted, a layer added
        by other means than :meth:`add` gets new buffers.

        Every ``layer.params[key]`` is a view into ``flat_parameters().params``
        (and ``grads[key]`` into ``.grads``): write weights in place
        (``layer.params['W'][...] = new``), as :meth:`set_weights` does.
        """
        return self._adopted(tree.every_layer(self.layers))

    def _adopted(self, every: list[Layer]) -> FlatParameters:
        """:meth:`flat_parameters`, for a tree already walked (``every``, as
        :func:`~nnscratch.core.tree.every_layer` lists it)."""
        flat = self.__dict__.get("_flat")
        if flat is None:
            flat = FlatParameters(self.layers, self.dtype)
        else:
            flat = flat.adopt(self.layers, every)
        self._flat = flat
        return flat

    def summary(
        self, input_shape: tuple[int, ...] | None = None, print_fn: Any = print
    ) -> None:
        """Print a table of the layers (nested ones indented), their output
        shapes and parameter counts. ``input_shape`` (without the batch axis)
        is needed when the first layer does not imply it (e.g. a Conv2D).
        ``print_fn`` receives the table as one string, as in Keras."""
        from nnscratch.engine.summary import summary

        print_fn(summary(self, input_shape))

    @property
    def input_dtype(self) -> np.dtype | None:
        """The dtype inputs are cast to; None when the first layer reads ids."""
        first = next((layer for _, layer in tree.leaves(self.layers)), None)
        return None if first is not None and not first.float_input else self.dtype

    def cast(self, x: np.ndarray) -> np.ndarray:
        """``x`` in the input dtype (ids pass as they are)."""
        dtype = self.input_dtype
        return np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)

    # ------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every param and buffer by its path (``'2.body.0.W'``); the arrays
        themselves, as ``torch.nn.Module.state_dict`` (copy to keep them)."""
        return tree.state_arrays(self.layers)

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays named as by :meth:`state_dict` into the model, in place.

        Every name must be there, with its shape and finite values; nothing is
        changed unless all are.
        """
        tree.load_state(self.layers, state, "load_state_dict")

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every param and buffer, in :meth:`state_dict` order."""
        return [array.copy() for array in self.state_dict().values()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Copy ``weights`` (as from :meth:`get_weights`) into the model in place."""
        names = list(self.state_dict())
        if len(weights) != len(names):
            raise ValueError(
                f"set_weights: expected {len(names)} arrays. Received {len(weights)}"
            )
        self.load_state_dict(dict(zip(names, weights, strict=True)))

    def params_and_grads(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Every trainable array and its gradient: the optimizer's view.

        They are views into the model's flat buffers, back to back (see
        :meth:`flat_parameters`), so an optimizer updates them in one pass.
        """
        flat = self.flat_parameters()
        return flat.param_views, flat.grad_views

    def get_config(self) -> dict[str, Any]:
        """Everything but the arrays, as JSON-friendly data."""
        return {
            "loss_name": self.loss_name,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "optimizer": {
                "type": type(self.optimizer).__name__,
                "config": self.optimizer.get_config(),
            },
            "layers": [layer_config(layer) for layer in self.layers],
            "feature_names": self.feature_names,
            "class_labels": self.class_labels,
            "tokenizer": None
            if self.tokenizer is None
            else {
                "type": type(self.tokenizer).__name__,
                "config": self.tokenizer.get_config(),
            },
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NeuralNetwork:
        """A new model as :meth:`get_config` describes it (fresh weights)."""
        optimizer = optimizer_from_config(config["optimizer"])
        model = cls(config["loss_name"], optimizer, config["seed"], config["dtype"])
        for layer_entry in config["layers"]:
            model.add(layer_from_config(layer_entry))
        model.feature_names = config.get("feature_names")
        model.class_labels = config.get("class_labels")
        if config.get("tokenizer") is not None:
            from nnscratch.utils.text import CharTokenizer

            model.tokenizer = CharTokenizer.from_config(config["tokenizer"]["config"])
        return model

    # ------------------------------------------------------------------ forward
    def forward(
        self, x: np.ndarray, training: bool = False, layers: list | None = None
    ) -> np.ndarray:
        """Run ``x`` through every layer (or the given ``layers``) in order.

        ``x`` must already be in the input dtype. While a tracker is attached
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
            if not backward:
                output = self.forward(logits, training, self.layers[-1:])
                return self.loss.value_from_logits(logits, y), output, None
            # The loss computes the output activation on its way (the softmax
            # is a step of the cross-entropy): the last layer's own forward is
            # not needed.
            data_loss, grad, output = self.loss.value_gradient_and_output_from_logits(
                logits, y
            )
            if training and self.tracker is not None:
                self.tracker.observe_output(self.layers[-1], output)
        else:
            output = self.forward(x, training=training)
            data_loss = self.loss(output, y)
            grad = self.loss.gradient(output, y) if backward else None
        return data_loss, output, grad

    def regularization_loss(self) -> float:
        """Sum of every layer's penalty term, nested layers included."""
        return tree.regularization_loss(self.layers)

    # ----------------------------------------------------------------- backward
    def compute_gradients(
        self, x: np.ndarray, y: np.ndarray, training: bool = False
    ) -> tuple[float, np.ndarray]:
        """Forward and backward on a batch; fills every layer's ``grads``.

        Parameters
        ----------
        x : ndarray of shape (N, ...), in the input dtype
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
        loss, output, _ = self._backpropagate(x, y, training, input_gradient=False)
        return loss, output

    def _backpropagate(
        self,
        x: np.ndarray,
        y: np.ndarray,
        training: bool,
        input_gradient: bool,
        every: list[Layer] | None = None,
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Loss, output and (if ``input_gradient``; the first layer may skip
        it otherwise) ``dL/dx``, with every layer's ``grads`` filled.
        ``every`` is the layer tree already walked, when the caller has it."""
        data_loss, output, grad = self._loss_and_output(x, y, training, backward=True)
        if every is None:
            every = tree.every_layer(self.layers)
        loss = data_loss + tree.penalty(every)
        # In data-parallel training every process decides together, on the
        # loss summed over them (see train_step).
        if not np.isfinite(loss) and self.__dict__.get("distributed") is None:
            raise TrainingDivergedError(f"the loss is {loss}")
        layers = self.layers[:-1] if self._fused_output else self.layers
        for layer in reversed(layers[1:]):
            grad = layer.backward(grad)
        if layers:
            grad = backward_into_input(layers[0], grad, input_gradient)
        return loss, output, grad if input_gradient else None

    def input_gradients(self, X: Any, y: Any) -> np.ndarray:
        """``dLoss/dX`` for a batch, in inference mode; weights are untouched.

        The gradient of the loss with respect to every input value: a
        saliency map for an image, the direction an adversarial example moves.

        Parameters
        ----------
        X : ndarray of shape (N, ...)
        y : ndarray
            Targets as :meth:`train` takes them.

        Returns
        -------
        ndarray of the shape of ``X``, in the model's dtype
        """
        data = model_data(self, "X", X, "y", y)
        if self.input_dtype is None:
            raise ValueError(
                "input_gradients: the first layer reads integer ids, which have "
                "no gradient"
            )
        x, y_checked = self.cast(data.X), data.y
        with np.errstate(over="ignore", invalid="ignore"):
            _, _, dx = self._backpropagate(x, y_checked, False, input_gradient=True)
        return dx

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One optimizer step on a batch; returns (loss incl. penalty, output).

        Raises ``TrainingDivergedError`` when the loss, a gradient or a
        weight after the update is not finite; the model (weights, buffers,
        optimizer state) is then as it was before the step.
        """
        # A training forward updates buffers (BatchNorm's running statistics);
        # a diverging step must not leave its statistics behind.
        # The tree is walked once; the checks below share the walk.
        layers = tree.every_layer(self.layers)
        flat = self._adopted(layers)  # re-adopts replaced arrays
        params, grads = flat.param_views, flat.grad_views
        buffers = self.__dict__.get("_buffer_copies")
        if buffers is None:  # made once (setdefault would build one every step)
            buffers = self._buffer_copies = ArrayCopies()
        buffers.take([a for layer in layers for a in layer.buffers.values()])
        try:
            loss, output, _ = self._backpropagate(x, y, True, False, every=layers)
            # A layer whose backward assigned new gradient arrays (instead
            # of writing in place) has them copied into the flat buffer.
            flat = self._adopted(layers)
            distributed = self.__dict__.get("distributed")
            if distributed is not None:
                # One allreduce of the flat gradients (and loss, accuracy).
                loss = distributed.reduce_step(self, loss, output, y)
                if not np.isfinite(loss):
                    raise TrainingDivergedError(f"the loss is {loss}")
            # A non-finite gradient makes the new weights non-finite, and the
            # update itself can overflow (a huge learning rate): the optimizer
            # refuses such a step, and weights and state stay as they were.
            if not self.optimizer.step(params, grads, refuse_non_finite=True):
                if not all_finite([flat.grads]):
                    raise TrainingDivergedError("a gradient is not finite")
                raise TrainingDivergedError("the update made a weight NaN or infinite")
        except TrainingDivergedError:
            buffers.restore()
            raise
        return loss, output

    # The training loop, with every argument, documented where it lives.
    train = fit

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
        outputs = [self.forward(x) for x in input_batches(self, X, batch_size)]
        if not outputs:
            raise ValueError("X: expected at least one batch. Received none")
        return np.concatenate(outputs)

    def evaluate(self, X: Any, y: Any = None, batch_size: int = 256) -> dict:
        """Loss (including penalties) and, unless ``mse``, accuracy on ``(X, y)``.

        ``X`` may also be an iterable of ``(x_batch, y_batch)`` pairs, as in
        :meth:`train`.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        return self.score(model_data(self, "X", X, "y", y), batch_size)

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

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write architecture and weights to one ``.npz`` file, atomically.

        No pickle is used; see :mod:`nnscratch.saving`.
        """
        model_file.save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NeuralNetwork:
        """Rebuild a model saved by :meth:`save`.

        Raises ``ValueError`` for a file it cannot trust: not a model file,
        truncated, corrupt, pickled, or with missing, extra or mis-shaped
        arrays.
        """
        return model_file.load_model(path, cls)

    def __repr__(self) -> str:
        layers = ", ".join(repr(layer) for layer in self.layers)
        return (
            f"NeuralNetwork(loss_name={self.loss_name!r}, "
            f"optimizer={self.optimizer!r}, layers=[{layers}])"
        )
