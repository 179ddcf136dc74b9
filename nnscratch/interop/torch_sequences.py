"""torch <-> nnscratch converters of containers and sequence layers.

Registered in :mod:`nnscratch.interop.torch_convert`; each follows its two
conventions: ``(module, context) -> (layer, copy)`` from torch and
``(layer, context) -> module`` to torch. Recurrent weights keep torch's gate
order, so ``W_ih = weight_ih_l0.T`` and so on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.layers.attention import MultiHeadAttention
from nnscratch.layers.embedding import Embedding, PositionalEmbedding
from nnscratch.layers.gru import GRU
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.normalization import Normalization
from nnscratch.layers.residual import Residual
from nnscratch.layers.rnn import RNN
from nnscratch.layers.sequential import Sequential

if TYPE_CHECKING:
    from nnscratch.interop.torch_convert import Context

RECURRENT = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def _helpers() -> Any:
    # torch_convert imports this module; its helpers are read at call time.
    from nnscratch.interop import torch_convert

    return torch_convert


def _array(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()


# --------------------------------------------------------------- torch -> nn
def from_sequential(module: Any, context: Context) -> tuple[Layer, Any]:
    convert = _helpers().convert_module
    pairs = [convert(child, str(i), context) for i, child in enumerate(module)]

    def copy() -> None:
        for _, child_copy in pairs:
            child_copy()

    return Sequential([layer for layer, _ in pairs]), copy


def from_residual(module: Any, context: Context) -> tuple[Layer, Any]:
    body, copy = _helpers().convert_module(module.body, "body", context)
    return Residual(body), copy


def from_normalization(module: Any, context: Context) -> tuple[Layer, Any]:
    layer = Normalization(int(module.mean.shape[-1]))
    buffers = {"mean": _array(module.mean), "variance": _array(module.variance)}
    return layer, _helpers().copy_into(layer, "buffers", buffers)


def from_layernorm(module: Any, context: Context) -> tuple[Layer, Any]:
    check = _helpers().check_setting
    check(module, "len(normalized_shape)", len(module.normalized_shape), 1)
    check(module, "elementwise_affine", module.elementwise_affine, True)
    check(module, "bias", module.bias is not None, True)
    layer = LayerNorm(module.normalized_shape[0], epsilon=module.eps)
    weights = {"gamma": _array(module.weight), "beta": _array(module.bias)}
    return layer, _helpers().copy_into(layer, "params", weights)


def from_embedding(module: Any, context: Context) -> tuple[Layer, Any]:
    check = _helpers().check_setting
    for name in ("padding_idx", "max_norm"):
        check(module, name, getattr(module, name), None)
    check(module, "scale_grad_by_freq", module.scale_grad_by_freq, False)
    layer = Embedding(module.num_embeddings, module.embedding_dim)
    return layer, _helpers().copy_into(layer, "params", {"W": _array(module.weight)})


def from_positional(module: Any, context: Context) -> tuple[Layer, Any]:
    layer = PositionalEmbedding(*module.weight.shape)
    return layer, _helpers().copy_into(layer, "params", {"W": _array(module.weight)})


def from_recurrent(module: Any, context: Context, return_sequences: bool = True):
    """A bare ``nn.RNN``/``LSTM``/``GRU`` stands for its output sequence (the
    first item torch returns); the :class:`Recurrent` wrapper says which."""
    check = _helpers().check_setting
    for name, supported in (
        ("num_layers", 1),
        ("bidirectional", False),
        ("batch_first", True),
        ("bias", True),
    ):
        check(module, name, getattr(module, name), supported)
    kind = type(module).__name__
    if kind == "LSTM":
        check(module, "proj_size", module.proj_size, 0)
    arguments: dict[str, Any] = {"return_sequences": return_sequences}
    if kind == "RNN":
        arguments["nonlinearity"] = module.nonlinearity
    layer = RECURRENT[kind](module.input_size, module.hidden_size, **arguments)
    weights = {
        "W_ih": _array(module.weight_ih_l0).T,  # (G*H, F) -> (F, G*H)
        "W_hh": _array(module.weight_hh_l0).T,
        "b_ih": _array(module.bias_ih_l0),
        "b_hh": _array(module.bias_hh_l0),
    }
    return layer, _helpers().copy_into(layer, "params", weights)


def from_recurrent_wrapper(module: Any, context: Context) -> tuple[Layer, Any]:
    return from_recurrent(module.rnn, context, module.return_sequences)


def from_self_attention(module: Any, context: Context) -> tuple[Layer, Any]:
    attention, check = module.attention, _helpers().check_setting
    check(attention, "batch_first", attention.batch_first, True)
    check(attention, "kdim == vdim == embed_dim", attention._qkv_same_embed_dim, True)
    check(attention, "bias", attention.in_proj_bias is not None, True)
    check(attention, "add_bias_kv", attention.bias_k is not None, False)
    check(attention, "add_zero_attn", attention.add_zero_attn, False)
    layer = MultiHeadAttention(
        attention.embed_dim, attention.num_heads, module.causal, attention.dropout
    )
    weights = {
        "W_qkv": _array(attention.in_proj_weight).T,  # (3D, D) -> (D, 3D)
        "b_qkv": _array(attention.in_proj_bias),
        "W_o": _array(attention.out_proj.weight).T,
        "b_o": _array(attention.out_proj.bias),
    }
    return layer, _helpers().copy_into(layer, "params", weights)


def torch_sequence_converters() -> dict[type, Any]:
    """torch module type -> converter, for containers and sequence layers."""
    from torch import nn

    from nnscratch.interop import torch_modules

    return {
        nn.Sequential: from_sequential,
        nn.LayerNorm: from_layernorm,
        nn.Embedding: from_embedding,
        nn.RNN: from_recurrent,
        nn.LSTM: from_recurrent,
        nn.GRU: from_recurrent,
        torch_modules.Residual: from_residual,
        torch_modules.Normalization: from_normalization,
        torch_modules.PositionalEmbedding: from_positional,
        torch_modules.Recurrent: from_recurrent_wrapper,
        torch_modules.SelfAttention: from_self_attention,
    }


# --------------------------------------------------------------- nn -> torch
def _tensor(array: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


def to_sequential(layer: Layer, context: Context) -> Any:
    """Sequential, and any container whose forward chains its children
    (TransformerBlock), as an ``nn.Sequential``."""
    from torch import nn

    convert = _helpers().convert_layer
    return nn.Sequential(
        *(convert(child, name, context) for name, child in layer.named_children())
    )


def to_residual(layer: Residual, context: Context) -> Any:
    from nnscratch.interop import torch_modules

    return torch_modules.Residual(_helpers().convert_layer(layer.body, "body", context))


def to_normalization(layer: Normalization, context: Context) -> Any:
    from nnscratch.interop import torch_modules

    mean, variance = layer.buffers["mean"], layer.buffers["variance"]
    return torch_modules.Normalization(_tensor(mean), _tensor(variance))


def to_layernorm(layer: LayerNorm, context: Context) -> Any:
    from torch import nn

    module = nn.LayerNorm(
        layer.normalized_shape, eps=layer.epsilon, dtype=context.dtype
    )
    module.weight.copy_(_tensor(layer.params["gamma"]))
    module.bias.copy_(_tensor(layer.params["beta"]))
    return module


def to_embedding(layer: Embedding, context: Context) -> Any:
    from torch import nn

    module = nn.Embedding(
        layer.num_embeddings, layer.embedding_dim, dtype=context.dtype
    )
    module.weight.copy_(_tensor(layer.params["W"]))
    return module


def to_positional(layer: PositionalEmbedding, context: Context) -> Any:
    from nnscratch.interop import torch_modules

    module = torch_modules.PositionalEmbedding(
        layer.max_length, layer.embed_dim, context.dtype
    )
    module.weight.copy_(_tensor(layer.params["W"]))
    return module


def to_recurrent(layer: Any, context: Context) -> Any:
    from torch import nn

    from nnscratch.interop import torch_modules

    kind = type(layer).__name__
    arguments: dict[str, Any] = {"batch_first": True, "dtype": context.dtype}
    if kind == "RNN":
        arguments["nonlinearity"] = layer.nonlinearity
    rnn = getattr(nn, kind)(layer.input_size, layer.hidden_size, **arguments)
    rnn.weight_ih_l0.copy_(_tensor(layer.params["W_ih"].T))
    rnn.weight_hh_l0.copy_(_tensor(layer.params["W_hh"].T))
    rnn.bias_ih_l0.copy_(_tensor(layer.params["b_ih"]))
    rnn.bias_hh_l0.copy_(_tensor(layer.params["b_hh"]))
    return torch_modules.Recurrent(rnn, layer.return_sequences)


def to_self_attention(layer: MultiHeadAttention, context: Context) -> Any:
    from torch import nn

    from nnscratch.interop import torch_modules

    attention = nn.MultiheadAttention(
        layer.embed_dim,
        layer.num_heads,
        dropout=layer.dropout,
        batch_first=True,
        dtype=context.dtype,
    )
    attention.in_proj_weight.copy_(_tensor(layer.params["W_qkv"].T))
    attention.in_proj_bias.copy_(_tensor(layer.params["b_qkv"]))
    attention.out_proj.weight.copy_(_tensor(layer.params["W_o"].T))
    attention.out_proj.bias.copy_(_tensor(layer.params["b_o"]))
    return torch_modules.SelfAttention(attention, layer.causal)
