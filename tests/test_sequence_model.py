"""Sequence models end to end: the (N, T, K) loss and accuracy against torch, a
small GPT trained 10 AdamW steps beside its PyTorch twin, save/load and exact
resume of a transformer, and a recurrent classifier that learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TOLERANCE, to_numpy, to_torch

from nnscratch import Activation, AdamW, Dense, NeuralNetwork, check_gradients
from nnscratch.core.tree import named_arrays
from nnscratch.layers.embedding import Embedding
from nnscratch.layers.gru import GRU
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.positional_embedding import PositionalEmbedding
from nnscratch.layers.transformer import TransformerBlock
from nnscratch.losses.losses import CCE
from nnscratch.utils.metrics import accuracy

VOCAB, CONTEXT, WIDTH, HEADS, BLOCKS = 11, 8, 16, 4, 2


# ------------------------------------------------------------ sequence loss
@pytest.mark.parametrize("one_hot", [False, True])
def test_sequence_cce_matches_torch_cross_entropy(one_hot):
    rng = np.random.default_rng(0)
    logits = 3.0 * rng.standard_normal((3, 5, 4))
    labels = rng.integers(0, 4, size=(3, 5))
    targets = np.eye(4)[labels] if one_hot else labels
    logits_t = to_torch(logits, requires_grad=True)
    loss_t = F.cross_entropy(logits_t.reshape(-1, 4), torch.tensor(labels).reshape(-1))
    loss_t.backward()
    loss = CCE()
    value, grad = loss.value_and_gradient_from_logits(logits, targets)
    assert value == pytest.approx(loss_t.item(), rel=1e-12)
    assert loss.value_from_logits(logits, targets) == pytest.approx(value, rel=1e-12)
    assert grad.shape == logits.shape
    np.testing.assert_allclose(grad, to_numpy(logits_t.grad), **TOLERANCE)
    # From probabilities: the same value; the gradient through softmax agrees.
    probs_t = torch.softmax(to_torch(logits), -1).requires_grad_(True)
    nll_t = F.nll_loss(probs_t.log().reshape(-1, 4), torch.tensor(labels).reshape(-1))
    nll_t.backward()
    probs = to_numpy(probs_t)
    assert loss(probs, targets) == pytest.approx(nll_t.item(), rel=1e-12)
    np.testing.assert_allclose(
        loss.gradient(probs, targets), to_numpy(probs_t.grad), **TOLERANCE
    )


def test_sequence_accuracy_is_per_position():
    # Two sequences of 3 steps; 4 of the 6 positions are right.
    scores = np.zeros((2, 3, 2))
    scores[0, :, 1] = 1.0  # predicts 1, 1, 1
    scores[1, :, 0] = 1.0  # predicts 0, 0, 0
    labels = np.array([[1, 1, 0], [0, 1, 0]])
    assert accuracy(labels, scores) == pytest.approx(4 / 6)
    assert accuracy(np.eye(2)[labels], scores) == pytest.approx(4 / 6)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (np.full((4, 5), 3), r"expected integer labels in \[0, 3\)"),
        (np.zeros((4, 6)), r"labels of shape \(N, 5\). Received shape \(4, 6\)"),
        (np.zeros((4, 5, 3)), "each summing to 1"),
    ],
)
def test_sequence_targets_bad_input_by_message(targets, message):
    with pytest.raises(ValueError, match=message):
        CCE().check_targets(targets, (4, 5, 3), np.dtype("float64"))


# --------------------------------------------------------- a GPT and its twin
def build_gpt(seed=0, dropout=0.0, dtype="float64", learning_rate=3e-3):
    model = NeuralNetwork(
        loss_name="cce",
        optimizer=AdamW(learning_rate=learning_rate, weight_decay=0.1),
        seed=seed,
        dtype=dtype,
    )
    model.add(Embedding(VOCAB, WIDTH))
    model.add(PositionalEmbedding(CONTEXT, WIDTH))
    for _ in range(BLOCKS):
        model.add(TransformerBlock(WIDTH, HEADS, mlp_ratio=4, dropout=dropout))
    model.add(LayerNorm(WIDTH))
    model.add(Dense(WIDTH, VOCAB))
    model.add(Activation("softmax"))
    return model


def torch_gpt_logits(ids, p):
    """The same GPT in torch, from our arrays ``p`` (tensors by path)."""
    T = ids.shape[1]
    x = F.embedding(ids, p["0.W"]) + p["1.W"][:T]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    attention = torch.nn.MultiheadAttention(
        WIDTH, HEADS, batch_first=True, dtype=torch.float64
    )
    for block in range(2, 2 + BLOCKS):
        a, m = f"{block}.attention.body", f"{block}.mlp.body"
        normed = F.layer_norm(x, (WIDTH,), p[f"{a}.0.gamma"], p[f"{a}.0.beta"])
        params = {
            "in_proj_weight": p[f"{a}.1.W_qkv"].T,
            "in_proj_bias": p[f"{a}.1.b_qkv"],
            "out_proj.weight": p[f"{a}.1.W_o"].T,
            "out_proj.bias": p[f"{a}.1.b_o"],
        }
        args, kwargs = (normed,) * 3, {"attn_mask": mask, "need_weights": False}
        x = x + torch.func.functional_call(attention, params, args, kwargs)[0]
        normed = F.layer_norm(x, (WIDTH,), p[f"{m}.0.gamma"], p[f"{m}.0.beta"])
        hidden = F.gelu(normed @ p[f"{m}.1.W"] + p[f"{m}.1.b"])
        x = x + hidden @ p[f"{m}.3.W"] + p[f"{m}.3.b"]
    last = 2 + BLOCKS
    x = F.layer_norm(x, (WIDTH,), p[f"{last}.gamma"], p[f"{last}.beta"])
    return x @ p[f"{last + 1}.W"] + p[f"{last + 1}.b"]


def test_gpt_trains_ten_adamw_steps_like_its_torch_twin():
    model = build_gpt()
    rng = np.random.default_rng(1)
    arrays = dict(named_arrays(model.layers, "params"))
    for name, value in arrays.items():  # LayerNorm and biases off their init
        if name.endswith(("gamma", "beta", ".b", "b_qkv", "b_o")):
            value += 0.1 * rng.standard_normal(value.shape)
    params_t = {name: to_torch(v, requires_grad=True) for name, v in arrays.items()}
    optimizer_t = torch.optim.AdamW(
        list(params_t.values()), lr=3e-3, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.1,
    )  # fmt: skip
    for _ in range(10):
        ids = rng.integers(0, VOCAB, size=(4, CONTEXT))
        targets = np.roll(ids, -1, axis=1)
        loss, _ = model.train_step(ids, targets)
        optimizer_t.zero_grad()
        logits_t = torch_gpt_logits(torch.tensor(ids), params_t)
        loss_t = F.cross_entropy(
            logits_t.reshape(-1, VOCAB), torch.tensor(targets).reshape(-1)
        )
        loss_t.backward()
        optimizer_t.step()
        assert loss == pytest.approx(loss_t.item(), rel=1e-9)
    for name, value in arrays.items():
        np.testing.assert_allclose(
            value, to_numpy(params_t[name]), **TOLERANCE, err_msg=name
        )


def test_transformer_save_load_and_exact_resume(tmp_path):
    rng = np.random.default_rng(2)
    ids = rng.integers(0, VOCAB, size=(24, CONTEXT))
    targets = np.roll(ids, -1, axis=1)
    options = {"batch_size": 8, "verbose": 0}
    straight = build_gpt(seed=3, dropout=0.1)
    straight.train(ids, targets, epochs=4, **options)

    first = build_gpt(seed=3, dropout=0.1)
    first.train(ids, targets, epochs=2, **options)
    path = tmp_path / "gpt.npz"
    first.save(path)
    loaded = NeuralNetwork.load(path)
    np.testing.assert_array_equal(loaded.predict(ids), first.predict(ids))
    resumed = build_gpt(seed=3, dropout=0.1)
    history = resumed.train(ids, targets, epochs=4, resume_from=path, **options)
    assert len(history["loss"]) == 4
    for ours, theirs in zip(resumed.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("recurrent", [LSTM, GRU])
def test_recurrent_classifier_learns_the_sign_of_a_sum(recurrent):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 6, 2))
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    model = NeuralNetwork(loss_name="cce", optimizer=AdamW(learning_rate=0.02), seed=0)
    model.add(recurrent(2, 12))
    model.add(Dense(12, 2))
    model.add(Activation("softmax"))
    model.train(X, y, epochs=15, batch_size=32, verbose=0)
    assert model.evaluate(X, y)["accuracy"] > 0.9


def test_whole_sequence_models_pass_central_differences():
    rng = np.random.default_rng(0)
    gpt = NeuralNetwork(loss_name="cce", seed=0)
    for layer in (
        Embedding(7, 8),
        PositionalEmbedding(5, 8),
        TransformerBlock(8, 2, mlp_ratio=2),
        LayerNorm(8),
        Dense(8, 7),
        Activation("softmax"),
    ):
        gpt.add(layer)
    ids, targets = rng.integers(0, 7, (3, 5)), rng.integers(0, 7, (3, 5))
    errors = check_gradients(gpt, ids, targets)
    assert len(errors) == 18 and max(errors.values()) < 1e-6
    tagger = NeuralNetwork(loss_name="cce", seed=0)
    for layer in (GRU(3, 4, return_sequences=True), Dense(4, 5), Activation("softmax")):
        tagger.add(layer)
    X, y = rng.standard_normal((3, 6, 3)), rng.integers(0, 5, (3, 6))
    assert max(check_gradients(tagger, X, y).values()) < 1e-6
