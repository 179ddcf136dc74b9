"""How each layer becomes ONNX nodes: one exporter function per layer type.

An exporter receives the layer, the :class:`OnnxGraph` being built and the
name of its input tensor, adds its nodes and weights, and returns the name of
its output tensor. :data:`ONNX_EXPORTERS` maps each layer type to its
exporter, so supporting a new layer is one function and one entry.

Every exporter writes the layer's inference form: Dropout is the identity,
BatchNorm uses its running statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.interop import onnx_sequences as sequences
from nnscratch.layers.activation import Activation
from nnscratch.layers.activation_functions import ELU_ALPHA, LEAKY_RELU_SLOPE
from nnscratch.layers.attention import MultiHeadAttention
from nnscratch.layers.batchnorm import BatchNorm
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.embedding import Embedding, PositionalEmbedding
from nnscratch.layers.flatten import Flatten
from nnscratch.layers.gru import GRU
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.normalization import EPSILON as NORMALIZATION_EPSILON
from nnscratch.layers.normalization import Normalization
from nnscratch.layers.pooling import AvgPool2D, MaxPool2D
from nnscratch.layers.residual import Residual
from nnscratch.layers.rnn import RNN
from nnscratch.layers.sequential import Sequential
from nnscratch.layers.transformer import TransformerBlock

__all__ = ["ACTIVATION_EXPORTERS", "ONNX_EXPORTERS", "OnnxGraph"]


class OnnxGraph:
    """The nodes and weights of a graph under construction, with unique names.

    Parameters
    ----------
    onnx_module : module
        The ``onnx`` package (imported by the caller, as it is optional).
    dtype : numpy dtype, default float32
        The dtype every weight is written in.
    """

    def __init__(self, onnx_module: Any, dtype: Any = "float32") -> None:
        self.onnx = onnx_module
        self.dtype = np.dtype(dtype)
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._counts: dict[str, int] = {}
        self._scope: list[str] = []

    def unique(self, hint: str) -> str:
        """A tensor name, prefixed with the current layer path, not used before."""
        name = "/".join([*self._scope, hint])
        count = self._counts.get(name, 0)
        self._counts[name] = count + 1
        return name if count == 0 else f"{name}_{count}"

    def weight(self, hint: str, array: np.ndarray, dtype: Any = None) -> str:
        """Add ``array`` as an initializer (in the graph's dtype); return its name."""
        name = self.unique(hint)
        value = np.asarray(array, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def node(self, op_type: str, inputs: list[str], **attributes: Any) -> str:
        """Add one node with a single output; return the output's name."""
        return self.multi_node(op_type, inputs, 1, **attributes)[0]

    def multi_node(
        self, op_type: str, inputs: list[str], outputs: int, **attributes: Any
    ) -> list[str]:
        """Add one node with ``outputs`` outputs; return their names."""
        names = [self.unique(op_type) for _ in range(outputs)]
        node = self.onnx.helper.make_node(
            op_type, inputs, names, name=f"{names[0]}:node", **attributes
        )
        self.nodes.append(node)
        return names

    def ints(self, hint: str, values: Any) -> str:
        """An int64 initializer (shapes, axes, indices)."""
        return self.weight(hint, np.asarray(values, dtype=np.int64), np.int64)

    def layer(self, layer: Layer, x: str, label: str) -> str:
        """Export ``layer`` applied to tensor ``x``, under the path part ``label``."""
        exporter = ONNX_EXPORTERS.get(type(layer))
        path = "/".join([*self._scope, label])
        if exporter is None:
            known = sorted(kind.__name__ for kind in ONNX_EXPORTERS)
            raise ValueError(
                f"to_onnx: cannot export layer {path} ({type(layer).__name__}): "
                f"expected one of the exportable layers {known}. "
                f"Received {layer!r}"
            )
        self._scope.append(label)
        try:
            return exporter(layer, self, x)
        finally:
            self._scope.pop()


Exporter = Callable[[Any, OnnxGraph, str], str]


# ---------------------------------------------------------------- activations
def _gelu(graph: OnnxGraph, x: str) -> str:
    # y = x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt 2)), the exact GELU, from
    # opset-17 ops (Gelu itself is opset 20).
    scaled = graph.node("Div", [x, graph.weight("sqrt2", np.sqrt(2.0))])
    erf = graph.node("Erf", [scaled])
    one_plus = graph.node("Add", [erf, graph.weight("one", 1.0)])
    half_x = graph.node("Mul", [x, graph.weight("half", 0.5)])
    return graph.node("Mul", [half_x, one_plus])


ACTIVATION_EXPORTERS: dict[str, Callable[[OnnxGraph, str], str]] = {
    "relu": lambda graph, x: graph.node("Relu", [x]),
    "sigmoid": lambda graph, x: graph.node("Sigmoid", [x]),
    "tanh": lambda graph, x: graph.node("Tanh", [x]),
    # Softmax (opset >= 13) normalises over one axis: the last, as nnscratch.
    "softmax": lambda graph, x: graph.node("Softmax", [x], axis=-1),
    "leaky_relu": lambda graph, x: graph.node("LeakyRelu", [x], alpha=LEAKY_RELU_SLOPE),
    "elu": lambda graph, x: graph.node("Elu", [x], alpha=ELU_ALPHA),
    "gelu": _gelu,
    # onnxruntime's Softplus is the stable log1p(exp(-|x|)) + max(x, 0).
    "softplus": lambda graph, x: graph.node("Softplus", [x]),
    "linear": lambda graph, x: graph.node("Identity", [x]),
}
"""Activation name -> function adding its nodes; one entry per name in ACTIVATIONS."""


def _activation(layer: Activation, graph: OnnxGraph, x: str) -> str:
    exporter = ACTIVATION_EXPORTERS.get(layer.name)
    if exporter is None:
        raise ValueError(
            f"to_onnx: cannot export Activation({layer.name!r}): expected one of "
            f"{sorted(ACTIVATION_EXPORTERS)}"
        )
    return exporter(graph, x)


# --------------------------------------------------------------------- layers
def _dense(layer: Dense, graph: OnnxGraph, x: str) -> str:
    # y = x @ W + b over the last axis: MatMul broadcasts over (N, ...) as
    # torch.nn.Linear does, where Gemm would take (N, in) only.
    product = graph.node("MatMul", [x, graph.weight("W", layer.params["W"])])
    return graph.node("Add", [product, graph.weight("b", layer.params["b"])])


def _conv2d(layer: Conv2D, graph: OnnxGraph, x: str) -> str:
    # ONNX Conv is a cross-correlation with W (O, C, kh, kw), as torch and
    # nnscratch; pads are (top, left, bottom, right).
    ph, pw = layer.padding
    return graph.node(
        "Conv",
        [x, graph.weight("W", layer.params["W"]), graph.weight("b", layer.params["b"])],
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=[ph, pw, ph, pw],
    )


def _max_pool(layer: MaxPool2D, graph: OnnxGraph, x: str) -> str:
    # No padding and floor rounding (ceil_mode=0): leftover rows are dropped.
    return graph.node(
        "MaxPool", [x], kernel_shape=list(layer.pool_size), strides=list(layer.stride)
    )


def _avg_pool(layer: AvgPool2D, graph: OnnxGraph, x: str) -> str:
    return graph.node(
        "AveragePool",
        [x],
        kernel_shape=list(layer.pool_size),
        strides=list(layer.stride),
    )


def _flatten(layer: Flatten, graph: OnnxGraph, x: str) -> str:
    return graph.node("Flatten", [x], axis=1)  # (N, ...) -> (N, prod(...))


def _dropout(layer: Dropout, graph: OnnxGraph, x: str) -> str:
    return graph.node("Identity", [x])  # inverted dropout: identity at inference


def _batchnorm(layer: BatchNorm, graph: OnnxGraph, x: str) -> str:
    # Inference form: y = gamma * (x - running_mean) / sqrt(running_var + eps)
    # + beta, over axis 1 of (N, C) or (N, C, H, W).
    inputs = [
        x,
        graph.weight("gamma", layer.params["gamma"]),
        graph.weight("beta", layer.params["beta"]),
        graph.weight("running_mean", layer.buffers["running_mean"]),
        graph.weight("running_var", layer.buffers["running_var"]),
    ]
    return graph.node("BatchNormalization", inputs, epsilon=layer.epsilon)


def _normalization(layer: Normalization, graph: OnnxGraph, x: str) -> str:
    # y = (x - mean) * (1 / sqrt(var + 1e-7)) over the last axis, as forward.
    scale = 1.0 / np.sqrt(layer.buffers["variance"] + NORMALIZATION_EPSILON)
    centred = graph.node("Sub", [x, graph.weight("mean", layer.buffers["mean"])])
    return graph.node("Mul", [centred, graph.weight("scale", scale)])


# ----------------------------------------------------------------- containers
def _chain(layer: Layer, graph: OnnxGraph, x: str) -> str:
    """A container whose forward runs its children in order (Sequential,
    TransformerBlock: ``mlp_residual(attention_residual(x))``)."""
    for name, child in layer.named_children():
        x = graph.layer(child, x, f"{name}_{type(child).__name__}")
    return x


def _residual(layer: Residual, graph: OnnxGraph, x: str) -> str:
    body = graph.layer(layer.body, x, f"body_{type(layer.body).__name__}")
    return graph.node("Add", [x, body])  # y = x + body(x)


ONNX_EXPORTERS: dict[type, Exporter] = {
    Activation: _activation,
    AvgPool2D: _avg_pool,
    BatchNorm: _batchnorm,
    Conv2D: _conv2d,
    Dense: _dense,
    Dropout: _dropout,
    Embedding: sequences.export_embedding,
    Flatten: _flatten,
    GRU: sequences.export_recurrent,
    LSTM: sequences.export_recurrent,
    LayerNorm: sequences.export_layernorm,
    MaxPool2D: _max_pool,
    MultiHeadAttention: sequences.export_attention,
    Normalization: _normalization,
    PositionalEmbedding: sequences.export_positional_embedding,
    RNN: sequences.export_recurrent,
    Residual: _residual,
    Sequential: _chain,
    TransformerBlock: _chain,
}
"""Layer type -> exporter. Looked up by exact type: a subclass may compute
something else, so it needs its own entry."""
