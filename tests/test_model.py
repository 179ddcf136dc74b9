"""NeuralNetwork: training behaviour, history, early stopping, repeatability."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import (
    SGD,
    Activation,
    Adam,
    Dense,
    Dropout,
    EarlyStopping,
    NeuralNetwork,
    get_moons_data,
    get_spirals_data,
    get_toy_data,
)
from nnscratch.utils.metrics import accuracy


def seed_model(seed=0, dtype="float32"):
    """The seed's Basic Usage network (experiments/binary_classification.py)."""
    model = NeuralNetwork(
        loss_name="bce", optimizer=Adam(learning_rate=0.01), seed=seed, dtype=dtype
    )
    model.add(Dense(input_size=2, output_size=16, initialization="he", l2_lambda=0.01))
    model.add(Activation("relu"))
    model.add(Dropout(0.2))
    model.add(Dense(input_size=16, output_size=8, initialization="he", l2_lambda=0.01))
    model.add(Activation("relu"))
    model.add(Dense(input_size=8, output_size=1, initialization="xavier"))
    model.add(Activation("sigmoid"))
    return model


@pytest.fixture(scope="module")
def circles():
    return get_toy_data()


def test_seed_example_reaches_90_percent_validation_accuracy(circles):
    X_train, y_train, X_val, y_val = circles
    model = seed_model()
    history = model.train(
        X_train,
        y_train,
        epochs=150,
        batch_size=32,
        X_val=X_val,
        y_val=y_val,
        early_stopping_patience=20,
        verbose=0,
    )
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == len(history["loss"]) for values in history.values())
    assert history["loss"][-1] < history["loss"][0]
    scores = model.evaluate(X_val, y_val)
    assert scores["accuracy"] >= 0.90
    assert scores["accuracy"] == accuracy(y_val, model.predict(X_val))
    probabilities = model.predict(X_val)
    assert probabilities.shape == (len(X_val), 1)
    assert probabilities.dtype == np.float32
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_same_seed_repeats_weights_and_history_exactly(circles):
    X_train, y_train, X_val, y_val = circles
    runs = []
    for _ in range(2):
        model = seed_model(seed=3)
        history = model.train(
            X_train,
            y_train,
            epochs=5,
            batch_size=16,
            X_val=X_val,
            y_val=y_val,
            verbose=0,
        )
        runs.append((model.get_weights(), history))
    (weights_a, history_a), (weights_b, history_b) = runs
    assert history_a == history_b
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(a, b)
    other = seed_model(seed=4)
    assert not np.array_equal(other.get_weights()[0], weights_a[0])


@pytest.mark.parametrize("batch_size", [1, 7, 32, 800, 5000])
def test_any_batch_size_trains(circles, batch_size):
    X_train, y_train, _, _ = circles
    model = seed_model()
    history = model.train(X_train, y_train, epochs=2, batch_size=batch_size, verbose=0)
    assert len(history["loss"]) == 2
    assert np.isfinite(history["loss"]).all()


def test_last_batch_may_be_smaller():
    seen = []

    class Recorder(Dense):
        def forward(self, x, training=False):
            if training:
                seen.append(len(x))
            return super().forward(x, training)

    model = NeuralNetwork(loss_name="mse", optimizer=SGD(), seed=0)
    model.add(Recorder(3, 1))
    X = np.random.default_rng(0).standard_normal((10, 3))
    model.train(X, X[:, :1], epochs=1, batch_size=4, verbose=0)
    assert seen == [4, 4, 2]


def test_batches_are_shuffled_every_epoch():
    first_rows = []

    class Recorder(Dense):
        def forward(self, x, training=False):
            if training:
                first_rows.append(x[:, 0].copy())
            return super().forward(x, training)

    model = NeuralNetwork(loss_name="mse", optimizer=SGD(), seed=0, dtype="float64")
    model.add(Recorder(1, 1))
    X = np.arange(12.0).reshape(-1, 1)
    model.train(X, X, epochs=2, batch_size=12, verbose=0)
    epoch_one, epoch_two = first_rows
    np.testing.assert_array_equal(np.sort(epoch_one), X[:, 0])
    # Every sample is seen once per epoch; which batch it lands in changes.
    model.train(X, X, epochs=1, batch_size=3, verbose=0)
    batches = first_rows[2:]
    assert sorted(np.concatenate(batches)) == list(X[:, 0])
    assert any(
        not np.array_equal(b, np.arange(3.0 * i, 3.0 * i + 3))
        for i, b in enumerate(batches)
    )


def test_early_stopping_restores_the_best_weights(circles):
    X_train, y_train, X_val, y_val = circles
    model = seed_model()
    # A learning rate this large makes validation loss bounce, so the last
    # epoch is not the best one.
    model.optimizer.learning_rate = 0.3
    snapshots = []

    class Snapshot(EarlyStopping):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(self.model.get_weights())

    history = model.train(
        X_train,
        y_train,
        epochs=40,
        batch_size=32,
        X_val=X_val,
        y_val=y_val,
        early_stopping_patience=3,
        verbose=0,
        callbacks=[Snapshot(patience=1000)],
    )
    best = int(np.argmin(history["val_loss"]))
    assert len(history["val_loss"]) < 40, "patience 3 should stop this run early"
    assert len(history["val_loss"]) == best + 1 + 3
    for restored, expected in zip(model.get_weights(), snapshots[best], strict=True):
        np.testing.assert_array_equal(restored, expected)
    assert model.evaluate(X_val, y_val)["loss"] == pytest.approx(
        history["val_loss"][best], rel=1e-5
    )


def test_early_stopping_restores_best_weights_even_without_stopping(circles):
    X_train, y_train, X_val, y_val = circles
    model = seed_model()
    model.optimizer.learning_rate = 0.3
    history = model.train(
        X_train,
        y_train,
        epochs=6,
        batch_size=32,
        X_val=X_val,
        y_val=y_val,
        early_stopping_patience=100,
        verbose=0,
    )
    assert len(history["val_loss"]) == 6
    assert model.evaluate(X_val, y_val)["loss"] == pytest.approx(
        min(history["val_loss"]), rel=1e-5
    )


def test_early_stopping_counts_patience_hand_worked():
    # val_loss: 1.0 (best), 0.9 (best), 0.95, 0.9 (equal is no improvement) -> stop
    # with patience 2 at the 4th epoch; min_delta 0.2 makes 0.9 no improvement.
    stopper = EarlyStopping(patience=2)
    stopper.model = type("M", (), {"stop_training": False})()
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.9]):
        stopper.on_epoch_end(epoch, {"val_loss": value})
    assert stopper.model.stop_training and stopper.stopped_epoch == 3
    assert stopper.best == 0.9 and stopper.best_epoch == 1
    strict = EarlyStopping(patience=5, min_delta=0.2)
    assert strict.is_improvement(1.0)
    strict.best = 1.0
    assert not strict.is_improvement(0.9) and strict.best == 1.0  # checks only


def test_train_continues_from_current_weights(circles):
    X_train, y_train, X_val, y_val = circles
    model = seed_model()
    model.train(X_train, y_train, epochs=3, verbose=0)
    after_three = model.get_weights()
    model.train(X_train, y_train, epochs=1, verbose=0)
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(after_three, model.get_weights(), strict=True)
    ]
    assert any(changed)
    assert model.optimizer.iterations == 4 * int(np.ceil(len(X_train) / 32))


def test_weights_written_after_add_are_the_starting_weights():
    model = NeuralNetwork(loss_name="mse", optimizer=SGD(learning_rate=0.1), seed=0)
    layer = Dense(1, 1)
    model.add(layer)
    layer.params["W"][...] = 2.0
    layer.params["b"][...] = 0.5
    # One full-batch step of y = 2x + 0.5 on x = 1, target 2.5: zero error.
    model.train(
        np.ones((4, 1)), np.full((4, 1), 2.5), epochs=1, batch_size=4, verbose=0
    )
    assert model.layers[0] is layer
    assert layer.params["W"][0, 0] == 2.0 and layer.params["b"][0] == 0.5


def test_mse_model_reports_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = NeuralNetwork(
        loss_name="mse", optimizer=Adam(0.05), seed=0, dtype="float64"
    )
    model.add(Dense(3, 1))
    history = model.train(X, y, epochs=60, batch_size=16, X_val=X, y_val=y, verbose=0)
    assert set(history) == {"loss", "val_loss"}
    assert set(model.evaluate(X, y)) == {"loss"}
    assert history["loss"][-1] < 1e-3


def test_reported_loss_includes_the_l2_penalty(circles):
    X_train, y_train, _, _ = circles
    model = seed_model(dtype="float64")
    data_loss = model.loss(model.predict(X_train), y_train)
    penalty = model.regularization_loss()
    assert penalty > 0
    assert model.evaluate(X_train, y_train)["loss"] == pytest.approx(
        data_loss + penalty, rel=1e-9
    )


def test_float64_model_computes_in_float64():
    model = seed_model(dtype="float64")
    assert all(a.dtype == np.float64 for a in model.get_weights())
    assert model.predict(np.zeros((2, 2), dtype=np.float32)).dtype == np.float64


def test_multiclass_spirals_with_integer_labels():
    X_train, y_train, X_val, y_val = get_spirals_data(n_samples=600, noise=0.1)
    model = NeuralNetwork(loss_name="cce", optimizer=Adam(0.02), seed=0)
    model.add(Dense(2, 64))
    model.add(Activation("relu"))
    model.add(Dense(64, 3, initialization="xavier"))
    model.add(Activation("softmax"))
    model.train(X_train, y_train, epochs=150, batch_size=32, verbose=0)
    assert model.evaluate(X_val, y_val)["accuracy"] >= 0.9
    one_hot = np.eye(3)[y_val]
    assert model.evaluate(X_val, one_hot) == pytest.approx(model.evaluate(X_val, y_val))
    np.testing.assert_allclose(model.predict(X_val).sum(axis=1), 1.0, rtol=1e-5)


def test_moons_with_sgd_momentum():
    X_train, y_train, X_val, y_val = get_moons_data(n_samples=400)
    model = NeuralNetwork(loss_name="bce", optimizer=SGD(0.1, momentum=0.9), seed=0)
    model.add(Dense(2, 16))
    model.add(Activation("tanh"))
    model.add(Dense(16, 1, initialization="xavier"))
    model.add(Activation("sigmoid"))
    model.train(X_train, y_train, epochs=60, batch_size=16, verbose=0)
    assert model.evaluate(X_val, y_val)["accuracy"] >= 0.95


def test_softmax_cce_training_is_exact_with_saturated_logits():
    # Weights this large push logits to +-1e4: probabilities underflow to 0,
    # yet the loss (from the logits) stays finite and equal to the margin.
    model = NeuralNetwork(
        loss_name="cce", optimizer=SGD(0.0001), seed=0, dtype="float64"
    )
    model.add(Dense(1, 2))
    model.add(Activation("softmax"))
    model.layers[0].params["W"][...] = [[1e4, -1e4]]
    scores = model.evaluate(np.array([[1.0]]), np.array([1]))
    assert scores["loss"] == pytest.approx(2e4)
    history = model.train(np.array([[1.0]]), np.array([1]), epochs=2, verbose=0)
    assert np.isfinite(history["loss"]).all()


def test_verbose_levels(capsys, circles):
    X_train, y_train, X_val, y_val = circles
    seed_model().train(X_train, y_train, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")
    seed_model().train(X_train, y_train, epochs=2, X_val=X_val, y_val=y_val, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("Epoch 2/2 - loss: ")
    assert "val_accuracy" in lines[-1]
    seed_model().train(X_train, y_train, epochs=2, X_val=X_val, y_val=y_val, verbose=1)
    bar = capsys.readouterr().out
    # tqdm redraws with carriage returns; each epoch ends on a full bar of
    # 25 batches (800 samples / 32) with the epoch's metrics.
    assert "Epoch 1/2" in bar and "Epoch 2/2" in bar
    assert "25/25" in bar and "batch/s" in bar and "val_loss=" in bar
