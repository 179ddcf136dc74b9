"""Every built-in layer computes in the dtype it was built in: a float32
model never silently runs (or hands its neighbours) float64."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import (
    GRU,
    LSTM,
    RNN,
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    LayerNorm,
    MaxPool2D,
    MultiHeadAttention,
    Normalization,
    PositionalEmbedding,
    Residual,
    Sequential,
    TransformerBlock,
)
from nnscratch.layers.activation_functions import ACTIVATIONS

IMAGES = (2, 3, 6, 6)
SEQUENCES = (2, 5, 8)


def adapted_normalization():
    layer = Normalization()
    layer.adapt(np.random.default_rng(0).normal(size=(10, 8)))
    return layer


CASES = {
    "Dense": (lambda: Dense(8, 4), SEQUENCES),
    "Conv2D": (lambda: Conv2D(3, 4, 3, stride=2, padding=1), IMAGES),
    "MaxPool2D": (lambda: MaxPool2D(2), IMAGES),
    "AvgPool2D": (lambda: AvgPool2D(2), IMAGES),
    "BatchNorm": (lambda: BatchNorm(3), IMAGES),
    "Dropout": (lambda: Dropout(0.5), SEQUENCES),
    "Flatten": (Flatten, IMAGES),
    "Normalization": (adapted_normalization, SEQUENCES),
    "Sequential": (lambda: Sequential(Dense(8, 8), Activation("gelu")), SEQUENCES),
    "Residual": (lambda: Residual(Dense(8, 8)), SEQUENCES),
    "PositionalEmbedding": (lambda: PositionalEmbedding(5, 8), SEQUENCES),
    "RNN": (lambda: RNN(8, 4, return_sequences=True), SEQUENCES),
    "LSTM": (lambda: LSTM(8, 4, return_sequences=True), SEQUENCES),
    "GRU": (lambda: GRU(8, 4), SEQUENCES),
    "LayerNorm": (lambda: LayerNorm(8), SEQUENCES),
    "MultiHeadAttention": (lambda: MultiHeadAttention(8, 2, dropout=0.1), SEQUENCES),
    "causal attention": (lambda: MultiHeadAttention(8, 2, causal=True), SEQUENCES),
    "TransformerBlock": (lambda: TransformerBlock(8, 2, dropout=0.1), SEQUENCES),
} | {
    f"Activation {name}": (lambda name=name: Activation(name), SEQUENCES)
    for name in ACTIVATIONS
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_and_backward_keep_the_dtype(case, dtype):
    make, shape = CASES[case]
    layer = make()
    layer.build(np.random.default_rng(0), dtype)
    x = np.random.default_rng(1).normal(size=shape).astype(dtype)
    for training in (True, False):
        y = layer.forward(x, training=training)
        assert y.dtype == dtype, f"{case} forward (training={training}) gave {y.dtype}"
        dx = layer.backward(np.ones_like(y))
        assert dx.dtype == dtype, f"{case} backward gave {dx.dtype}"
    assert all(g.dtype == dtype for g in layer.grads.values())


def test_embedding_reads_ids_and_gives_the_model_dtype():
    layer = Embedding(10, 4)
    layer.build(np.random.default_rng(0), "float32")
    y = layer.forward(np.array([[1, 2, 3]]), training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)) is None
    assert layer.grads["W"].dtype == np.float32
