"""Loss functions and the name -> loss lookup.

Every loss is a mean over the batch, so the learning rate does not have to
change with the batch size. Each class gives the value, its gradient with
respect to the network output, and the checks its targets must pass. A loss
that has a natural output activation (sigmoid for BCE, softmax for CCE) can
also be computed from the logits before that activation, which stays exact
where the probabilities underflow.

Called directly, every loss checks that ``y_true`` fits ``y_pred`` (one
comparison of shapes, so the model's calls, with targets it already checked,
cost nothing more): a mismatch would otherwise broadcast silently, e.g.
``(N, 1)`` against ``(N,)`` into ``(N, N)``. Terms that can reach the float
limit are summed in float64, so a float32 batch of extreme but finite terms
gives its finite mean.
"""

from __future__ import annotations

import numpy as np

from nnscratch.core.functional import shift_by_row_max, sigmoid, softplus
from nnscratch.core.validation import lookup

PROBABILITY_FLOOR = 1e-7
"""Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` before a log (Keras's epsilon)."""


def _shape_like_output(
    name: str, y_true: np.ndarray, output_shape: tuple, dtype: np.dtype
) -> np.ndarray:
    """Return targets shaped like the output in ``dtype``; ``(N,)`` fits ``(N, 1)``."""
    if y_true.ndim == 1 and tuple(output_shape[1:]) == (1,):
        y_true = y_true.reshape(-1, 1)  # (N,) -> (N, 1)
    if y_true.shape[1:] != tuple(output_shape[1:]):
        expected = ("N",) + tuple(output_shape[1:])
        raise ValueError(
            f"{name} targets: expected shape {expected} to match the network "
            f"output. Received shape {y_true.shape}"
        )
    return y_true.astype(dtype, copy=False)


def _as_array(values: object) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else np.asarray(values)


class Loss:
    """Base class: ``loss(y_pred, y_true)`` is a float, ``gradient`` its derivative."""

    name = ""
    output_activation: str | None = None
    """The activation whose logits :meth:`value_from_logits` accepts, if any."""

    def __call__(self, y_pred: np.ndarray, y_true: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        """``dL/dy_pred``, of the shape of ``y_pred``."""
        raise NotImplementedError

    def value_gradient_and_output_from_logits(
        self, logits: np.ndarray, y_true: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Loss, ``dL/dlogits`` and the activated output (``output_activation``
        of the logits) from one pass: what a training step needs (a loss
        with a logit path only)."""
        raise NotImplementedError

    def value_and_gradient_from_logits(
        self, logits: np.ndarray, y_true: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Loss and ``dL/dlogits`` together (a loss with a logit path only)."""
        value, gradient, _ = self.value_gradient_and_output_from_logits(logits, y_true)
        return value, gradient

    def fit_targets(
        self, y_pred: np.ndarray, y_true: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(y_pred, y_true)`` as arrays, ``y_true`` shaped like ``y_pred``.

        Equal shapes pass after one comparison; ``(N,)`` targets fit an
        ``(N, 1)`` output (as in :meth:`check_targets`); anything else is a
        ``ValueError`` naming both shapes.
        """
        y_pred, y_true = _as_array(y_pred), _as_array(y_true)
        if y_true.shape == y_pred.shape:
            return y_pred, y_true
        if y_pred.ndim >= 1 and y_true.shape[:1] == y_pred.shape[:1]:
            # The same check as for the model's data, by trailing dimensions.
            return y_pred, _shape_like_output(
                self.name, y_true, y_pred.shape, y_true.dtype
            )
        raise ValueError(
            f"{self.name} targets: expected shape {y_pred.shape} to match y_pred "
            f"(the same number of samples). Received shape {y_true.shape}"
        )

    def check_targets(
        self, y_true: np.ndarray, output_shape: tuple, dtype: np.dtype
    ) -> np.ndarray:
        """Return ``y_true`` in the form this loss takes, or raise ``ValueError``.

        ``output_shape`` is the network's output shape; float targets are
        returned in ``dtype``.
        """
        return _shape_like_output(self.name, y_true, output_shape, dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSE(Loss):
    """Mean squared error over all elements.

    Notes
    -----
    With ``M`` the number of elements of ``p`` (``N * K``):

    - ``L = sum((p - y)**2) / M``
    - ``dL/dp = 2 * (p - y) / M``

    Examples
    --------
    >>> import numpy as np
    >>> MSE()(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))  # (1 + 4) / 2
    2.5
    """

    name = "mse"

    def __call__(self, y_pred: np.ndarray, y_true: np.ndarray) -> float:
        y_pred, y_true = self.fit_targets(y_pred, y_true)
        return float(np.mean((y_pred - y_true) ** 2))

    def gradient(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        y_pred, y_true = self.fit_targets(y_pred, y_true)
        return 2.0 * (y_pred - y_true) / y_pred.size


class BCE(Loss):
    """Binary cross-entropy of probabilities, mean over all elements.

    Notes
    -----
    With ``q = clip(p, 1e-7, 1 - 1e-7)`` (so neither log sees 0) and ``M``
    elements:

    - ``L = -sum(y log q + (1 - y) log(1 - q)) / M``
    - ``dL/dp = (q - y) / (q (1 - q)) / M`` where ``p`` is inside the clip
      range, 0 outside it (the clip is flat there)
    - from logits ``z`` (``p = sigmoid(z)``), exactly and without a clip:
      ``L = sum(softplus(z) - y z) / M``, ``dL/dz = (sigmoid(z) - y) / M``

    Examples
    --------
    >>> import numpy as np
    >>> round(BCE()(np.array([[0.5]]), np.array([[1.0]])), 6)  # -log(0.5)
    0.693147
    """

    name = "bce"
    output_activation = "sigmoid"

    def __call__(self, y_pred: np.ndarray, y_true: np.ndarray) -> float:
        y_pred, y_true = self.fit_targets(y_pred, y_true)
        q = np.clip(y_pred, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
        return float(-np.mean(y_true * np.log(q) + (1.0 - y_true) * np.log1p(-q)))

    def gradient(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        y_pred, y_true = self.fit_targets(y_pred, y_true)
        inside = (y_pred >= PROBABILITY_FLOOR) & (y_pred <= 1.0 - PROBABILITY_FLOOR)
        q = np.clip(y_pred, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
        return inside * (q - y_true) / (q * (1.0 - q)) / y_pred.size

    def value_from_logits(self, logits: np.ndarray, y_true: np.ndarray) -> float:
        logits, y_true = self.fit_targets(logits, y_true)
        # -log(sigmoid(z)) = softplus(-z) and -log(1 - sigmoid(z)) = softplus(z),
        # so y softplus(-z) + (1 - y) softplus(z) = softplus(z) - y z. Each
        # term is finite, but terms near 3e38 would overflow a float32 sum.
        return float(np.mean(softplus(logits) - y_true * logits, dtype=np.float64))

    def gradient_from_logits(
        self, logits: np.ndarray, y_true: np.ndarray
    ) -> np.ndarray:
        return self.value_gradient_and_output_from_logits(logits, y_true)[1]

    def value_gradient_and_output_from_logits(
        self, logits: np.ndarray, y_true: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        value = self.value_from_logits(logits, y_true)
        fitted, y_true = self.fit_targets(logits, y_true)
        p = sigmoid(fitted)
        return value, (p - y_true) / fitted.size, p.reshape(np.shape(logits))

    def check_targets(
        self, y_true: np.ndarray, output_shape: tuple, dtype: np.dtype
    ) -> np.ndarray:
        y_true = _shape_like_output(self.name, y_true, output_shape, dtype)
        if y_true.min() < 0 or y_true.max() > 1:
            raise ValueError(
                "bce targets: expected values in [0, 1]. Received values from "
                f"{y_true.min()} to {y_true.max()}"
            )
        return y_true


class CCE(Loss):
    """Categorical cross-entropy, mean over samples of the sum over classes.

    Targets are one-hot (or soft) rows ``(N, K)`` or integer labels ``(N,)``
    in ``[0, K)``, turned into one-hot rows. A sequence output ``(N, T, K)``
    (a language model's next-token scores) takes integer targets ``(N, T)``
    or one-hot ``(N, T, K)``: every one of the ``M = N*T`` positions is a
    sample, and the loss is the mean over all of them (as torch's
    ``cross_entropy`` on the flattened ``(N*T, K)`` scores).

    Notes
    -----
    With ``q = max(p, 1e-7)`` (so the log never sees 0) and ``M`` positions
    (``N``, or ``N*T`` for sequences):

    - ``L = -sum_m sum_k y_mk log q_mk / M``
    - ``dL/dp = -y / q / M`` where ``p >= 1e-7``, 0 below (the clip is flat)
    - from logits ``z`` (``p = softmax(z)``), exactly:
      ``L = -sum(y * log_softmax(z)) / M``, ``dL/dz = (softmax(z) - y) / M``
      (using that each row of ``y`` sums to 1)

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.5, 0.5], [0.25, 0.75]])
    >>> round(CCE()(p, np.array([0, 1])), 6)  # -(log 0.5 + log 0.75) / 2
    0.490415
    >>> round(CCE()(p[None], np.array([[0, 1]])), 6)  # one sequence of 2 steps
    0.490415
    """

    name = "cce"
    output_activation = "softmax"

    def __call__(self, y_pred: np.ndarray, y_true: np.ndarray) -> float:
        y_pred, y_true = self._positions(y_pred, y_true)
        y_true = self._one_hot(y_true, y_pred)
        q = np.maximum(y_pred, PROBABILITY_FLOOR)
        return float(-np.sum(y_true * np.log(q)) / len(y_pred))

    def gradient(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        shape = np.shape(y_pred)
        y_pred, y_true = self._positions(y_pred, y_true)
        y_true = self._one_hot(y_true, y_pred)
        inside = y_pred >= PROBABILITY_FLOOR
        grad = -(inside * y_true) / np.maximum(y_pred, PROBABILITY_FLOOR)
        return (grad / len(y_pred)).reshape(shape)  # (M, K) -> the output's shape

    def value_from_logits(self, logits: np.ndarray, y_true: np.ndarray) -> float:
        logits, y_true = self._positions(logits, y_true)
        shifted, exponentials = self._shifted_and_exponentials(logits)
        log_sums = np.log(exponentials.sum(axis=-1, keepdims=True))
        return self._mean_negative_log_likelihood(shifted, log_sums, y_true)

    def gradient_from_logits(
        self, logits: np.ndarray, y_true: np.ndarray
    ) -> np.ndarray:
        return self.value_gradient_and_output_from_logits(logits, y_true)[1]

    def value_gradient_and_output_from_logits(
        self, logits: np.ndarray, y_true: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        # One exponential serves all three: normalised it is the softmax,
        # and the log of its row sums normalises the log-softmax. Integer
        # labels are used as indices, never expanded to one-hot rows.
        shape = np.shape(logits)
        logits, y_true = self._positions(logits, y_true)
        shifted, p = self._shifted_and_exponentials(logits)
        sums = p.sum(axis=-1, keepdims=True)  # (M, 1), each at least exp(0) = 1
        p /= sums  # the softmax, (M, K)
        loss = self._mean_negative_log_likelihood(shifted, np.log(sums), y_true)
        grad = p.copy()  # becomes (p - y) / M in place
        if y_true.ndim == 1:
            grad[np.arange(len(grad)), y_true.astype(np.intp, copy=False)] -= 1.0
        else:
            grad -= y_true
        grad /= len(grad)
        return loss, grad.reshape(shape), p.reshape(shape)  # the output's shape

    @staticmethod
    def _shifted_and_exponentials(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``z - max(z)`` per row (:func:`~nnscratch.core.functional.shift_by_row_max`:
        the largest exponent is 0, nothing overflows) and its exponentials,
        both ``(M, K)``. Then ``log p = shifted - log(sum of exponentials)``,
        exact wherever it is representable."""
        shifted = shift_by_row_max(logits)
        return shifted, np.exp(shifted)

    @staticmethod
    def _mean_negative_log_likelihood(
        shifted: np.ndarray, log_sums: np.ndarray, y_true: np.ndarray
    ) -> float:
        """``-sum_m sum_k y_mk log p_mk / M``, ``log p = shifted - log_sums``
        (``(M, K)`` and ``(M, 1)``), formed only at the labels' entries for
        integer labels.

        Summed in float64: log-probabilities near the float32 limit (logits
        of +-3e38) would overflow a float32 sum whose mean is finite.
        """
        if y_true.ndim == 1:
            labels = y_true.astype(np.intp, copy=False)
            # (M, K) -> (M,): log p at each row's label
            picked = shifted[np.arange(len(shifted)), labels] - log_sums[:, 0]
            return float(-picked.sum(dtype=np.float64) / len(shifted))
        log_p = shifted - log_sums
        return float(-np.sum(y_true * log_p, dtype=np.float64) / len(shifted))

    def _positions(
        self, y_pred: np.ndarray, y_true: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Checked pair, every position a row: ``(M, K)`` and ``(M,)`` or ``(M, K)``.

        A sequence ``(N, T, K)`` becomes ``(N*T, K)`` (a view), its targets
        ``(N*T,)`` or ``(N*T, K)``; ``(N, K)`` outputs pass unchanged.
        """
        y_pred, y_true = self.fit_targets(y_pred, y_true)
        if y_pred.ndim == 2:
            return y_pred, y_true
        K = y_pred.shape[-1]
        rows = y_pred.reshape(-1, K)  # (N, T, K) -> (N*T, K)
        if y_true.ndim == y_pred.ndim:
            return rows, y_true.reshape(-1, K)  # one-hot (N, T, K) -> (N*T, K)
        return rows, y_true.reshape(-1)  # labels (N, T) -> (N*T,)

    def fit_targets(
        self, y_pred: np.ndarray, y_true: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(y_pred, y_true)`` as arrays if ``y_true`` fits ``y_pred``.

        ``y_pred`` is ``(N, K)`` or ``(N, T, K)``; ``y_true`` one-hot of the
        same shape, or labels without the last axis (``(N,)`` or ``(N, T)``).
        Shapes only: label values are checked by :meth:`check_targets`.
        """
        y_pred, y_true = _as_array(y_pred), _as_array(y_true)
        if y_pred.ndim in (2, 3) and (
            y_true.shape == y_pred.shape or y_true.shape == y_pred.shape[:-1]
        ):
            return y_pred, y_true
        if y_pred.ndim == 3:
            n, t, k = y_pred.shape
            raise ValueError(
                f"cce targets: expected integer labels of shape ({n}, {t}) or "
                f"one-hot of shape ({n}, {t}, {k}) for y_pred of shape "
                f"({n}, {t}, {k}). Received y_true of shape {y_true.shape}"
            )
        n, k = y_pred.shape if y_pred.ndim == 2 else ("N", "K")
        raise ValueError(
            f"cce targets: expected one-hot rows of shape ({n}, {k}) or integer "
            f"labels of shape ({n},) for y_pred of shape ({n}, {k}). Received "
            f"y_true of shape {y_true.shape} for y_pred of shape {y_pred.shape}"
        )

    @staticmethod
    def _one_hot(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Integer labels ``(M,)`` -> one-hot rows ``(M, K)`` in ``y_pred``'s dtype."""
        if y_true.ndim == 2:
            return y_true
        return np.eye(y_pred.shape[-1], dtype=y_pred.dtype)[y_true.astype(np.intp)]

    def check_targets(
        self, y_true: np.ndarray, output_shape: tuple, dtype: np.dtype
    ) -> np.ndarray:
        output_shape = tuple(output_shape)
        if len(output_shape) not in (2, 3):
            raise ValueError(
                "cce: expected a network output of shape (N, K) or (N, T, K). "
                f"Received output shape {output_shape}"
            )
        n_classes = output_shape[-1]
        steps = output_shape[1:-1]  # () for (N, K), (T,) for (N, T, K)
        label_shape = "(N,)" if not steps else f"(N, {steps[0]})"
        row_shape = (
            f"(N, {n_classes})" if not steps else f"(N, {steps[0]}, {n_classes})"
        )
        if y_true.shape[1:] == steps:
            if not np.array_equal(y_true, np.round(y_true)) or (
                y_true.min() < 0 or y_true.max() >= n_classes
            ):
                raise ValueError(
                    f"cce targets: expected integer labels in [0, {n_classes}). "
                    f"Received values from {y_true.min()} to {y_true.max()}"
                )
            return y_true.astype(np.intp)
        if y_true.shape[1:] != output_shape[1:]:
            raise ValueError(
                f"cce targets: expected one-hot rows of shape {row_shape} or "
                f"integer labels of shape {label_shape}. Received shape "
                f"{y_true.shape}"
            )
        row_sums = y_true.sum(axis=-1)
        if y_true.min() < 0 or not np.allclose(row_sums, 1.0, atol=1e-4):
            raise ValueError(
                f"cce targets: expected one-hot rows (non-negative, each summing "
                f"to 1). Received rows summing to {row_sums.min()}..{row_sums.max()}"
            )
        return y_true.astype(dtype, copy=False)


LOSSES: dict[str, type[Loss]] = {"mse": MSE, "bce": BCE, "cce": CCE}


def get_loss(name: str) -> Loss:
    """Return a new loss object by name.

    Examples
    --------
    >>> get_loss("cce")
    CCE()
    >>> get_loss("foo")
    Traceback (most recent call last):
    ...
    ValueError: loss_name: expected one of ['bce', 'cce', 'mse']. Received: 'foo'
    """
    return lookup("loss_name", name, LOSSES)()
