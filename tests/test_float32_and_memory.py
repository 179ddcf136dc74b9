"""Float32 end to end, updates in place, and memory that does not grow."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from nnscratch import (
    SGD,
    Activation,
    Adagrad,
    Adam,
    AdamW,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    NeuralNetwork,
    RMSprop,
)
from nnscratch.layers.activation_functions import ACTIVATIONS

OPTIMIZERS = [
    SGD(0.1),
    SGD(0.1, momentum=0.9),
    SGD(0.1, momentum=0.9, nesterov=True),
    Adam(),
    AdamW(),
    RMSprop(),
    RMSprop(momentum=0.5),
    Adagrad(),
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=repr)
def test_optimizer_steps_in_place_without_temporaries(optimizer):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(np.float32) for s in [(784, 256), (256,)]]
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    originals = list(params)
    optimizer.step(params, grads)  # the first step creates state and scratch
    tracemalloc.start()
    optimizer.step(params, grads)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # A single float64 (or even float32) temporary of W would be 0.8-1.6 MB.
    assert peak < 64 * 1024, f"a step allocated {peak} bytes"
    assert all(
        p is o and p.dtype == np.float32 for p, o in zip(params, originals, strict=True)
    )


def every_layer_network():
    model = NeuralNetwork(loss_name="cce", optimizer=Adam(), seed=0)
    for layer in (
        Conv2D(2, 4, 3, padding=1),
        BatchNorm(4),
        Activation("relu"),
        MaxPool2D(2),
        Conv2D(4, 4, 3, stride=2, padding=1),
        AvgPool2D(2, stride=1),
        Flatten(),
        Dropout(0.2),
        Dense(4, 12),
        BatchNorm(12),
        *[Activation(name) for name in sorted(ACTIVATIONS) if name != "softmax"],
        Dense(12, 3),
        Activation("softmax"),
    ):
        model.add(layer)
    return model


def recorder(forward, name, outputs):
    """Wrap a layer's forward to note the dtype of each output."""

    def recording(x, training=False):
        y = forward(x, training)
        outputs.append((name, y.dtype))
        return y

    return recording


def test_float32_model_computes_everything_in_float32():
    model = every_layer_network()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 2, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 6)
    outputs = []
    for layer in model.layers:
        layer.forward = recorder(layer.forward, type(layer).__name__, outputs)
    model.train(X, labels, epochs=2, batch_size=3, verbose=0)
    assert {dtype for _, dtype in outputs} == {np.dtype(np.float32)}
    for layer in model.layers:
        for store in (layer.params, layer.grads, layer.buffers):
            assert all(a.dtype == np.float32 for a in store.values()), layer
    assert model.predict(X).dtype == np.float32


def test_memory_does_not_grow_from_epoch_to_epoch():
    # tracemalloc sees NumPy's buffers: compare the peak of epoch 2 with that
    # of epoch 20. Caches are overwritten every batch, so nothing accumulates.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 64)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    model = NeuralNetwork(loss_name="cce", optimizer=Adam(), seed=0)
    for layer in (
        Dense(64, 128),
        Activation("relu"),
        Dropout(0.1),
        Dense(128, 10),
        Activation("softmax"),
    ):
        model.add(layer)
    peaks = []
    tracemalloc.start()
    for _ in range(20):
        tracemalloc.reset_peak()
        model.train(X, y, epochs=1, batch_size=32, verbose=0)
        peaks.append(tracemalloc.get_traced_memory()[1])
    current = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert peaks[19] <= peaks[1] * 1.05, peaks
    assert current < 2 * X.nbytes
