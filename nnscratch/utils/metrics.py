"""Classification metrics."""

from __future__ import annotations

import numpy as np


def predicted_classes(y_pred: np.ndarray) -> np.ndarray:
    """Class indices ``(N,)`` from network outputs.

    One output column is a sigmoid probability: class 1 when ``p > 0.5``.
    Several columns are class scores: the argmax.
    """
    if y_pred.ndim == 1 or y_pred.shape[1] == 1:
        return (y_pred.reshape(len(y_pred)) > 0.5).astype(np.intp)
    return np.argmax(y_pred, axis=1)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of samples whose predicted class matches the target.

    Parameters
    ----------
    y_true : ndarray of shape (N,), (N, 1) or (N, K)
        Integer labels, binary targets, or one-hot rows.
    y_pred : ndarray of shape (N, 1) or (N, K)
        Network outputs: one sigmoid probability (class 1 when ``p > 0.5``),
        or K class scores (the argmax is the class).

    Examples
    --------
    >>> import numpy as np
    >>> accuracy(np.array([[1], [0], [1]]), np.array([[0.9], [0.2], [0.4]]))
    0.6666666666666666
    >>> accuracy(np.array([2, 0]), np.array([[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]]))
    0.5
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"accuracy: expected as many targets as predictions ({len(y_pred)}). "
            f"Received {len(y_true)}"
        )
    if y_pred.ndim == 1 or y_pred.shape[1] == 1:
        # Binary: targets are 0/1 (or probabilities), shaped (N,) or (N, 1).
        true_classes = (y_true.reshape(len(y_true)) > 0.5).astype(np.intp)
    elif y_true.ndim == 1:
        true_classes = y_true.astype(np.intp)
    else:
        true_classes = np.argmax(y_true, axis=1)  # one-hot (N, K) -> (N,)
    return float(np.mean(predicted_classes(y_pred) == true_classes))
