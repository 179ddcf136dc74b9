"""ModelCheckpoint, CSVLogger, EarlyStopping options, and user callbacks."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from nnscratch import (
    SGD,
    Activation,
    Adam,
    Callback,
    CosineAnnealing,
    Dense,
    EarlyStopping,
    LearningRateScheduler,
    NeuralNetwork,
)
from nnscratch.engine.callbacks import CSVLogger, ModelCheckpoint
from nnscratch.utils.data import get_toy_data


@pytest.fixture(scope="module")
def circles():
    return get_toy_data(n_samples=300)


def make_model(learning_rate=0.05, seed=0):
    model = NeuralNetwork(loss_name="bce", optimizer=Adam(learning_rate), seed=seed)
    model.add(Dense(2, 8))
    model.add(Activation("tanh"))
    model.add(Dense(8, 1))
    model.add(Activation("sigmoid"))
    return model


def test_hooks_run_in_keras_order(circles):
    X, y, X_val, y_val = circles
    calls = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"epoch_begin {epoch}")

        def on_batch_end(self, batch, logs=None):
            calls.append(f"batch {batch} loss={logs['loss'] > 0}")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    make_model().train(
        X[:64],
        y[:64],
        epochs=2,
        batch_size=32,
        X_val=X_val,
        y_val=y_val,
        verbose=0,
        callbacks=[Recorder()],
    )
    keys = "['accuracy', 'loss', 'val_accuracy', 'val_loss']"
    assert calls == [
        "train_begin",
        "epoch_begin 0",
        "batch 0 loss=True",
        "batch 1 loss=True",
        f"epoch_end 0 {keys}",
        "epoch_begin 1",
        "batch 0 loss=True",
        "batch 1 loss=True",
        f"epoch_end 1 {keys}",
        "train_end",
    ]


def test_checkpoint_saves_only_improvements_and_resumes(tmp_path, circles):
    X, y, X_val, y_val = circles
    model = make_model(learning_rate=0.3)
    checkpoint = ModelCheckpoint(tmp_path / "best-{epoch}.npz", save_best_only=True)
    history = model.train(
        X, y, epochs=8, X_val=X_val, y_val=y_val, verbose=0, callbacks=[checkpoint]
    )
    improving = [
        epoch + 1
        for epoch, value in enumerate(history["val_loss"])
        if value < min(history["val_loss"][:epoch], default=np.inf)
    ]
    assert [p.split("-")[-1] for p in checkpoint.saved] == [
        f"{e}.npz" for e in improving
    ]
    best = NeuralNetwork.load(checkpoint.saved[-1])
    assert best.evaluate(X_val, y_val)["loss"] == pytest.approx(
        min(history["val_loss"]), rel=1e-6
    )
    assert best.epochs_done == improving[-1]
    # A checkpoint resumes like any saved run: up to 10 epochs in total.
    resumed = make_model(learning_rate=0.3)
    full = resumed.train(
        X,
        y,
        epochs=10,
        X_val=X_val,
        y_val=y_val,
        verbose=0,
        resume_from=checkpoint.saved[-1],
    )
    assert len(full["loss"]) == 10
    assert full["loss"][: improving[-1]] == history["loss"][: improving[-1]]


def test_checkpoint_every_epoch_and_missing_metric(tmp_path, circles):
    X, y, _, _ = circles
    every = ModelCheckpoint(tmp_path / "last.npz")
    make_model().train(X, y, epochs=2, verbose=0, callbacks=[every])
    assert every.saved == [str(tmp_path / "last.npz")] * 2
    assert NeuralNetwork.load(tmp_path / "last.npz").epochs_done == 2
    best = ModelCheckpoint(tmp_path / "never.npz", save_best_only=True)
    with pytest.warns(RuntimeWarning, match="'val_loss' is not available"):
        make_model().train(X, y, epochs=1, verbose=0, callbacks=[best])
    assert not (tmp_path / "never.npz").exists()


def test_csv_logger_matches_history(tmp_path, circles):
    X, y, X_val, y_val = circles
    path = tmp_path / "log.csv"
    scheduler = LearningRateScheduler(CosineAnnealing(T_max=3))
    history = make_model().train(
        X,
        y,
        epochs=3,
        X_val=X_val,
        y_val=y_val,
        verbose=0,
        callbacks=[scheduler, CSVLogger(path)],
    )
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    for key, values in history.items():
        np.testing.assert_allclose(
            [float(row[key]) for row in rows], values, rtol=1e-12
        )
    # lr_t = lr_0 (1 + cos(pi t / 3)) / 2 with lr_0 = 0.05
    assert history["learning_rate"] == pytest.approx(
        [0.05 * (1 + math.cos(math.pi * t / 3)) / 2 for t in range(3)]
    )
    make_model().train(
        X, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)]
    )
    with open(path, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4


def test_early_stopping_with_min_delta_mode_max_and_no_restore(circles):
    X, y, X_val, y_val = circles
    model = make_model()
    # An accuracy must grow by more than 0.5 to count: only the first epoch
    # improves on -inf, so training stops after 1 + patience epochs.
    stopper = EarlyStopping(monitor="val_accuracy", patience=2, min_delta=0.5)
    assert stopper.mode == "max"
    history = model.train(
        X, y, epochs=20, X_val=X_val, y_val=y_val, verbose=0, callbacks=[stopper]
    )
    assert len(history["loss"]) == 3 and stopper.stopped_epoch == 2
    # Without restore_best_weights the final weights are the last epoch's.
    assert model.evaluate(X_val, y_val)["loss"] == pytest.approx(
        history["val_loss"][-1], rel=1e-5
    )


def test_early_stopping_warns_when_its_metric_is_missing(circles):
    X, y, _, _ = circles
    with pytest.warns(
        RuntimeWarning,
        match=r"EarlyStopping: the monitored metric 'val_loss' is not available; "
        r"available: \['accuracy', 'loss'\]",
    ):
        make_model().train(X, y, epochs=1, verbose=0, callbacks=[EarlyStopping()])


def test_early_stopping_resets_between_train_calls(circles):
    X, y, X_val, y_val = circles
    stopper = EarlyStopping(patience=1)
    model = make_model(learning_rate=0.001)
    model.train(
        X, y, epochs=2, X_val=X_val, y_val=y_val, verbose=0, callbacks=[stopper]
    )
    model.train(
        X, y, epochs=1, X_val=X_val, y_val=y_val, verbose=0, callbacks=[stopper]
    )
    assert stopper.wait == 0 and stopper.best_epoch == 0


def test_user_callback_can_stop_training(circles):
    X, y, _, _ = circles

    class StopAfterFiveEpochs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 4:
                self.model.stop_training = True

    model = NeuralNetwork(loss_name="bce", optimizer=SGD(0.5), seed=0)
    model.add(Dense(2, 1))
    model.add(Activation("sigmoid"))
    history = model.train(X, y, epochs=50, verbose=0, callbacks=[StopAfterFiveEpochs()])
    assert len(history["loss"]) == 5 and model.epochs_done == 5
