"""What NNClassifier and NNRegressor share: parameters, network, training loop.

The network is an ``nnscratch.NeuralNetwork`` built by ``build_mlp``; the
parameters carry ``sklearn.neural_network.MLPClassifier``'s names, defaults
and meanings, translated as :class:`NNEstimator` describes.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from nnscratch.apps.builders import build_mlp
from nnscratch.engine.callbacks import Callback
from nnscratch.layers.activation_functions import ACTIVATIONS
from nnscratch.optimizers.adam import Adam
from nnscratch.optimizers.sgd import SGD

SKLEARN_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid"}
"""MLPClassifier's activation names that differ from nnscratch's."""

SOLVERS = ("adam", "sgd")

AUTO_BATCH = 200
"""``batch_size='auto'`` means ``min(200, n_samples)``, as in MLPClassifier."""

DTYPE = "float64"
"""The networks compute in float64, as MLPClassifier does on float64 data."""


def _check_number(name: str, value: Any, low: float, integer: bool = False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not value >= low:
        expected = "an integer" if integer else "a number"
        raise ValueError(f"{name}: expected {expected} >= {low}. Received: {value!r}")


class NoImprovementStop(Callback):
    """MLPClassifier's stopping rule, on a loss watched after every epoch.

    An epoch counts as no improvement when its ``monitor`` value is not below
    the lowest so far minus ``tol``; training stops once more than
    ``n_iter_no_change`` such epochs come in a row. The lowest value follows
    every new minimum, even one within ``tol`` (unlike Keras's
    ``EarlyStopping``, whose reference moves only on an improvement by
    ``min_delta``). With ``restore_best`` the model ends with the weights of
    its lowest epoch.
    """

    def __init__(
        self, monitor: str, tol: float, n_iter_no_change: int, restore_best: bool
    ) -> None:
        self.monitor = monitor
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.restore_best = restore_best
        self.on_train_begin()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.best = np.inf
        self.count = 0
        self.stopped = False
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = float((logs or {})[self.monitor])
        self.count = self.count + 1 if value > self.best - self.tol else 0
        if value < self.best:
            self.best = value
            if self.restore_best:
                self.best_weights = self.model.get_weights()
        if self.count > self.n_iter_no_change:
            self.stopped = True
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class NNEstimator(BaseEstimator):
    """Base of the nnscratch estimators (not for direct use).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        The sizes of the hidden Dense layers.
    activation : str, default 'relu'
        The hidden layers' activation: MLPClassifier's ``'identity'``,
        ``'logistic'``, ``'tanh'``, ``'relu'``, or any nnscratch name
        (``'gelu'``, ``'elu'``, ...).
    solver : {'adam', 'sgd'}, default 'adam'
        nnscratch's ``Adam(learning_rate_init, beta_1, beta_2, epsilon)`` or
        ``SGD(learning_rate_init, momentum)``.
    alpha : float, default 1e-4
        L2 penalty, as MLPClassifier's: ``alpha / 2 * sum(W**2)`` divided by
        the batch size, i.e. ``Dense(l2_lambda=alpha / (2 * batch_size))``.
    batch_size : int or 'auto', default 'auto'
        ``'auto'`` is ``min(200, n_samples)``; larger values are clipped.
    learning_rate_init : float, default 1e-3
    max_iter : int, default 200
        The most epochs.
    tol, n_iter_no_change : float, int, default 1e-4, 10
        Training stops when the watched loss has not improved by ``tol`` for
        more than ``n_iter_no_change`` epochs in a row (MLPClassifier's rule,
        :class:`NoImprovementStop`): the training loss, or with
        ``early_stopping`` the validation loss.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified for a
        classifier), watch its loss, and end with the best epoch's weights.
        (MLPClassifier watches the validation accuracy instead.)
    validation_fraction : float, default 0.1
    momentum : float, default 0.9
        SGD's momentum.
    beta_1, beta_2, epsilon : float, default 0.9, 0.999, 1e-8
        Adam's.
    random_state : int, RandomState or None, default None
        Seeds the weights, shuffling and the validation split.
    verbose : bool or int, default False
        True prints one line per epoch.

    Attributes
    ----------
    model_ : NeuralNetwork
        The trained network.
    n_iter_ : int
        Epochs run.
    loss_ : float
        The last epoch's training loss (data loss plus penalty).
    loss_curve_ : list of float
        The training loss of each epoch.
    best_loss_ : float or None
        With early stopping, the best validation loss; else None.
    coefs_, intercepts_ : list of ndarray
        Each Dense layer's ``W`` (``(in, out)``) and ``b``, as MLPClassifier's.
    n_features_in_ : int
    """

    _loss_name: str  # set per fit by the subclass's target encoding

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        momentum: float = 0.9,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        random_state: Any = None,
        verbose: bool | int = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.momentum = momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ checking
    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            sizes = list(sizes)
        except TypeError:
            sizes = [None]
        for size in sizes:
            is_int = isinstance(size, numbers.Integral) and not isinstance(size, bool)
            if not is_int or size < 1:
                raise ValueError(
                    "hidden_layer_sizes: expected positive integers. "
                    f"Received: {self.hidden_layer_sizes!r}"
                )
        return [int(size) for size in sizes]

    def _activation_name(self) -> str:
        name = SKLEARN_ACTIVATIONS.get(self.activation, self.activation)
        if name not in ACTIVATIONS or name == "softmax":
            choices = sorted({*SKLEARN_ACTIVATIONS, *ACTIVATIONS} - {"softmax"})
            raise ValueError(
                f"activation: expected one of {choices}. Received: {self.activation!r}"
            )
        return name

    def _check_params(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(
                f"solver: expected one of {list(SOLVERS)}. Received: {self.solver!r}"
            )
        if self.batch_size != "auto":
            _check_number("batch_size", self.batch_size, 1, integer=True)
        for name in ("max_iter", "n_iter_no_change"):
            _check_number(name, getattr(self, name), 1, integer=True)
        for name in ("alpha", "tol", "momentum"):
            _check_number(name, getattr(self, name), 0.0)
        _check_number("learning_rate_init", self.learning_rate_init, 1e-300)
        _check_number("epsilon", self.epsilon, 1e-300)
        for name in ("beta_1", "beta_2", "validation_fraction"):
            value = getattr(self, name)
            _check_number(name, value, 0.0)
            if not value < 1:
                raise ValueError(
                    f"{name}: expected a number in [0, 1). Received: {value!r}"
                )

    # ------------------------------------------------------------ training
    def _encode_targets(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        """``(targets as the loss takes them, outputs)``; sets ``_loss_name``."""
        raise NotImplementedError

    def _optimizer(self) -> Any:
        if self.solver == "sgd":
            return SGD(self.learning_rate_init, momentum=self.momentum)
        return Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)

    def _fit(self, X: Any, y: Any, multi_output: bool) -> NNEstimator:
        X, y = validate_data(
            self,
            X,
            y,
            dtype=np.float64,
            multi_output=multi_output,
            y_numeric=multi_output,
        )
        self._check_params()
        hidden, activation = self._hidden_sizes(), self._activation_name()
        targets, outputs = self._encode_targets(y)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        X_val = y_val = stratify = None
        if self.early_stopping:
            stratify = y if self._loss_name != "mse" else None
            X, X_val, targets, y_val = train_test_split(
                X,
                targets,
                test_size=self.validation_fraction,
                random_state=seed,
                stratify=stratify,
            )
        n_samples = len(X)
        batch_size = AUTO_BATCH if self.batch_size == "auto" else self.batch_size
        batch_size = min(batch_size, n_samples)
        model = build_mlp(
            [X.shape[1], *hidden, outputs],
            self._loss_name,
            self._optimizer(),
            seed=seed,
            activation=activation,
            l2_lambda=self.alpha / (2 * batch_size),
            dtype=DTYPE,
        )
        stopper = NoImprovementStop(
            "val_loss" if self.early_stopping else "loss",
            self.tol,
            self.n_iter_no_change,
            restore_best=self.early_stopping,
        )
        history = model.train(
            X,
            targets,
            epochs=self.max_iter,
            batch_size=batch_size,
            X_val=X_val,
            y_val=y_val,
            verbose=2 if self.verbose else 0,
            callbacks=[stopper],
        )
        self._record(model, history, stopper)
        return self

    def _record(self, model: Any, history: dict, stopper: NoImprovementStop) -> None:
        self.model_ = model
        self.loss_curve_ = list(history["loss"])
        self.loss_ = self.loss_curve_[-1]
        self.n_iter_ = len(self.loss_curve_)
        self.best_loss_ = float(stopper.best) if self.early_stopping else None
        dense = [layer for layer in model.layers if "W" in layer.params]
        self.coefs_ = [layer.params["W"] for layer in dense]
        self.intercepts_ = [layer.params["b"] for layer in dense]
        if not stopper.stopped:
            warnings.warn(
                f"{type(self).__name__}: maximum iterations ({self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _network_output(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.model_.predict(X)
