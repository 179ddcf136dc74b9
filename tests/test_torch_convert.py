"""from_torch / to_torch: twins whose predictions match torch's, both ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nnscratch import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    NeuralNetwork,
)
from nnscratch.interop import from_torch, to_torch
from nnscratch.interop import torch_modules as wrappers
from nnscratch.interop.torch_convert import LAYER_TO_TORCH, torch_to_layer_converters
from nnscratch.layers import Normalization, Residual, Sequential
from nnscratch.layers.activation_functions import ACTIVATIONS
from nnscratch.layers.attention import MultiHeadAttention
from nnscratch.layers.embedding import Embedding, PositionalEmbedding
from nnscratch.layers.gru import GRU
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.rnn import RNN
from nnscratch.layers.transformer import TransformerBlock

TOLERANCE = 1e-5


def with_random_batchnorm_stats(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine params for every BatchNorm."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for child in module.modules():
            if isinstance(child, nn.BatchNorm1d | nn.BatchNorm2d):
                size = child.num_features
                child.running_mean.copy_(torch.randn(size, generator=generator))
                child.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                child.weight.copy_(torch.randn(size, generator=generator))
                child.bias.copy_(torch.randn(size, generator=generator))
    return module


TORCH_MODELS = {
    "mlp": lambda: (
        nn.Sequential(
            nn.Linear(6, 16),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(16, 8),
            nn.BatchNorm1d(8),
            nn.Tanh(),
            nn.Linear(8, 3),
            nn.Softmax(dim=1),
        ),
        (6,),
    ),
    "activations": lambda: (
        nn.Sequential(
            nn.Linear(5, 5),
            nn.LeakyReLU(),
            nn.Linear(5, 5),
            nn.ELU(),
            nn.Linear(5, 5),
            nn.GELU(),
            nn.Linear(5, 5),
            nn.Softplus(),
            nn.Linear(5, 5, bias=False),
            nn.Identity(),
            nn.Linear(5, 1),
            nn.Sigmoid(),
        ),
        (5,),
    ),
    "cnn": lambda: (
        nn.Sequential(
            nn.Conv2d(2, 4, kernel_size=3, stride=2, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 3, kernel_size=(1, 2), padding=(0, 1)),
            nn.AvgPool2d(2, stride=1),
            nn.Flatten(),
            nn.Linear(3 * 1 * 2, 2),
        ),
        (2, 8, 8),
    ),
}


def self_attention(embed_dim, heads, causal):
    attention = nn.MultiheadAttention(embed_dim, heads, batch_first=True)
    return wrappers.SelfAttention(attention, causal)


SEQUENCE_MODELS = {
    "nested Sequential and Residual": lambda: (
        nn.Sequential(
            nn.Linear(4, 6),
            nn.Sequential(nn.Tanh(), nn.Linear(6, 6)),
            wrappers.Residual(nn.Sequential(nn.LayerNorm(6), nn.Linear(6, 6))),
        ),
        (5, 4),
    ),
    "Normalization": lambda: (
        nn.Sequential(
            wrappers.Normalization(torch.randn(4), torch.rand(4) + 0.5),
            nn.Linear(4, 2),
        ),
        (4,),
    ),
    "LSTM last step": lambda: (
        nn.Sequential(
            wrappers.Recurrent(nn.LSTM(3, 5, batch_first=True), False),
            nn.Linear(5, 2),
        ),
        (6, 3),
    ),
    "GRU and RNN sequences": lambda: (
        nn.Sequential(
            wrappers.Recurrent(nn.GRU(3, 4, batch_first=True), True),
            wrappers.Recurrent(
                nn.RNN(4, 4, nonlinearity="relu", batch_first=True), True
            ),
        ),
        (6, 3),
    ),
    "GPT-like": lambda: (
        nn.Sequential(
            nn.Embedding(11, 8),
            wrappers.PositionalEmbedding(16, 8, torch.float32),
            wrappers.Residual(
                nn.Sequential(nn.LayerNorm(8), self_attention(8, 2, causal=True))
            ),
            wrappers.Residual(
                nn.Sequential(
                    nn.LayerNorm(8), nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8)
                )
            ),
            self_attention(8, 4, causal=False),
            nn.Linear(8, 11),
            nn.Softmax(dim=-1),
        ),
        "ids",
    ),
}


def sequence_input(input_shape, seed, batch=3):
    rng = np.random.default_rng(seed)
    if input_shape == "ids":
        return rng.integers(0, 11, size=(batch, 7))
    return rng.normal(size=(batch, *input_shape)).astype(np.float32)


@pytest.mark.parametrize("name", list(SEQUENCE_MODELS))
def test_sequence_models_and_containers_both_ways(name):
    torch.manual_seed(2)
    module, input_shape = SEQUENCE_MODELS[name]()
    with torch.no_grad():  # non-zero positions for the positional table
        for child in module.modules():
            if isinstance(child, wrappers.PositionalEmbedding):
                child.weight.normal_()
    X = sequence_input(input_shape, seed=3)
    expected = torch_output(module, X)
    model = from_torch(module)
    np.testing.assert_allclose(model.predict(X), expected, atol=TOLERANCE, rtol=0)
    twin = to_torch(model)
    np.testing.assert_allclose(torch_output(twin, X), expected, atol=TOLERANCE, rtol=0)


def test_a_bare_recurrent_module_stands_for_its_output_sequence():
    # torch returns (outputs, state); the first item is what comes through.
    model = from_torch(nn.Sequential(nn.LSTM(3, 4, batch_first=True)))
    assert isinstance(model.layers[0], LSTM)
    assert model.layers[0].return_sequences
    with pytest.raises(ValueError, match="batch_first"):
        from_torch(nn.Sequential(nn.GRU(3, 4)))


def test_a_transformer_block_goes_to_torch_as_its_two_residual_branches():
    model = NeuralNetwork(loss_name="mse", seed=0)
    model.add(TransformerBlock(8, 2, mlp_ratio=2))
    twin = to_torch(model)
    block = twin[0]
    assert [type(m) for m in block] == [wrappers.Residual, wrappers.Residual]
    X = np.random.default_rng(0).normal(size=(2, 5, 8)).astype(np.float32)
    np.testing.assert_allclose(
        torch_output(twin, X), model.predict(X), atol=TOLERANCE, rtol=0
    )
    back = from_torch(twin)
    assert isinstance(back.layers[0], Sequential)
    np.testing.assert_allclose(back.predict(X), model.predict(X), atol=TOLERANCE)


def test_nnscratch_sequence_layers_go_to_torch():
    model = NeuralNetwork(loss_name="mse", seed=0, dtype="float64")
    for layer in (
        Embedding(9, 6),
        PositionalEmbedding(10, 6),
        LayerNorm(6),
        MultiHeadAttention(6, 3, causal=True),
        Residual(Sequential(Dense(6, 6), Activation("relu"))),
        LSTM(6, 4, return_sequences=True),
        GRU(4, 4, return_sequences=True),
        RNN(4, 3),
        Normalization(3),
    ):
        model.add(layer)
    for layer in model.layers:
        for name, value in layer.params.items():  # no zero biases, no ones
            value[...] = np.random.default_rng(len(name)).normal(0, 0.5, value.shape)
    X = np.random.default_rng(1).integers(0, 9, size=(4, 8))
    twin = to_torch(model)
    np.testing.assert_allclose(torch_output(twin, X), model.predict(X), atol=1e-12)


def torch_output(module: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.eval()(torch.from_numpy(X)).numpy()


@pytest.mark.parametrize("name", list(TORCH_MODELS))
def test_from_torch_predicts_what_torch_does(name):
    torch.manual_seed(0)
    module, input_shape = TORCH_MODELS[name]()
    with_random_batchnorm_stats(module)
    model = from_torch(module)
    X = np.random.default_rng(0).normal(size=(7, *input_shape)).astype(np.float32)
    np.testing.assert_allclose(
        model.predict(X), torch_output(module, X), atol=TOLERANCE, rtol=0
    )


@pytest.mark.parametrize("name", list(TORCH_MODELS))
def test_round_trip_to_torch_and_back(name):
    torch.manual_seed(1)
    module, input_shape = TORCH_MODELS[name]()
    with_random_batchnorm_stats(module, seed=1)
    twin = to_torch(from_torch(module))
    assert not twin.training
    assert [type(m) for m in twin] == [type(m) for m in module]
    X = np.random.default_rng(1).normal(size=(4, *input_shape)).astype(np.float32)
    np.testing.assert_allclose(
        torch_output(twin, X), torch_output(module, X), atol=TOLERANCE, rtol=0
    )
    ours = twin.state_dict()  # a Linear without bias comes back with zeros
    for key, theirs in module.state_dict().items():
        np.testing.assert_array_equal(theirs.numpy(), ours[key].numpy())


def test_weights_are_copied_in_the_documented_layout():
    linear = nn.Linear(3, 2)
    model = from_torch(nn.Sequential(linear))
    np.testing.assert_array_equal(model.layers[0].params["W"], linear.weight.detach().T)
    np.testing.assert_array_equal(model.layers[0].params["b"], linear.bias.detach())
    with torch.no_grad():
        linear.weight.zero_()  # a copy, not a view
    assert np.abs(model.layers[0].params["W"]).sum() > 0


def nnscratch_model(dtype: str = "float32") -> NeuralNetwork:
    model = NeuralNetwork(loss_name="cce", seed=0, dtype=dtype)
    for layer in (
        Conv2D(1, 3, kernel_size=3, padding=1),
        BatchNorm(3),
        Activation("elu"),
        AvgPool2D(2),
        Conv2D(3, 2, kernel_size=2, stride=2),
        MaxPool2D(1),
        Flatten(),
        Dense(2 * 2 * 2, 6),
        BatchNorm(6),
        Activation("gelu"),
        Dropout(0.4),
        Dense(6, 3),
        Activation("softmax"),
    ):
        model.add(layer)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            layer.buffers["running_mean"][...] = rng.normal(size=layer.num_features)
            layer.buffers["running_var"][...] = rng.uniform(0.5, 2, layer.num_features)
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_torch_predicts_what_nnscratch_does(dtype):
    model = nnscratch_model(dtype)
    twin = to_torch(model)
    assert [type(m).__name__ for m in twin][:2] == ["Conv2d", "BatchNorm2d"]
    assert type(twin[8]).__name__ == "BatchNorm1d"
    X = np.random.default_rng(2).normal(size=(5, 1, 8, 8)).astype(dtype)
    tolerance = TOLERANCE if dtype == "float32" else 1e-12
    np.testing.assert_allclose(
        torch_output(twin, X), model.predict(X), atol=tolerance, rtol=0
    )
    again = from_torch(twin)
    assert again.dtype == np.dtype(dtype)
    np.testing.assert_allclose(again.predict(X), model.predict(X), atol=tolerance)


def test_from_torch_loss_follows_the_head_unless_given():
    assert from_torch(nn.Sequential(nn.Linear(2, 3), nn.Softmax(-1))).loss_name == "cce"
    assert from_torch(nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())).loss_name == "bce"
    assert from_torch(nn.Sequential(nn.Linear(2, 1))).loss_name == "mse"
    chosen = from_torch(nn.Sequential(nn.Linear(2, 1)), loss_name="bce")
    assert chosen.loss_name == "bce"


def test_a_converted_model_trains():
    module = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    model = from_torch(module, seed=0)
    X = np.random.default_rng(0).normal(size=(64, 2))
    y = (X[:, :1] > 0).astype(float)
    history = model.train(X, y, epochs=3, verbose=0)
    assert len(history["loss"]) == 3


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (nn.Sequential(nn.Linear(2, 2), nn.LSTMCell(2, 2)), r"module 1 \(LSTMCell\)"),
        (nn.Sequential(nn.Conv2d(1, 1, 3, groups=1, dilation=2)), "dilation"),
        (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), "ceil_mode"),
        (nn.Sequential(nn.LeakyReLU(0.2)), "negative_slope"),
        (nn.Sequential(nn.GELU(approximate="tanh")), "approximate"),
        (nn.Sequential(nn.Conv2d(1, 1, 3), nn.Softmax(dim=1)), "dim"),
        (nn.Sequential(nn.Flatten(start_dim=2)), "start_dim"),
        (nn.Linear(2, 2), "expected a torch.nn.Sequential"),
    ],
)
def test_an_unsupported_module_is_a_value_error_naming_it(module, message):
    with pytest.raises(ValueError, match=message):
        from_torch(module)


class Doubler(Layer):
    def forward(self, x, training=False):
        return 2 * x

    def backward(self, grad):
        return 2 * grad


def test_an_unsupported_layer_is_a_value_error_naming_it():
    model = NeuralNetwork(loss_name="mse")
    model.add(Dense(2, 2))
    model.add(Doubler())
    with pytest.raises(ValueError, match=r"layer 1 \(Doubler\)"):
        to_torch(model)


def test_every_builtin_layer_and_activation_converts_both_ways():
    from test_onnx_export import builtin_layer_types

    assert not builtin_layer_types() - set(LAYER_TO_TORCH)
    for name in ACTIVATIONS:
        model = NeuralNetwork(loss_name="mse")
        model.add(Activation(name))
        back = from_torch(to_torch(model))
        assert back.layers[0].name == name
    assert nn.Linear in torch_to_layer_converters()
