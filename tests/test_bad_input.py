"""Bad input: a ValueError naming what was expected and what came; nothing changes."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import SGD, Activation, Adam, Dense, Dropout, NeuralNetwork
from nnscratch.utils.data import get_toy_data


def binary_model():
    model = NeuralNetwork(loss_name="bce", optimizer=Adam(0.01), seed=0)
    model.add(Dense(2, 4))
    model.add(Activation("relu"))
    model.add(Dense(4, 1))
    model.add(Activation("sigmoid"))
    return model


def multiclass_model():
    model = NeuralNetwork(loss_name="cce", optimizer=Adam(0.01), seed=0)
    model.add(Dense(2, 3))
    model.add(Activation("softmax"))
    return model


@pytest.fixture
def data():
    X, y, _, _ = get_toy_data(n_samples=40)
    return X, y


def assert_unchanged(model, before):
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == 0


def nan_in(X):
    X = X.copy()
    X[3, 1] = np.nan
    return X


TRAIN_CASES = {
    "wrong feature count": (
        lambda X, y: (X[:, :1], y),
        r"Dense: expected input of shape \(N, 2\). Received shape \(N, 1\)",
    ),
    "1-D X": (
        lambda X, y: (X[:, 0], y),
        r"X: expected an array with at least 2 dimension",
    ),
    "NaN in X": (lambda X, y: (nan_in(X), y), r"X: expected finite values"),
    "inf in y": (
        lambda X, y: (X, np.where(y > 0, np.inf, y)),
        r"y: expected finite values",
    ),
    "length mismatch": (
        lambda X, y: (X, y[:-1]),
        r"y: expected 32 targets, one per row of X. Received 31",
    ),
    "label out of range": (
        lambda X, y: (X, y * 2),
        r"bce targets: expected values in \[0, 1\]. Received values from 0.0 to 2.0",
    ),
    "wrong target columns": (
        lambda X, y: (X, np.hstack([y, y])),
        r"bce targets: expected shape \('N', 1\).*Received shape \(32, 2\)",
    ),
    "strings": (
        lambda X, y: (X.astype(str), y),
        r"X: expected an array of real numbers",
    ),
    "empty": (lambda X, y: (X[:0], y[:0]), r"X: expected at least one sample"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train_rejects_bad_data_before_any_change(case, data):
    corrupt, message = TRAIN_CASES[case]
    model = binary_model()
    before = model.get_weights()
    X, y = corrupt(*data)
    with pytest.raises(ValueError, match=message):
        model.train(X, y, epochs=2, verbose=0)
    assert_unchanged(model, before)


CCE_LABELS = {
    "label too large": (
        np.array([0, 1, 3]),
        r"integer labels in \[0, 3\). Received values from 0 to 3",
    ),
    "negative label": (np.array([0, -1, 2]), r"integer labels in \[0, 3\)"),
    "fractional label": (np.array([0.0, 1.5, 2.0]), r"integer labels"),
    "labels shaped (N, 1)": (
        np.array([[0], [1], [2]]),
        r"one-hot rows of shape \(N, 3\) or integer labels of shape \(N,\). "
        r"Received shape \(3, 1\)",
    ),
    "rows not summing to 1": (
        np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]]),
        r"each summing to 1",
    ),
    "negative one-hot": (
        np.array([[2, -1, 0], [0, 1, 0], [0, 0, 1]]),
        r"one-hot rows \(non-negative",
    ),
}


@pytest.mark.parametrize("case", sorted(CCE_LABELS))
def test_cce_rejects_labels_that_do_not_fit(case):
    labels, message = CCE_LABELS[case]
    model = multiclass_model()
    before = model.get_weights()
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match=message):
        model.train(X, labels, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.evaluate(X, labels)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, r"epochs: expected a positive integer. Received: 0"),
        ({"epochs": 2.5}, r"epochs: expected a positive integer. Received: 2.5"),
        ({"batch_size": -1}, r"batch_size: expected a positive integer. Received: -1"),
        (
            {"batch_size": None},
            r"batch_size: expected a positive integer. Received: None",
        ),
        (
            {"batch_size": True},
            r"batch_size: expected a positive integer. Received: True",
        ),
        ({"verbose": -1}, r"verbose: expected 0, 1 or 2. Received: -1"),
        (
            {"early_stopping_patience": 3},
            r"early_stopping_patience: expected validation data",
        ),
        (
            {"early_stopping_patience": 0, "X_val": "v", "y_val": "v"},
            r"patience: expected a positive integer. Received: 0",
        ),
        (
            {"X_val": "v"},
            r"X_val, y_val: expected both arrays. Received X_val=array, y_val=None",
        ),
    ],
)
def test_train_rejects_bad_arguments(kwargs, message, data):
    X, y = data
    kwargs = {
        k: (X if k == "X_val" else y) if v == "v" else v for k, v in kwargs.items()
    }
    model = binary_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=message):
        model.train(X, y, **{"epochs": 1, "verbose": 0, **kwargs})
    assert_unchanged(model, before)


def test_bad_validation_data_is_rejected_before_training(data):
    X, y = data
    model = binary_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"X_val: expected finite values"):
        model.train(X, y, epochs=1, X_val=nan_in(X), y_val=y, verbose=0)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Activation("relu6"),
            r"activation: expected one of \[.*'relu', 'sigmoid', 'softmax'.*'tanh'\]. "
            r"Received: 'relu6'",
        ),
        (
            lambda: NeuralNetwork(loss_name="foo"),
            r"loss_name: expected one of \['bce', 'cce', 'mse'\]. Received: 'foo'",
        ),
        (
            lambda: NeuralNetwork(loss_name="mse", dtype="float16"),
            r"dtype: expected one of \['float32', 'float64'\]. Received: 'float16'",
        ),
        (
            lambda: NeuralNetwork(loss_name="mse", dtype="nonsense"),
            r"dtype: expected one of",
        ),
        (
            lambda: NeuralNetwork(loss_name="mse", optimizer="adam"),
            r"optimizer: expected an Optimizer",
        ),
        (
            lambda: NeuralNetwork(loss_name="mse", seed=1.5),
            r"seed: expected an integer or None. Received: 1.5",
        ),
        (lambda: Dense(0, 3), r"input_size: expected a positive integer. Received: 0"),
        (
            lambda: Dense(2, 3.0),
            r"output_size: expected a positive integer. Received: 3.0",
        ),
        (
            lambda: Dense(2, 3, initialization="glorot"),
            r"initialization: expected one of \['he', 'random_normal', 'xavier'\]. "
            r"Received: 'glorot'",
        ),
        (
            lambda: Dense(2, 3, l2_lambda=-0.1),
            r"l2_lambda: expected a number in \[0.0, inf\]. Received: -0.1",
        ),
        (lambda: Dense(2, 3, l2_lambda=float("nan")), r"l2_lambda: expected a number"),
        (
            lambda: Dropout(1.0),
            r"rate: expected a number in \[0.0, 1.0\). Received: 1.0",
        ),
        (lambda: Dropout(-0.2), r"rate: expected a number in \[0.0, 1.0\)"),
        (
            lambda: SGD(learning_rate=-0.1),
            r"learning_rate: expected a number in \[0.0, inf\]. Received: -0.1",
        ),
        (
            lambda: SGD(momentum=1.0),
            r"momentum: expected a number in \[0.0, 1.0\). Received: 1.0",
        ),
        (lambda: Adam(beta1=1.0), r"beta1: expected a number in \[0.0, 1.0\)"),
        (
            lambda: Adam(beta2="0.9"),
            r"beta2: expected a number in \[0.0, 1.0\). Received: '0.9'",
        ),
        (lambda: Adam(epsilon=0.0), r"epsilon: expected a number in \(0.0, inf\]"),
    ],
)
def test_constructors_reject_bad_values(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_add_rejects_a_non_layer():
    model = binary_model()
    with pytest.raises(ValueError, match=r"add: expected a Layer .* Received: 'relu'"):
        model.add("relu")
    assert len(model.layers) == 4


def test_predict_and_evaluate_reject_bad_input():
    model = binary_model()
    with pytest.raises(
        ValueError,
        match=r"Dense: expected input of shape \(N, 2\). Received shape \(N, 3\)",
    ):
        model.predict(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"X: expected finite values"):
        model.predict(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match=r"y: expected 2 targets"):
        model.evaluate(np.zeros((2, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"the model has no layers"):
        NeuralNetwork(loss_name="mse").predict(np.zeros((2, 2)))


def test_optimizer_rejects_mismatched_gradients_without_updating():
    w = np.ones(3)
    optimizer = SGD(0.1)
    with pytest.raises(
        ValueError,
        match=r"expected gradients of shapes \[\(3,\)\]. Received \[\(2,\)\]",
    ):
        optimizer.step([w], [np.ones(2)])
    np.testing.assert_array_equal(w, 1.0)
    optimizer.step([w], [np.ones(3)])
    with pytest.raises(
        ValueError,
        match=r"expected parameters of shapes \[\(3,\)\], as in earlier steps",
    ):
        optimizer.step([np.ones(4)], [np.ones(4)])


def test_diverging_loss_stops_training_and_keeps_last_good_weights():
    # With this learning rate the weights blow up within a few steps; training
    # stops with a message naming the epoch and batch, and keeps weights that
    # are still finite (those of the last step whose loss was finite).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)) * 100
    model = NeuralNetwork(loss_name="mse", optimizer=SGD(learning_rate=10.0), seed=0)
    model.add(Dense(3, 8))
    model.add(Activation("relu"))
    model.add(Dense(8, 1))
    with pytest.warns(
        RuntimeWarning,
        match=r"Training stopped at epoch \d+, batch \d+: (the loss is|a gradient)",
    ):
        history = model.train(X, X[:, :1] ** 3, epochs=50, batch_size=8, verbose=0)
    assert len(history.get("loss", [])) < 50
    assert all(np.isfinite(w).all() for w in model.get_weights())


# -------------------------------------------------- losses called directly
LOSS_METHODS = {
    "mse": ["__call__", "gradient"],
    "bce": [
        "__call__",
        "gradient",
        "value_from_logits",
        "gradient_from_logits",
        "value_and_gradient_from_logits",
        "value_gradient_and_output_from_logits",
    ],
}
LOSS_METHODS["cce"] = LOSS_METHODS["bce"]
LOSS_CALLS = [(name, method) for name in LOSS_METHODS for method in LOSS_METHODS[name]]


def make_loss(name):
    from nnscratch.losses.losses import get_loss

    return get_loss(name)


# CCE takes (N,) targets as integer labels, so only MSE and BCE here.
@pytest.mark.parametrize("name, method", [c for c in LOSS_CALLS if c[0] != "cce"])
def test_a_column_of_targets_fits_a_column_of_outputs_without_broadcasting(
    name, method
):
    # Before: MSE()(y_pred (N, 1), y_true (N,)) broadcast silently to (N, N).
    loss = make_loss(name)
    rng = np.random.default_rng(0)
    y_pred = rng.uniform(0.1, 0.9, (6, 1))
    y_true = rng.integers(0, 2, 6).astype(float)
    flat = getattr(loss, method)(y_pred, y_true)
    column = getattr(loss, method)(y_pred, y_true.reshape(-1, 1))
    flat, column = (x if isinstance(x, tuple) else (x,) for x in (flat, column))
    for a, b in zip(flat, column, strict=True):
        assert np.shape(a) == np.shape(b) and np.shape(a) in [(), (6, 1)]
        np.testing.assert_array_equal(a, b)


MISFITS = {
    # name: [(y_pred shape, y_true shape, message), ...]
    "mse": [
        ((8, 1), (8, 2), r"mse targets: expected shape \('N', 1\).*Received shape "
         r"\(8, 2\)"),
        ((8,), (8, 1), r"mse targets: expected shape \('N',\).*Received shape "
         r"\(8, 1\)"),
        ((8, 1), (7, 1), r"mse targets: expected shape \(8, 1\) to match y_pred "
         r"\(the same number of samples\). Received shape \(7, 1\)"),
        ((8, 3), (8,), r"mse targets: expected shape \('N', 3\).*Received shape "
         r"\(8,\)"),
    ],
    "bce": [
        ((8, 1), (8, 8), r"bce targets: expected shape \('N', 1\).*Received shape "
         r"\(8, 8\)"),
        ((8, 1), (9,), r"bce targets: expected shape \(8, 1\) to match y_pred.*"
         r"Received shape \(9,\)"),
    ],
    "cce": [
        ((8, 3), (8, 4), r"cce targets: expected one-hot rows of shape \(8, 3\) or "
         r"integer labels of shape \(8,\) for y_pred of shape \(8, 3\). Received "
         r"y_true of shape \(8, 4\)"),
        ((8, 3), (7,), r"cce targets: expected .*labels of shape \(8,\).*Received "
         r"y_true of shape \(7,\)"),
        ((8, 3), (8, 1), r"Received y_true of shape \(8, 1\)"),
        ((8,), (8,), r"cce targets: expected one-hot rows of shape \(N, K\).*"
         r"for y_pred of shape \(8,\)"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("name, method", LOSS_CALLS)
def test_losses_called_directly_reject_targets_that_do_not_fit(name, method):
    loss = make_loss(name)
    for pred_shape, true_shape, message in MISFITS[name]:
        y_pred = np.full(pred_shape, 0.5)
        y_true = np.zeros(true_shape)
        with pytest.raises(ValueError, match=message):
            getattr(loss, method)(y_pred, y_true)
        np.testing.assert_array_equal(y_pred, 0.5)  # nothing changed
