"""to_onnx: write a model as an ONNX file that onnxruntime (or any runtime) runs.

The graph is built with the ``onnx`` package (extra ``[onnx]``), layer by
layer through the exporters of :mod:`nnscratch.interop.onnx_layers`, in
float32, with a dynamic batch axis named ``batch``. ``onnx.checker`` checks
it before it is written.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> import onnxruntime
>>> from nnscratch import NeuralNetwork, Dense, Activation
>>> model = NeuralNetwork(loss_name="cce", seed=0)
>>> model.add(Dense(4, 3))
>>> model.add(Activation("softmax"))
>>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
>>> to_onnx(model, path, input_shape=(4,))
>>> session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
>>> X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
>>> (onnx_out,) = session.run(None, {"input": X})
>>> bool(np.allclose(onnx_out, model.predict(X), atol=1e-5))
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.tree import leaves
from nnscratch.interop._optional import require
from nnscratch.interop.onnx_layers import OnnxGraph
from nnscratch.utils.io import atomic_write

if TYPE_CHECKING:
    from nnscratch.core.tree import leaves
from nnscratch.engine.model import NeuralNetwork

__all__ = ["OPSET", "infer_input_shape", "to_onnx"]

OPSET = 17
"""The ONNX operator set written (LayerNormalization and all ops used are in 17)."""

IR_VERSION = 8
"""The ONNX file format version that goes with opset 17."""

INPUT_NAME = "input"
OUTPUT_NAME = "output"
BATCH_AXIS = "batch"


def infer_input_shape(model: NeuralNetwork) -> tuple[int, ...] | None:
    """The per-sample input shape the first layer implies, or None.

    A first Dense implies ``(input_size,)`` and a first BatchNorm or
    Normalization ``(num_features,)`` (the first leaf counts, inside
    containers too); a Conv2D leaves the image size open.
    """
    first = next((layer for _, layer in leaves(model.layers)), None)
    name = type(first).__name__
    if name == "Dense":
        return (first.input_size,)
    if name in ("BatchNorm", "Normalization") and first.num_features:
        return (first.num_features,)
    return None


def _check_input_shape(model: NeuralNetwork, input_shape: Any) -> tuple:
    """``input_shape`` as a tuple of positive ints (or None for a dynamic axis)."""
    if input_shape is None:
        input_shape = infer_input_shape(model)
        if input_shape is None:
            raise ValueError(
                "to_onnx: expected input_shape, the shape of one sample without "
                f"the batch axis (e.g. (1, 28, 28)); the first layer "
                f"{model.layers[0]!r} does not imply it"
            )
    if isinstance(input_shape, int | np.integer):
        input_shape = (input_shape,)
    dims = tuple(input_shape)
    for dim in dims:
        is_int = isinstance(dim, int | np.integer) and not isinstance(dim, bool)
        if dim is not None and not (is_int and dim > 0):
            raise ValueError(
                "to_onnx: input_shape: expected positive sizes (or None for a "
                f"dynamic axis), without the batch axis. Received {input_shape!r}"
            )
    return tuple(None if dim is None else int(dim) for dim in dims)


def _takes_ids(model: NeuralNetwork) -> bool:
    """Whether the input is integer ids (a first Embedding), not float data."""
    return not getattr(model.layers[0], "float_input", True)


def _output_shape(model: NeuralNetwork, input_shape: tuple) -> list[int | str | None]:
    """The output's shape, from two zero batches of different sizes.

    An axis whose size changes between them (the batch, and any axis that
    follows a dynamic input axis) is left symbolic.
    """
    shapes = []
    dtype = np.int64 if _takes_ids(model) else model.dtype
    for batch, dynamic in ((1, 2), (2, 3)):
        probe = np.zeros((batch, *(dynamic if d is None else d for d in input_shape)))
        try:
            shapes.append(model.predict(probe.astype(dtype)).shape)
        except ValueError as error:
            raise ValueError(
                f"to_onnx: input_shape {input_shape} does not fit the model: {error}"
            ) from error
    first, second = shapes
    dims: list[int | str | None] = [BATCH_AXIS]
    for a, b in zip(first[1:], second[1:], strict=True):
        dims.append(a if a == b else None)
    return dims


def build_onnx_model(model: NeuralNetwork, input_shape: Any = None) -> Any:
    """The checked ``onnx.ModelProto`` for ``model`` (what :func:`to_onnx` writes)."""
    onnx = require("onnx", "onnx")
    require("onnx.numpy_helper", "onnx")
    if not model.layers:
        raise ValueError("to_onnx: the model has no layers: expected add() before use")
    input_shape = _check_input_shape(model, input_shape)
    graph = OnnxGraph(onnx)
    x = INPUT_NAME
    for index, layer in enumerate(model.layers):
        x = graph.layer(layer, x, f"{index}_{type(layer).__name__}")
    graph.nodes.append(onnx.helper.make_node("Identity", [x], [OUTPUT_NAME]))
    float32, int64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    inputs = [
        onnx.helper.make_tensor_value_info(
            INPUT_NAME,
            int64 if _takes_ids(model) else float32,
            [BATCH_AXIS, *input_shape],
        )
    ]
    outputs = [
        onnx.helper.make_tensor_value_info(
            OUTPUT_NAME, float32, _output_shape(model, input_shape)
        )
    ]
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes, "nnscratch", inputs, outputs, graph.initializers
        ),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="nnscratch",
    )
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(
    model: NeuralNetwork,
    path: str | os.PathLike,
    input_shape: Sequence[int | None] | int | None = None,
) -> None:
    """Write ``model`` to ``path`` as ONNX (opset 17, float32), atomically.

    Parameters
    ----------
    model : NeuralNetwork
        Its layers are exported in inference form (Dropout is the identity,
        BatchNorm uses its running statistics).
    path : path-like
        Where the ``.onnx`` file goes; written to a temporary file first.
    input_shape : sequence of int, optional
        One sample's shape without the batch axis, e.g. ``(1, 28, 28)``; an
        entry may be None for an axis of any size. May be left out when the
        first layer implies it (Dense, BatchNorm).

    The graph's input is named ``input``, shaped ``(batch, *input_shape)``
    with a dynamic ``batch``, float32 (int64 ids for a first Embedding); its
    output is named ``output``.

    Raises
    ------
    ValueError
        For a layer with no exporter (the message names it and lists the
        exportable ones) or an ``input_shape`` the model does not take.
    ImportError
        Without the ``onnx`` package: ``pip install 'nnscratch[onnx]'``.
    """
    proto = build_onnx_model(model, input_shape)
    with atomic_write(path) as handle:
        handle.write(proto.SerializeToString())
