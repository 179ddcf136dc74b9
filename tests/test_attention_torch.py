"""MultiHeadAttention and TransformerBlock against torch, in float64 to 1e-6.

Attention causal and not, several lengths and head counts, dropout on the
attention weights (the same mask given to a torch reference), the KV cache
against the full forward, central differences for a whole block, bad input.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    TOLERANCE,
    check_layer_gradients,
    compare_layer_with_torch,
    to_numpy,
    to_torch,
)

from nnscratch.core.tree import named_arrays
from nnscratch.layers.attention import MultiHeadAttention
from nnscratch.layers.kv_cache import KVCache
from nnscratch.layers.transformer import TransformerBlock

MHA_PARAMS = ("W_qkv", "b_qkv", "W_o", "b_o")


def built(layer, seed=0):
    layer.build(np.random.default_rng(seed), "float64")
    for key, value in layer.params.items():
        if key.startswith("b"):  # non-zero biases, so their gradients show
            value[...] = np.random.default_rng(seed + 1).standard_normal(value.shape)
    return layer


def causal_mask(steps: int) -> torch.Tensor:
    """torch's boolean attn_mask: True above the diagonal = not allowed."""
    return torch.triu(torch.ones(steps, steps, dtype=torch.bool), diagonal=1)


def torch_attention(layer):
    """``torch_forward(x, W_qkv, b_qkv, W_o, b_o)`` by torch.nn.MultiheadAttention."""
    module = torch.nn.MultiheadAttention(
        layer.embed_dim, layer.num_heads, batch_first=True, dtype=torch.float64
    )

    def forward(x, W_qkv, b_qkv, W_o, b_o):
        params = {
            "in_proj_weight": W_qkv.T,
            "in_proj_bias": b_qkv,
            "out_proj.weight": W_o.T,
            "out_proj.bias": b_o,
        }
        mask = causal_mask(x.shape[1]) if layer.causal else None
        kwargs = {"attn_mask": mask, "need_weights": False}
        return torch.func.functional_call(module, params, (x, x, x), kwargs)[0]

    return forward


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("batch", "steps", "heads"), [(1, 1, 1), (2, 5, 2), (3, 7, 4)])
def test_attention_matches_torch(causal, batch, steps, heads):
    rng = np.random.default_rng(steps)
    layer = built(MultiHeadAttention(8, heads, causal=causal))
    x = rng.standard_normal((batch, steps, 8))
    compare_layer_with_torch(layer, torch_attention(layer), x, MHA_PARAMS, rng=rng)
    assert layer.attention_weights.shape == (batch, heads, steps, steps)
    if causal:  # nothing above the diagonal
        assert np.all(np.triu(layer.attention_weights, k=1) == 0.0)


@pytest.mark.parametrize("trial", range(4))
def test_attention_random_shapes_match_torch(trial):
    rng = np.random.default_rng(200 + trial)
    heads, head_dim = (int(v) for v in rng.integers(1, [5, 5]))
    N, T = (int(v) for v in rng.integers(1, [4, 9]))
    layer = built(MultiHeadAttention(heads * head_dim, heads, causal=trial < 2), trial)
    x = rng.standard_normal((N, T, heads * head_dim))
    compare_layer_with_torch(layer, torch_attention(layer), x, MHA_PARAMS, rng=rng)


def test_attention_dropout_matches_torch_with_the_same_mask():
    rng = np.random.default_rng(0)
    layer = built(MultiHeadAttention(6, 3, causal=True, dropout=0.3))
    N, T, h, d = 2, 4, 3, 2
    x = rng.standard_normal((N, T, 6))
    layer.rng = np.random.default_rng(42)
    keep = np.random.default_rng(42).random((N, h, T, T)) >= 0.3

    def reference(x_t, W_qkv, b_qkv, W_o, b_o):
        q, k, v = (x_t @ W_qkv + b_qkv).reshape(N, T, 3, h, d).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / np.sqrt(d)
        scores = scores.masked_fill(causal_mask(T), float("-inf"))
        weights = torch.softmax(scores, dim=-1) * to_torch(keep) / 0.7
        out = (weights @ v).transpose(1, 2).reshape(N, T, 6)
        return out @ W_o + b_o

    compare_layer_with_torch(layer, reference, x, MHA_PARAMS, training=True)
    # Inference ignores dropout: torch's module in eval mode.
    compare_layer_with_torch(layer, torch_attention(layer), x, MHA_PARAMS)


@pytest.mark.parametrize(
    ("dtype", "scale", "rtol"),
    [
        # exp of the scores as they are: ~1e3 overflows float64 and ~-1e3
        # underflows it; ~100 and ~-100 do the same in float32
        (np.float64, 1e3, 1e-12),
        (np.float64, -1e3, 1e-12),
        (np.float64, 1.0, 1e-12),
        (np.float32, 100.0, 1e-3),  # scores ~100: their float32 rounding shows
        (np.float32, -100.0, 1e-3),
        (np.float32, 1.0, 1e-5),
    ],
)
def test_attention_weights_are_the_softmax_at_any_scale(dtype, scale, rtol):
    # The scores are exponentiated without the shift by their maximum unless
    # a sum over the keys overflows or underflows; the weights must be the
    # softmax either way, with no warning.
    rng = np.random.default_rng(5)
    layer = MultiHeadAttention(4, 2, causal=True)
    layer.build(rng, dtype)
    # q = scale * x, k = v = x, no biases: x > 0 makes every score of a query
    # scale times a positive number, so that all of them overflow or underflow.
    eye = np.eye(4, dtype=dtype)
    layer.params["W_qkv"][...] = np.hstack([scale * eye, eye, eye])
    layer.params["b_qkv"][...] = 0.0
    x = np.abs(rng.standard_normal((2, 5, 4))).astype(dtype) + 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer.forward(x)
    heads = torch.from_numpy(x.astype(np.float64)).reshape(2, 5, 2, 2).transpose(1, 2)
    scores = scale * heads @ heads.transpose(-1, -2) / np.sqrt(2.0)
    expected = torch.softmax(scores.masked_fill(causal_mask(5), float("-inf")), -1)
    assert layer.attention_weights.dtype == dtype
    # Weights below the smallest normal number (exp(-100) is one in float32)
    # are compared absolutely.
    atol = float(np.finfo(dtype).tiny)
    np.testing.assert_allclose(
        layer.attention_weights, expected.numpy(), rtol=rtol, atol=atol
    )


def test_attention_nan_reaches_the_queries_that_see_it_as_in_torch():
    # torch's masked_fill hides a NaN key from the queries before it.
    layer = built(MultiHeadAttention(4, 2, causal=True))
    x = np.random.default_rng(0).standard_normal((1, 3, 4))
    x[0, 1, 0] = np.nan
    y = layer.forward(x)
    assert np.isnan(y[0, 1:]).all()  # position 1 and those that see it
    args = [to_torch(x)] + [to_torch(layer.params[key]) for key in MHA_PARAMS]
    expected = to_numpy(torch_attention(layer)(*args))
    np.testing.assert_allclose(y[0, 0], expected[0, 0], **TOLERANCE)


class ReseededAttention(MultiHeadAttention):
    """The same dropout mask on every call, for central differences."""

    def forward(self, x, training=False):
        self.rng = np.random.default_rng(7)
        return super().forward(x, training)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_central_differences(causal):
    rng = np.random.default_rng(2)
    layer = built(ReseededAttention(4, 2, causal=causal, dropout=0.25))
    check_layer_gradients(layer, rng.standard_normal((2, 3, 4)), training=True)


def test_attention_by_hand():
    # One head, identity projections, two positions x0 = [1, 0], x1 = [0, 1]:
    # scores = x x.T / sqrt(2) = I / sqrt 2, so each row's softmax puts
    # e^(1/sqrt 2) / (e^(1/sqrt 2) + 1) = 0.6698 on itself. Causal, position 0
    # sees only itself: y0 = x0, y1 = 0.3302 x0 + 0.6698 x1.
    layer = built(MultiHeadAttention(2, 1, causal=True))
    layer.params["W_qkv"][...] = np.hstack([np.eye(2)] * 3)
    layer.params["W_o"][...] = np.eye(2)
    for key in ("b_qkv", "b_o"):
        layer.params[key][...] = 0.0
    y = layer.forward(np.eye(2)[None])
    np.testing.assert_allclose(y[0], [[1.0, 0.0], [0.33023845, 0.66976155]], rtol=1e-7)


@pytest.mark.parametrize("prompt", [1, 4])
def test_kv_cache_gives_the_full_forward(prompt):
    rng = np.random.default_rng(1)
    layer = built(MultiHeadAttention(8, 2, causal=True))
    x = rng.standard_normal((3, 7, 8))
    cache = KVCache()
    parts = [layer.forward_step(x[:, :prompt], cache)]
    cache.advance(prompt)
    for t in range(prompt, 7):
        parts.append(layer.forward_step(x[:, t : t + 1], cache))
        cache.advance(1)
    np.testing.assert_allclose(np.concatenate(parts, axis=1), layer.forward(x), 1e-12)
    assert cache.state(layer)["keys"].shape == (3, 2, 7, 4)  # (N, h, T, d)


def test_kv_cache_refuses_non_causal_attention():
    layer = built(MultiHeadAttention(4, 2, causal=False))
    with pytest.raises(ValueError, match="expected a causal layer"):
        layer.forward_step(np.zeros((1, 1, 4)), KVCache())


@pytest.mark.parametrize(("embed_dim", "heads"), [(10, 3), (4, 8)])
def test_width_not_divisible_by_heads_is_a_value_error(embed_dim, heads):
    message = (
        "expected embed_dim divisible by num_heads. "
        f"Received embed_dim={embed_dim}, num_heads={heads}"
    )
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(embed_dim, heads)
    with pytest.raises(ValueError, match=message):
        TransformerBlock(embed_dim, heads)


def test_attention_wrong_width_is_a_value_error():
    layer = built(MultiHeadAttention(4, 2))
    with pytest.raises(ValueError, match=r"\(N, T, 4\). Received shape \(2, 3, 5\)"):
        layer.forward(np.zeros((2, 3, 5)))


# ------------------------------------------------------------ the whole block
def block_arrays(block):
    """Our block's params by path, in walking order (the torch twin's inputs)."""
    return dict(named_arrays([block], "params"))


def torch_block(x, p, heads, causal=True):
    """The pre-norm GPT block in torch from our arrays ``p`` (tensors by path)."""
    D = x.shape[-1]
    attention = torch.nn.MultiheadAttention(
        D, heads, batch_first=True, dtype=torch.float64
    )
    params = {
        "in_proj_weight": p["0.attention.body.1.W_qkv"].T,
        "in_proj_bias": p["0.attention.body.1.b_qkv"],
        "out_proj.weight": p["0.attention.body.1.W_o"].T,
        "out_proj.bias": p["0.attention.body.1.b_o"],
    }
    normed = F.layer_norm(
        x, (D,), p["0.attention.body.0.gamma"], p["0.attention.body.0.beta"]
    )
    mask = causal_mask(x.shape[1]) if causal else None
    kwargs = {"attn_mask": mask, "need_weights": False}
    args = (normed, normed, normed)
    h = x + torch.func.functional_call(attention, params, args, kwargs)[0]
    normed = F.layer_norm(h, (D,), p["0.mlp.body.0.gamma"], p["0.mlp.body.0.beta"])
    hidden = F.gelu(normed @ p["0.mlp.body.1.W"] + p["0.mlp.body.1.b"])
    return h + hidden @ p["0.mlp.body.3.W"] + p["0.mlp.body.3.b"]


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("steps", [1, 6])
def test_transformer_block_matches_torch(causal, steps):
    rng = np.random.default_rng(steps)
    block = TransformerBlock(8, 2, mlp_ratio=2, causal=causal)
    block.build(rng, "float64")
    arrays = block_arrays(block)
    for value in arrays.values():  # LayerNorm's ones and zeros perturbed too
        value += 0.1 * rng.standard_normal(value.shape)
    x = rng.standard_normal((3, steps, 8))
    x_t = to_torch(x, requires_grad=True)
    params_t = {name: to_torch(v, requires_grad=True) for name, v in arrays.items()}
    y_t = torch_block(x_t, params_t, 2, causal)
    y = block.forward(x)
    np.testing.assert_allclose(y, to_numpy(y_t), **TOLERANCE)
    upstream = rng.standard_normal(y.shape)
    (y_t * to_torch(upstream)).sum().backward()
    np.testing.assert_allclose(
        block.backward(upstream), to_numpy(x_t.grad), **TOLERANCE
    )
    grads = dict(named_arrays([block], "grads"))
    assert len(grads) == 12
    for name, param_t in params_t.items():
        np.testing.assert_allclose(
            grads[name], to_numpy(param_t.grad), **TOLERANCE, err_msg=name
        )


def test_transformer_block_central_differences():
    rng = np.random.default_rng(4)
    block = TransformerBlock(4, 2, mlp_ratio=2)
    block.build(rng, "float64")
    x = rng.standard_normal((2, 3, 4))
    upstream = rng.standard_normal((2, 3, 4))
    arrays = block_arrays(block)

    def objective():
        return float(np.sum(block.forward(x) * upstream))

    from nnscratch.engine.gradient_check import numerical_gradient

    block.forward(x)
    dx = block.backward(upstream)
    grads = {name: g.copy() for name, g in named_arrays([block], "grads")}
    np.testing.assert_allclose(dx, numerical_gradient(objective, x), 1e-6, 1e-7)
    for name, value in arrays.items():
        np.testing.assert_allclose(
            grads[name], numerical_gradient(objective, value), 1e-6, 1e-7, err_msg=name
        )


def test_transformer_block_lists_its_parts_and_rebuilds_from_config():
    block = TransformerBlock(8, 2, dropout=0.1)
    kinds = [type(layer).__name__ for layer in block.attention_residual.body.layers]
    assert kinds == ["LayerNorm", "MultiHeadAttention", "Dropout"]
    kinds = [type(layer).__name__ for layer in block.mlp_residual.body.layers]
    assert kinds == ["LayerNorm", "Dense", "Activation", "Dense", "Dropout"]
    assert [name for name, _ in block.named_children()] == ["attention", "mlp"]
    again = TransformerBlock.from_config(block.get_config())
    assert again.get_config() == block.get_config()
    assert block.state_shapes() == {}
    block.build(np.random.default_rng(0), "float64")
    shapes = {name: a.shape for name, a in named_arrays([block], "params")}
    assert shapes["0.mlp.body.1.W"] == (8, 32)


def test_transformer_block_kv_cache_gives_the_full_forward():
    rng = np.random.default_rng(5)
    block = TransformerBlock(8, 4, dropout=0.2)
    block.build(rng, "float64")
    x = rng.standard_normal((2, 5, 8))
    cache = KVCache()
    first = block.forward_step(x[:, :3], cache)
    cache.advance(3)
    rest = [block.forward_step(x[:, t : t + 1], cache) for t in (3,)]
    cache.advance(1)
    rest.append(block.forward_step(x[:, 4:], cache))
    steps = np.concatenate([first, *rest], axis=1)
    np.testing.assert_allclose(steps, block.forward(x), rtol=1e-12, atol=1e-12)
