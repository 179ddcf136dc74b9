"""ONNX exporters of the sequence layers: embeddings, LayerNorm, RNN/LSTM/GRU,
multi-head self-attention.

Each is an exporter as :mod:`nnscratch.interop.onnx_layers` describes
(``(layer, graph, x) -> output name``) and is registered there. Shapes in the
comments use ``N`` batch, ``T`` steps, ``F`` input features, ``H`` hidden
size, ``D`` embedding width, ``h`` heads of width ``d``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nnscratch.interop.onnx_layers import OnnxGraph

# Gate blocks of nnscratch's (torch's) layout, in the order ONNX wants them.
# LSTM: torch (i, f, g, o) -> ONNX (i, o, f, c); GRU: (r, z, n) -> (z, r, h).
GATE_ORDER = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}


def export_layernorm(layer: Any, graph: OnnxGraph, x: str) -> str:
    # y = gamma * (x - mean) / sqrt(var + eps) + beta over the last axis.
    return graph.node(
        "LayerNormalization",
        [
            x,
            graph.weight("gamma", layer.params["gamma"]),
            graph.weight("beta", layer.params["beta"]),
        ],
        axis=-1,
        epsilon=layer.epsilon,
    )


def export_embedding(layer: Any, graph: OnnxGraph, x: str) -> str:
    # (N, T) int64 ids -> rows of W: (N, T, D).
    return graph.node("Gather", [graph.weight("W", layer.params["W"]), x], axis=0)


def _steps(graph: OnnxGraph, x: str) -> str:
    """The 1-element int64 tensor ``[T]`` of ``x`` shaped (N, T, ...)."""
    shape = graph.node("Shape", [x])
    return graph.node("Slice", [shape, graph.ints("one", [1]), graph.ints("two", [2])])


def export_positional_embedding(layer: Any, graph: OnnxGraph, x: str) -> str:
    # y = x + W[:T]: (T, D) broadcast over the batch.
    positions = graph.node(
        "Slice",
        [
            graph.weight("W", layer.params["W"]),
            graph.ints("zero", [0]),
            _steps(graph, x),
            graph.ints("axis", [0]),
        ],
    )
    return graph.node("Add", [x, positions])


def _gate_blocks(array: np.ndarray, kind: str, hidden: int) -> np.ndarray:
    """Columns of ``(..., G*H)`` reordered block by block into ONNX's order."""
    blocks = [array[..., g * hidden : (g + 1) * hidden] for g in GATE_ORDER[kind]]
    return np.concatenate(blocks, axis=-1)


def export_recurrent(layer: Any, graph: OnnxGraph, x: str) -> str:
    kind, H = type(layer).__name__, layer.hidden_size
    params = {key: _gate_blocks(value, kind, H) for key, value in layer.params.items()}
    # ONNX keeps torch's (G*H, F) layout, with a leading direction axis:
    # W_ih (F, G*H) -> (1, G*H, F); W_hh (H, G*H) -> (1, G*H, H).
    W = graph.weight("W", params["W_ih"].T[None])
    R = graph.weight("R", params["W_hh"].T[None])
    # (G*H,) + (G*H,) -> (1, 2*G*H): input biases, then recurrent ones.
    B = graph.weight("B", np.concatenate([params["b_ih"], params["b_hh"]])[None])
    attributes: dict[str, Any] = {"hidden_size": H}
    if kind == "GRU":
        attributes["linear_before_reset"] = 1  # r * (h @ W_hn + b_hn), as torch
    if kind == "RNN":
        attributes["activations"] = [layer.nonlinearity.capitalize()]
    time_major = graph.node("Transpose", [x], perm=[1, 0, 2])  # (N, T, F) -> (T, N, F)
    sequence, last = graph.multi_node(kind, [time_major, W, R, B], 2, **attributes)
    if not layer.return_sequences:
        # Y_h (1, N, H) -> (N, H)
        return graph.node("Squeeze", [last, graph.ints("axes", [0])])
    # Y (T, 1, N, H) -> (T, N, H) -> (N, T, H)
    steps = graph.node("Squeeze", [sequence, graph.ints("axes", [1])])
    return graph.node("Transpose", [steps], perm=[1, 0, 2])


def _causal_mask(graph: OnnxGraph, x: str) -> str:
    """A (T, T) bool tensor, True where key ``j <= i`` (the visible ones)."""
    steps = _steps(graph, x)
    square = graph.node("Concat", [steps, steps], axis=0)  # [T, T]
    ones = graph.node(
        "ConstantOfShape",
        [square],
        value=graph.onnx.numpy_helper.from_array(np.ones(1, dtype=np.float32)),
    )
    lower = graph.node("Trilu", [ones], upper=0)  # ones on and below the diagonal
    return graph.node("Cast", [lower], to=graph.onnx.TensorProto.BOOL)


def export_attention(layer: Any, graph: OnnxGraph, x: str) -> str:
    h, d, D = layer.num_heads, layer.head_dim, layer.embed_dim
    qkv = graph.node("MatMul", [x, graph.weight("W_qkv", layer.params["W_qkv"])])
    qkv = graph.node("Add", [qkv, graph.weight("b_qkv", layer.params["b_qkv"])])
    # (N, T, 3D) -> (N, T, 3, h, d) -> (3, N, h, T, d); 0 copies N and T.
    qkv = graph.node("Reshape", [qkv, graph.ints("heads", [0, 0, 3, h, d])])
    qkv = graph.node("Transpose", [qkv], perm=[2, 0, 3, 1, 4])
    q, k, v = (
        graph.node("Gather", [qkv, graph.ints(name, np.array(index))], axis=0)
        for index, name in enumerate("qkv")
    )  # each (N, h, T, d)
    k_t = graph.node("Transpose", [k], perm=[0, 1, 3, 2])  # (N, h, d, T)
    scores = graph.node("MatMul", [q, k_t])  # (N, h, T, T)
    scores = graph.node("Mul", [scores, graph.weight("scale", 1.0 / np.sqrt(d))])
    if layer.causal:
        # exp(-inf) = 0: a query never sees a later key, as in nnscratch.
        scores = graph.node(
            "Where",
            [_causal_mask(graph, x), scores, graph.weight("minus_inf", -np.inf)],
        )
    weights = graph.node("Softmax", [scores], axis=-1)
    heads = graph.node("MatMul", [weights, v])  # (N, h, T, d)
    merged = graph.node("Transpose", [heads], perm=[0, 2, 1, 3])  # (N, T, h, d)
    merged = graph.node("Reshape", [merged, graph.ints("merge", [0, 0, D])])
    out = graph.node("MatMul", [merged, graph.weight("W_o", layer.params["W_o"])])
    return graph.node("Add", [out, graph.weight("b_o", layer.params["b_o"])])
