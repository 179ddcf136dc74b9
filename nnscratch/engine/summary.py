"""A Keras-style text summary of a model: layers, output shapes, parameter counts."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.tree import walk

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork

NAME_WIDTH = 40


def describe_layer(layer: Layer) -> str:
    """The layer's type and the constructor arguments that define it.

    Required arguments are shown by value, optional ones only when they differ
    from their default, so ``Dense(784, 128)`` reads like the code that built it.

    Examples
    --------
    >>> from nnscratch.layers.dense import Dense
    >>> describe_layer(Dense(784, 128, l2_lambda=0.01))
    'Dense(784, 128, l2_lambda=0.01)'
    """
    if layer.children():
        # A container is described by the rows of its children below it.
        return f"{type(layer).__name__}({len(layer.children())} layers)"
    config = layer.get_config()
    try:
        parameters = inspect.signature(type(layer).__init__).parameters
    except (TypeError, ValueError):
        parameters = {}
    parts = []
    for key, value in config.items():
        default = getattr(parameters.get(key), "default", None)
        if key in parameters and default is inspect.Parameter.empty:
            parts.append(repr(value))
        elif key not in parameters or value != default:
            parts.append(f"{key}={value!r}")
    text = f"{type(layer).__name__}({', '.join(parts)})"
    return text if len(text) <= NAME_WIDTH else text[: NAME_WIDTH - 4] + "...)"


def _count(layer: Layer, store: str) -> int:
    """Values in one store of ``layer`` and every layer inside it."""
    return int(
        sum(
            np.size(array)
            for _, inner in walk([layer])
            for array in getattr(inner, store).values()
        )
    )


def _input_shape(model: NeuralNetwork) -> tuple[int, ...] | None:
    """The input shape (without the batch) a Dense first layer implies, if any."""
    first = model.layers[0]
    size = getattr(first, "input_size", None)
    if type(first).__name__ == "Dense" and isinstance(size, int):
        return (size,)
    return None


def _output_shapes(
    model: NeuralNetwork, input_shape: tuple[int, ...]
) -> list[tuple[int | None, ...]]:
    """Each layer's output shape, from a zero batch of one in inference mode."""
    x = np.zeros((1, *input_shape), dtype=model.dtype)
    shapes = []
    for index, layer in enumerate(model.layers):
        try:
            x = layer.forward(x, training=False)
        except ValueError as error:
            raise ValueError(
                f"summary: input_shape {input_shape} does not fit layer {index} "
                f"({describe_layer(layer)}): {error}"
            ) from error
        shapes.append((None, *x.shape[1:]))
    return shapes


def summary(model: NeuralNetwork, input_shape: tuple[int, ...] | None = None) -> str:
    """A table of the model's layers, their output shapes and parameter counts.

    Parameters
    ----------
    model : NeuralNetwork
    input_shape : tuple of int, optional
        One sample's shape, without the batch axis: ``(features,)`` or
        ``(channels, height, width)``. Deduced when the first layer is Dense;
        otherwise, if not given, output shapes are shown as ``?``.

    Returns
    -------
    str
        One row per layer, nested layers indented under their container:
        its type and defining arguments, output shape (``None`` is the batch
        axis; top-level layers) and parameter count (trainable params plus
        buffers such as running statistics, a container's for all inside
        it), then the totals.

    Notes
    -----
    Output shapes come from running a batch of one zero sample through
    ``forward(..., training=False)``: nothing is trained and no weight
    changes, but layers overwrite what they cached for ``backward``.

    Examples
    --------
    >>> from nnscratch import NeuralNetwork, Dense, Activation
    >>> model = NeuralNetwork(loss_name="cce", seed=0)
    >>> model.add(Dense(4, 3))
    >>> model.add(Activation("softmax"))
    >>> print(summary(model))  # doctest: +NORMALIZE_WHITESPACE
    Model: NeuralNetwork(loss_name='cce'), input (None, 4)
    ___________________________________________________________________
    Layer (type and arguments)               Output shape       Param #
    ===================================================================
    Dense(4, 3)                              (None, 3)               15
    Activation('softmax')                    (None, 3)                0
    ===================================================================
    Total params: 15
    Trainable params: 15
    Non-trainable params: 0
    """
    if not model.layers:
        raise ValueError("summary: the model has no layers: expected add() first")
    if input_shape is None:
        input_shape = _input_shape(model)
    if input_shape is not None:
        if np.ndim(input_shape) != 1 or not all(
            isinstance(n, int | np.integer) and n >= 1 for n in input_shape
        ):
            raise ValueError(
                "input_shape: expected a tuple of positive integers without the "
                f"batch axis, e.g. (1, 28, 28). Received: {input_shape!r}"
            )
        input_shape = tuple(int(n) for n in input_shape)
        shapes = [str(shape) for shape in _output_shapes(model, input_shape)]
    else:
        shapes = ["?"] * len(model.layers)
    top_level_shapes = dict(zip(map(str, range(len(shapes))), shapes, strict=True))
    rows = [
        (
            # Nested layers are indented under their container.
            "  " * path.count(".") + describe_layer(layer),
            top_level_shapes.get(path, ""),
            _count(layer, "params") + _count(layer, "buffers"),
        )
        for path, layer in walk(model.layers)
    ]
    shape_width = max(12, *(len(shape) for shape in shapes)) + 2
    width = NAME_WIDTH + 1 + shape_width + 12
    shown_input = "unknown" if input_shape is None else str((None, *input_shape))
    lines = [
        f"Model: NeuralNetwork(loss_name={model.loss_name!r}), input {shown_input}",
        "_" * width,
        f"{'Layer (type and arguments)':<{NAME_WIDTH}} {'Output shape':<{shape_width}}"
        f"{'Param #':>12}",
        "=" * width,
    ]
    for name, shape, count in rows:
        lines.append(f"{name:<{NAME_WIDTH}} {shape:<{shape_width}}{count:>12,}")
    trainable = sum(_count(layer, "params") for layer in model.layers)
    buffers = sum(_count(layer, "buffers") for layer in model.layers)
    lines += [
        "=" * width,
        f"Total params: {trainable + buffers:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {buffers:,}",
    ]
    if input_shape is None:
        lines.append("(? : pass input_shape, e.g. (1, 28, 28), to see output shapes)")
    return "\n".join(lines)
