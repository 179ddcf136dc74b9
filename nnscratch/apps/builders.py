"""Networks by their sizes: a multi-layer perceptron, or a CNN for images.

:func:`build_mlp` stacks Dense layers, :func:`build_cnn` convolution stages
and then Dense layers; each returns an untrained ``NeuralNetwork`` whose
head (sigmoid, softmax or none) follows its loss. The demos
(``nnscratch.apps.demos``) and ``nnscratch train`` build every network with them.

Examples
--------
>>> from nnscratch.optimizers.adam import Adam
>>> model = build_mlp([784, 128, 10], "cce", Adam(learning_rate=0.001))
>>> [type(layer).__name__ for layer in model.layers]
['Dense', 'Activation', 'Dense', 'Activation']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.engine.model import NeuralNetwork
from nnscratch.layers.activation import Activation
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.optimizers.optimizer import Optimizer

__all__ = ["OUTPUT_ACTIVATIONS", "RELU_FAMILY", "build_cnn", "build_mlp"]

RELU_FAMILY = frozenset({"relu", "leaky_relu", "elu", "gelu"})
"""Hidden activations that get He initialisation (the rest get Xavier)."""

OUTPUT_ACTIVATIONS = {"bce": "sigmoid", "cce": "softmax"}
"""The output activation each loss expects; ``mse`` keeps linear outputs."""


def _per_layer(name: str, value: float | Sequence[float], count: int) -> list[float]:
    """``value`` for each of ``count`` layers: one number for all, or ``count``."""
    if np.ndim(value) == 0:
        return [float(value)] * count
    values = [float(item) for item in value]
    if len(values) != count:
        raise ValueError(
            f"{name}: expected one number, or {count} (one per layer). "
            f"Received {len(values)}"
        )
    return values


def _add_dense_layers(
    model: NeuralNetwork,
    sizes: Sequence[int],
    activation: str = "relu",
    l2_lambda: float | Sequence[float] = 0.0,
    dropout: float | Sequence[float] = 0.0,
) -> None:
    """Append Dense layers through ``sizes``, as :func:`build_mlp` describes."""
    if len(sizes) < 2:
        raise ValueError(
            f"sizes: expected the inputs, any hidden sizes and the outputs. "
            f"Received {list(sizes)}"
        )
    l2_lambdas = _per_layer("l2_lambda", l2_lambda, len(sizes) - 1)
    rates = _per_layer("dropout", dropout, len(sizes) - 2)
    initialization = "he" if activation in RELU_FAMILY else "xavier"
    hidden = zip(sizes[:-2], sizes[1:-1], l2_lambdas[:-1], rates, strict=True)
    for inputs, units, l2, rate in hidden:
        model.add(Dense(inputs, units, initialization, l2_lambda=l2))
        model.add(Activation(activation))
        if rate > 0:
            model.add(Dropout(rate))
    model.add(Dense(sizes[-2], sizes[-1], "xavier", l2_lambda=l2_lambdas[-1]))
    head = OUTPUT_ACTIVATIONS.get(model.loss_name)
    if head is not None:
        model.add(Activation(head))


def build_mlp(
    sizes: Sequence[int],
    loss_name: str,
    optimizer: Optimizer,
    seed: int | None = 0,
    activation: str = "relu",
    l2_lambda: float | Sequence[float] = 0.0,
    dropout: float | Sequence[float] = 0.0,
    preprocessing: Layer | None = None,
    dtype: str = "float32",
) -> NeuralNetwork:
    """A multi-layer perceptron: ``sizes[0]`` inputs -> hidden layers -> outputs.

    Each hidden layer is Dense -> ``activation`` -> Dropout (left out where
    its rate is 0); He initialisation for the ReLU family, Xavier otherwise.
    The last Dense layer (Xavier) is followed by the head its loss expects:
    sigmoid for ``bce``, softmax for ``cce``, nothing for ``mse``.

    Parameters
    ----------
    sizes : sequence of int
        Inputs, hidden sizes, outputs: ``[2, 16, 8, 1]`` is 2-16-8-1.
    loss_name : {'bce', 'cce', 'mse'}
    optimizer : Optimizer
    seed : int, optional
        Seeds the weights, shuffling and dropout.
    activation : str, default 'relu'
        The hidden layers' activation.
    l2_lambda : float or sequence of float, default 0.0
        L2 penalty on each Dense layer's weights: one for all, or one per
        Dense layer (``len(sizes) - 1``).
    dropout : float or sequence of float, default 0.0
        Dropout rate after each hidden layer: one for all, or one per hidden
        layer (``len(sizes) - 2``).
    preprocessing : Layer, optional
        A first layer before the Dense ones, e.g. an adapted
        :class:`~nnscratch.layers.normalization.Normalization`: the saved
        model then carries its preprocessing.

    Examples
    --------
    >>> from nnscratch.optimizers.adam import Adam
    >>> model = build_mlp([2, 16, 1], "bce", Adam(0.01), dropout=0.2)
    >>> [type(layer).__name__ for layer in model.layers]
    ['Dense', 'Activation', 'Dropout', 'Dense', 'Activation']
    >>> build_mlp([2, 16, 1], "bce", Adam(0.01), dropout=[0.2, 0.1])
    Traceback (most recent call last):
    ...
    ValueError: dropout: expected one number, or 1 (one per layer). Received 2
    """
    model = NeuralNetwork(loss_name, optimizer, seed=seed, dtype=dtype)
    if preprocessing is not None:
        model.add(preprocessing)
    _add_dense_layers(model, sizes, activation, l2_lambda, dropout)
    return model


def build_cnn(
    channels: Sequence[int],
    image_size: int,
    dense_sizes: Sequence[int],
    optimizer: Optimizer,
    seed: int | None = 0,
    dropout: float | Sequence[float] = 0.0,
) -> NeuralNetwork:
    """Convolution stages, then a softmax classifier (CCE) on square images.

    Stage ``i`` is Conv2D 3x3 with padding 1 from ``channels[i]`` to
    ``channels[i + 1]`` channels (the size is kept) -> ReLU -> MaxPool2D(2),
    which halves the size. After the last stage, Flatten feeds the Dense
    layers of :func:`build_mlp` through ``dense_sizes`` (ReLU hidden layers).

    Parameters
    ----------
    channels : sequence of int
        The image's channels, then each stage's: ``[1, 16, 32]`` is two stages.
    image_size : int
        Height and width of the images; divisible by 2 once per stage.
    dense_sizes : sequence of int
        Hidden sizes and the number of classes, after the flattened features.
    optimizer : Optimizer
    seed : int, optional
    dropout : float or sequence of float, default 0.0
        Dropout after each hidden Dense layer, as in :func:`build_mlp`.

    Examples
    --------
    >>> from nnscratch.optimizers.adam import Adam
    >>> model = build_cnn([1, 4], 8, [10], Adam(0.01))
    >>> model.predict(np.zeros((2, 1, 8, 8))).shape
    (2, 10)
    >>> build_cnn([1, 4, 8, 16], 12, [10], Adam(0.01))
    Traceback (most recent call last):
    ...
    ValueError: image_size: expected a multiple of 8 (3 poolings). Received 12
    """
    stages = len(channels) - 1
    if stages < 1:
        raise ValueError(
            "channels: expected the images' channels, then each stage's. "
            f"Received {list(channels)}"
        )
    if image_size % 2**stages:
        raise ValueError(
            f"image_size: expected a multiple of {2**stages} ({stages} poolings). "
            f"Received {image_size}"
        )
    # Imported here so that build_mlp works without the image layers.
    from nnscratch.layers.conv2d import Conv2D
    from nnscratch.layers.flatten import Flatten
    from nnscratch.layers.pooling import MaxPool2D

    model = NeuralNetwork(loss_name="cce", optimizer=optimizer, seed=seed)
    for in_channels, out_channels in zip(channels[:-1], channels[1:], strict=True):
        model.add(Conv2D(in_channels, out_channels, kernel_size=3, padding=1))
        model.add(Activation("relu"))
        model.add(MaxPool2D(pool_size=2))  # (C, S, S) -> (C, S/2, S/2)
    side = image_size // 2**stages
    model.add(Flatten())  # (C, side, side) -> (C * side * side,)
    _add_dense_layers(
        model, [channels[-1] * side * side, *dense_sizes], dropout=dropout
    )
    return model
