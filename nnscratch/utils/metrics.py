"""Classification metrics."""

from __future__ import annotations

import numpy as np

from nnscratch.core.validation import check_positive_int


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

    A sequence output ``(N, T, K)`` with targets ``(N, T)`` (labels) or
    ``(N, T, K)`` (one-hot) is scored per position: the fraction of the
    ``N*T`` positions whose argmax matches.

    Examples
    --------
    >>> import numpy as np
    >>> accuracy(np.array([[1], [0], [1]]), np.array([[0.9], [0.2], [0.4]]))
    0.6666666666666666
    >>> accuracy(np.array([2, 0]), np.array([[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]]))
    0.5
    >>> accuracy(np.array([[2, 0]]), np.array([[[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]]]))
    0.5
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 3 and len(y_true) == len(y_pred):
        # (N, T, K) -> (N*T, K); targets (N, T) -> (N*T,) or (N, T, K) -> (N*T, K)
        K = y_pred.shape[-1]
        y_true = y_true.reshape(-1, K) if y_true.ndim == 3 else y_true.reshape(-1)
        y_pred = y_pred.reshape(-1, K)
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"accuracy: expected as many targets as predictions ({len(y_pred)}). "
            f"Received {len(y_true)}"
        )
    if y_pred.ndim == 1 or y_pred.shape[1] == 1:
        # Binary: targets are 0/1 (or probabilities), shaped (N,) or (N, 1).
        true_classes = (y_true.reshape(len(y_true)) > 0.5).astype(np.intp)
    elif y_true.ndim == 1:
        true_classes = y_true.astype(np.intp, copy=False)
    else:
        true_classes = np.argmax(y_true, axis=1)  # one-hot (N, K) -> (N,)
    hits = int(np.count_nonzero(predicted_classes(y_pred) == true_classes))
    return hits / len(true_classes) if len(true_classes) else float("nan")


def _class_labels(name: str, y: np.ndarray) -> np.ndarray:
    """Class indices ``(N,)`` from labels, one column ``(N, 1)`` or rows ``(N, K)``.

    A 1-D array holds the labels themselves. One column is a 0/1 target or a
    sigmoid probability (class 1 when ``> 0.5``); ``K`` columns are one-hot
    rows or class scores (the argmax).
    """
    if y.ndim == 2 and y.shape[1] == 1:
        return (y[:, 0] > 0.5).astype(np.intp)
    if y.ndim == 2:
        return np.argmax(y, axis=1)  # (N, K) -> (N,)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.number):
        raise ValueError(
            f"{name}: expected labels (N,) or rows (N, K) of numbers. Received "
            f"shape {y.shape}, dtype {y.dtype}"
        )
    whole = np.isfinite(y) & (y >= 0) & (y == np.round(y))
    if not whole.all():
        raise ValueError(
            f"{name}: expected whole-number class labels >= 0. Received "
            f"{y[~whole][0]!r} among them"
        )
    return y.astype(np.intp)


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int | None = None
) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Parameters
    ----------
    y_true : ndarray of shape (N,), (N, 1) or (N, K)
        Integer labels, 0/1 targets, or one-hot rows.
    y_pred : ndarray of shape (N,), (N, 1) or (N, K)
        Predicted labels, one sigmoid probability, or K class scores.
    num_classes : int, optional
        ``K``; by default the number of columns of ``y_pred`` or ``y_true``
        (2 for a single column) or the largest label + 1, whichever is larger.

    Returns
    -------
    ndarray of shape (K, K), int64
        Entry ``[i, j]`` counts the samples of true class ``i`` predicted as
        ``j``: rows are the truth, as in scikit-learn; the diagonal is correct.

    Examples
    --------
    >>> import numpy as np
    >>> confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]))
    array([[1, 0, 0],
           [0, 0, 1],
           [0, 1, 1]])
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim == 0 or y_pred.ndim == 0 or len(y_true) != len(y_pred):
        raise ValueError(
            "confusion_matrix: expected as many targets as predictions. Received "
            f"shapes {y_true.shape} and {y_pred.shape}"
        )
    true_classes = _class_labels("y_true", y_true)
    pred_classes = _class_labels("y_pred", y_pred)
    largest = int(max(true_classes.max(initial=0), pred_classes.max(initial=0)))
    if num_classes is None:
        # One column means two classes (0/1); K columns mean K classes.
        widths = [max(y.shape[1], 2) for y in (y_true, y_pred) if y.ndim == 2]
        num_classes = max([*widths, largest + 1])
    num_classes = check_positive_int("num_classes", num_classes)
    if largest >= num_classes:
        raise ValueError(
            f"confusion_matrix: expected classes in [0, {num_classes}). "
            f"Received class {largest}"
        )
    # Pair (i, j) -> flat index i*K + j; one bincount counts every pair at once.
    flat = true_classes * num_classes + pred_classes
    counts = np.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)  # (K*K,) -> (K, K)
