"""NNClassifier and NNRegressor: nnscratch networks as scikit-learn estimators."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets

from nnscratch.sklearn._base import NNEstimator

__all__ = ["NNClassifier", "NNRegressor"]


class NNClassifier(ClassifierMixin, NNEstimator):
    """A multi-layer perceptron classifier, as ``sklearn.neural_network.MLPClassifier``.

    Two classes get one sigmoid output and the BCE loss, more get a softmax
    output and the CCE loss (MLPClassifier's log-loss either way). Parameters
    and attributes are those of :class:`NNEstimator`, plus ``classes_``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_iris(return_X_y=True)
    >>> net = NNClassifier(max_iter=1000, learning_rate_init=0.01, random_state=0)
    >>> clf = make_pipeline(StandardScaler(), net)
    >>> clf.fit(X, y).score(X, y) > 0.95  # converged: no warning
    True
    >>> net.n_iter_ < 1000
    True
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    """

    def fit(self, X: Any, y: Any) -> NNClassifier:
        """Train on ``X`` of shape (n_samples, n_features) and labels ``y``."""
        return self._fit(X, y, multi_output=False)

    def _encode_targets(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__}: expected at least 2 classes in y. "
                f"Received 1 class: {self.classes_[0]!r}"
            )
        codes = encoder.transform(y)
        if len(self.classes_) == 2:
            self._loss_name = "bce"
            return codes.reshape(-1, 1).astype(np.float64), 1  # (N,) -> (N, 1)
        self._loss_name = "cce"
        return codes, len(self.classes_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in ``classes_`` order."""
        probabilities = self._network_output(X)
        if probabilities.shape[1] == 1:  # one sigmoid: P(classes_[1])
            probabilities = np.hstack([1.0 - probabilities, probabilities])
        return probabilities

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample, shape (n_samples,)."""
        probabilities = self.predict_proba(X)  # checks that fit ran
        return self.classes_[np.argmax(probabilities, axis=1)]


class NNRegressor(RegressorMixin, NNEstimator):
    """A multi-layer perceptron regressor, as ``sklearn.neural_network.MLPRegressor``.

    Linear outputs (one per target column) and the MSE loss. Parameters and
    attributes are those of :class:`NNEstimator`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> y = 2 * X.ravel() + 0.5
    >>> reg = NNRegressor(hidden_layer_sizes=(16,), max_iter=1000, random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.95  # converged: no warning
    True
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    def fit(self, X: Any, y: Any) -> NNRegressor:
        """Train on ``X`` of shape (n_samples, n_features) and targets ``y``
        of shape (n_samples,) or (n_samples, n_targets)."""
        return self._fit(X, y, multi_output=True)

    def _encode_targets(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        self._loss_name = "mse"
        targets = y.reshape(len(y), -1)  # (N,) -> (N, 1); (N, K) stays
        return targets, targets.shape[1]

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, (n_samples,) or (n_samples, n_targets) as ``y`` was."""
        output = self._network_output(X)
        return output.ravel() if output.shape[1] == 1 else output

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
