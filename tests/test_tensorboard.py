"""The TensorBoard callback, read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nnscratch import (
    SGD,
    Activation,
    Dense,
    LearningRateScheduler,
    NeuralNetwork,
    get_toy_data,
)
from nnscratch.interop import TensorBoard

EPOCHS = 4


def read(log_dir, name):
    # size_guidance 0: keep every event (the default samples histograms).
    accumulator = EventAccumulator(
        str(log_dir / name), size_guidance={"scalars": 0, "histograms": 0}
    )
    return accumulator.Reload()


def scalars(events, tag):
    return [(event.step, event.value) for event in events.Scalars(tag)]


@pytest.fixture(scope="module")
def data():
    return get_toy_data(n_samples=120, seed=0)


def classifier():
    model = NeuralNetwork(loss_name="bce", optimizer=SGD(0.1), seed=0)
    model.add(Dense(2, 4))
    model.add(Activation("relu"))
    model.add(Dense(4, 1))
    model.add(Activation("sigmoid"))
    return model


def test_every_history_entry_is_a_scalar_per_epoch(data, tmp_path):
    X, y, X_val, y_val = data
    history = classifier().train(
        X,
        y,
        epochs=EPOCHS,
        X_val=X_val,
        y_val=y_val,
        verbose=0,
        callbacks=[TensorBoard(tmp_path)],
    )
    train, validation = read(tmp_path, "train"), read(tmp_path, "validation")
    for key, values in history.items():
        events = validation if key.startswith("val_") else train
        tag = "epoch_" + key.removeprefix("val_")
        steps, logged = zip(*scalars(events, tag), strict=True)
        assert list(steps) == list(range(EPOCHS))
        np.testing.assert_allclose(logged, values, rtol=1e-6)
    steps, rates = zip(*scalars(train, "epoch_learning_rate"), strict=True)
    assert list(steps) == list(range(EPOCHS))
    np.testing.assert_allclose(rates, 0.1, rtol=1e-7)  # stored as float32
    assert train.Tags()["histograms"] == []


def test_the_learning_rate_is_the_rate_each_epoch_ran_with(data, tmp_path):
    X, y, _, _ = data
    scheduler = LearningRateScheduler(lambda epoch, lr0: lr0 * 0.5**epoch)
    classifier().train(
        X, y, epochs=EPOCHS, verbose=0, callbacks=[scheduler, TensorBoard(tmp_path)]
    )
    logged = [
        value for _, value in scalars(read(tmp_path, "train"), "epoch_learning_rate")
    ]
    np.testing.assert_allclose(logged, [0.1 * 0.5**e for e in range(EPOCHS)])


def test_weight_and_gradient_histograms_when_asked(data, tmp_path):
    X, y, _, _ = data
    model = classifier()
    model.train(
        X,
        y,
        epochs=3,  # the last histogram (step 2) has the final weights
        verbose=0,
        callbacks=[TensorBoard(tmp_path, histogram_freq=2)],
    )
    train = read(tmp_path, "train")
    tags = set(train.Tags()["histograms"])
    expected = {
        f"{index}_Dense/{key}{suffix}"
        for index in (0, 2)
        for key in ("W", "b")
        for suffix in ("", "/gradient")
    }
    assert tags == expected
    (first, last) = train.Histograms("2_Dense/W")
    assert (first.step, last.step) == (0, 2)
    W = model.layers[2].params["W"]
    assert last.histogram_value.num == W.size
    np.testing.assert_allclose(last.histogram_value.sum, W.sum(), rtol=1e-5)


def test_histograms_without_gradients(data, tmp_path):
    X, y, _, _ = data
    callback = TensorBoard(tmp_path, histogram_freq=1, write_grads=False)
    classifier().train(X, y, epochs=1, verbose=0, callbacks=[callback])
    tags = read(tmp_path, "train").Tags()["histograms"]
    assert sorted(tags) == ["0_Dense/W", "0_Dense/b", "2_Dense/W", "2_Dense/b"]


def test_nested_layers_are_named_by_their_path(data, tmp_path):
    from nnscratch.layers import Residual, Sequential

    X, y, _, _ = data
    model = NeuralNetwork(loss_name="bce", optimizer=SGD(0.1), seed=0)
    model.add(Dense(2, 4))
    model.add(Residual(Sequential(Dense(4, 4), Activation("tanh"))))
    model.add(Dense(4, 1))
    model.add(Activation("sigmoid"))
    callback = TensorBoard(tmp_path, histogram_freq=1, write_grads=False)
    model.train(X, y, epochs=1, verbose=0, callbacks=[callback])
    tags = read(tmp_path, "train").Tags()["histograms"]
    assert "1.body.0_Dense/W" in tags


def test_batch_losses_with_update_freq(data, tmp_path):
    X, y, _, _ = data  # 96 training rows: 3 batches of 32 per epoch
    callback = TensorBoard(tmp_path, update_freq=2)
    classifier().train(X, y, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    steps = [step for step, _ in scalars(read(tmp_path, "train"), "batch_loss")]
    assert steps == [2, 4, 6]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"histogram_freq": -1}, "histogram_freq"),
        ({"histogram_freq": 1.5}, "histogram_freq"),
        ({"update_freq": "batch"}, "update_freq"),
        ({"update_freq": 0}, "update_freq"),
    ],
)
def test_bad_arguments_are_value_errors(arguments, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        TensorBoard(tmp_path, **arguments)


def test_without_tensorboardx_an_import_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install 'nnscratch\[tensorboard\]'"):
        TensorBoard(tmp_path)
