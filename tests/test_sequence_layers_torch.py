"""Embedding, PositionalEmbedding, RNN, LSTM, GRU and LayerNorm against torch.

float64 to 1e-6: forward, dL/dx and every parameter gradient, for several
sequence lengths and batch sizes, ``return_sequences`` both ways; central
differences for the LSTM and GRU; bad input by message.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import (
    TOLERANCE,
    check_layer_gradients,
    compare_layer_with_torch,
    to_numpy,
    to_torch,
)

from nnscratch.layers.embedding import Embedding
from nnscratch.layers.gru import GRU
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.positional_embedding import PositionalEmbedding
from nnscratch.layers.rnn import RNN

RECURRENT_PARAMS = ("W_ih", "W_hh", "b_ih", "b_hh")


def built(layer, seed=0):
    layer.build(np.random.default_rng(seed), "float64")
    return layer


def torch_recurrent(module_class, layer, **kwargs):
    """``torch_forward(x, W_ih, W_hh, b_ih, b_hh)`` for a torch.nn.RNN/LSTM/GRU
    holding our weights (transposed: ours are ``x @ W``)."""
    module = module_class(
        layer.input_size, layer.hidden_size, batch_first=True, **kwargs
    ).double()

    def forward(x, W_ih, W_hh, b_ih, b_hh):
        params = {
            "weight_ih_l0": W_ih.T,
            "weight_hh_l0": W_hh.T,
            "bias_ih_l0": b_ih,
            "bias_hh_l0": b_hh,
        }
        out, _ = torch.func.functional_call(module, params, (x,))
        return out if layer.return_sequences else out[:, -1]

    return forward


CASES = [
    (RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    (LSTM, torch.nn.LSTM, {}),
    (GRU, torch.nn.GRU, {}),
]


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize(("batch", "steps"), [(1, 1), (3, 4), (2, 9)])
@pytest.mark.parametrize(("ours", "theirs", "kwargs"), CASES)
def test_recurrent_matches_torch(ours, theirs, kwargs, batch, steps, return_sequences):
    rng = np.random.default_rng(batch * 10 + steps)
    layer = built(ours(3, 5, return_sequences=return_sequences, **kwargs))
    x = rng.standard_normal((batch, steps, 3))
    compare_layer_with_torch(
        layer, torch_recurrent(theirs, layer, **kwargs), x, RECURRENT_PARAMS, rng=rng
    )


@pytest.mark.parametrize("trial", range(6))
def test_recurrent_random_shapes_match_torch(trial):
    # Seeded random trials over batch, length, input and hidden sizes.
    rng = np.random.default_rng(100 + trial)
    ours, theirs, kwargs = CASES[trial % len(CASES)]
    N, T, F, H = (int(v) for v in rng.integers(1, [5, 7, 6, 7]))
    layer = built(ours(F, H, return_sequences=bool(trial % 2), **kwargs), trial)
    x = rng.standard_normal((N, T, F))
    compare_layer_with_torch(
        layer, torch_recurrent(theirs, layer, **kwargs), x, RECURRENT_PARAMS, rng=rng
    )


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), CASES)
def test_recurrent_layer_reused_across_shapes_matches_torch(ours, theirs, kwargs):
    # The layers keep their work arrays between calls: a call after another
    # of a different length or batch (and input_size == hidden_size, where a
    # mixed-up work array would still have the right shape) must not depend
    # on anything the earlier call left there, here poisoned with NaN.
    rng = np.random.default_rng(7)
    for return_sequences in (True, False):
        layer = built(ours(4, 4, return_sequences=return_sequences, **kwargs))
        for batch, steps in [(2, 5), (3, 2), (2, 5), (2, 5), (1, 1)]:
            for work in layer._arrays.values():
                work.fill(np.nan)
            x = rng.standard_normal((batch, steps, 4))
            compare_layer_with_torch(
                layer,
                torch_recurrent(theirs, layer, **kwargs),
                x,
                RECURRENT_PARAMS,
                rng=rng,
            )


@pytest.mark.parametrize("layer_class", [LSTM, GRU, RNN])
def test_recurrent_init_and_shapes_follow_torch(layer_class):
    layer = built(layer_class(4, 16))
    gates = {RNN: 1, GRU: 3, LSTM: 4}[layer_class]
    assert layer.state_shapes() == {
        "W_ih": (4, gates * 16),
        "W_hh": (16, gates * 16),
        "b_ih": (gates * 16,),
        "b_hh": (gates * 16,),
    }
    for value in layer.params.values():
        # torch: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias.
        assert np.abs(value).max() <= 0.25
        assert np.abs(value).max() > 0.2
    assert type(layer).from_config(layer.get_config()).get_config() == (
        layer.get_config()
    )


@pytest.mark.parametrize("layer_class", [LSTM, GRU])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_recurrent_central_differences(layer_class, return_sequences):
    rng = np.random.default_rng(3)
    layer = built(layer_class(2, 3, return_sequences=return_sequences))
    check_layer_gradients(layer, rng.standard_normal((2, 4, 2)), rng=rng)


def test_lstm_worked_by_hand():
    # All weights 0 and b_ih's forget block 0, input block 0: every gate
    # pre-activation is 0, so i = f = o = 1/2 and g = tanh(0) = 0 except
    # where b_hh's g block is set to atanh(0.5): g = 0.5. Then
    # c_0 = f*0 + i*g = 0.25, h_0 = o * tanh(0.25) = 0.5 * 0.24491866.
    layer = built(LSTM(1, 1))
    for value in layer.params.values():
        value[...] = 0.0
    layer.params["b_hh"][2] = np.arctanh(0.5)
    h = layer.forward(np.zeros((1, 1, 1)))
    np.testing.assert_allclose(h, [[0.5 * np.tanh(0.25)]], rtol=1e-12)


def test_embedding_matches_torch():
    rng = np.random.default_rng(0)
    layer = built(Embedding(7, 4))
    ids = rng.integers(0, 7, size=(3, 5))
    ids[0, :3] = 2  # repeated ids must accumulate
    W_t = to_torch(layer.params["W"], requires_grad=True)
    y_t = torch.nn.functional.embedding(torch.tensor(ids), W_t)
    y = layer.forward(ids)
    np.testing.assert_allclose(y, to_numpy(y_t), **TOLERANCE)
    upstream = rng.standard_normal(y.shape)
    (y_t * to_torch(upstream)).sum().backward()
    assert layer.backward(upstream) is None
    np.testing.assert_allclose(layer.grads["W"], to_numpy(W_t.grad), **TOLERANCE)
    assert Embedding.float_input is False


@pytest.mark.parametrize("steps", [1, 3, 6])
def test_positional_embedding_matches_torch(steps):
    rng = np.random.default_rng(steps)
    layer = built(PositionalEmbedding(6, 4))
    x = rng.standard_normal((2, steps, 4))
    compare_layer_with_torch(layer, lambda x_t, W_t: x_t + W_t[:steps], x, ("W",))


@pytest.mark.parametrize("shape", [(1, 5), (4, 5), (2, 3, 5), (2, 1, 3, 5)])
def test_layernorm_matches_torch(shape):
    rng = np.random.default_rng(len(shape))
    layer = built(LayerNorm(5))
    layer.params["gamma"][...] = rng.standard_normal(5)
    layer.params["beta"][...] = rng.standard_normal(5)
    x = 3.0 * rng.standard_normal(shape) + 1.0
    compare_layer_with_torch(
        layer,
        lambda x_t, g_t, b_t: torch.nn.functional.layer_norm(x_t, (5,), g_t, b_t),
        x,
        ("gamma", "beta"),
    )
    check_layer_gradients(built(LayerNorm(5)), rng.standard_normal((2, 3, 5)))


# ------------------------------------------------------------------ bad input
def test_id_out_of_range_is_a_value_error():
    layer = built(Embedding(5, 2))
    before = layer.params["W"].copy()
    with pytest.raises(ValueError, match=r"expected ids in \[0, 5\)\. Received ids"):
        layer.forward(np.array([[0, 5]]))
    with pytest.raises(ValueError, match=r"from -1 to"):
        layer.forward(np.array([[-1, 2]]))
    with pytest.raises(ValueError, match="expected integer token ids"):
        layer.forward(np.array([[0.5, 1.0]]))
    np.testing.assert_array_equal(layer.params["W"], before)


def test_sequence_longer_than_max_length_is_a_value_error():
    layer = built(PositionalEmbedding(4, 2))
    with pytest.raises(ValueError, match="expected T <= max_length=4. Received T=5"):
        layer.forward(np.zeros((1, 5, 2)))


@pytest.mark.parametrize("layer_class", [LSTM, GRU, RNN])
def test_two_dimensional_input_to_a_recurrent_layer_is_a_value_error(layer_class):
    layer = built(layer_class(3, 4))
    with pytest.raises(
        ValueError,
        match=r"expected input of shape \(N, T, 3\).*Received shape \(8, 3\)",
    ):
        layer.forward(np.zeros((8, 3)))


def every_layer():
    """One of each, with an input it takes."""
    from nnscratch.layers.attention import MultiHeadAttention

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4))
    return [
        (LSTM(4, 5), x),
        (GRU(4, 5, return_sequences=True), x),
        (RNN(4, 5), x),
        (LayerNorm(4), x),
        (Embedding(6, 4), rng.integers(0, 6, (2, 3))),
        (PositionalEmbedding(3, 4), x),
        (MultiHeadAttention(4, 2, causal=True), x),
    ]


@pytest.mark.parametrize("index", range(7))
def test_backward_before_forward_is_a_runtime_error(index):
    layer, _ = every_layer()[index]
    built(layer)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((2, 3, 5)))


@pytest.mark.parametrize("index", range(7))
def test_backward_writes_gradients_in_place(index):
    # A later flat-parameter buffer holds views: backward must fill the
    # gradient arrays it was given, never put new ones in their place.
    layer, x = every_layer()[index]
    built(layer)
    before = {name: array for name, array in layer.grads.items()}
    assert set(before) == set(layer.state_shapes())
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    for name, array in layer.grads.items():
        assert array is before[name], name
        assert np.any(array != 0.0), name


@pytest.mark.parametrize("bad", [0, -1, 2.5, None, "4"])
def test_bad_constructor_arguments_name_the_argument(bad):
    with pytest.raises(ValueError, match="hidden_size: expected a positive integer"):
        LSTM(3, bad)
    with pytest.raises(ValueError, match="embedding_dim: expected a positive integer"):
        Embedding(3, bad)
    with pytest.raises(ValueError, match="return_sequences: expected True or False"):
        GRU(3, 4, return_sequences=bad)
    with pytest.raises(ValueError, match="nonlinearity: expected one of"):
        RNN(3, 4, nonlinearity="sigmoid")
