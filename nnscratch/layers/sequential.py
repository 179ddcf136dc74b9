"""Sequential: layers applied one after another, as one layer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from nnscratch.core.layer import Layer, backward_into_input
from nnscratch.core.registry import layer_config, layer_from_config


class Sequential(Layer):
    r"""A chain of layers that is itself a layer: ``y = f_n(... f_1(x))``.

    Parameters
    ----------
    *layers : Layer
        The layers in order, given one by one (``Sequential(a, b)``) or as one
        list (``Sequential([a, b])``). Containers nest.

    Notes
    -----
    With ``h_0 = x`` and ``h_k = f_k(h_{k-1})``:

    - forward:  ``y = h_n``
    - backward: ``g_n = dL/dy``, ``g_{k-1} = f_k.backward(g_k)``, ``dx = g_0``

    The container holds no arrays of its own: its children's params are
    reached by walking ``children()`` (see :mod:`nnscratch.core.tree`).

    Examples
    --------
    >>> import numpy as np
    >>> from nnscratch.layers import Activation, Dense
    >>> block = Sequential(Dense(3, 2), Activation("relu"))
    >>> block.layers[0].params["W"][...] = 1.0
    >>> block.forward(np.array([[1.0, -2.0, 0.5]]))  # relu(1 - 2 + 0.5) = 0
    array([[0., 0.]])
    >>> block.forward(np.array([[1.0, 2.0, 0.5]]))
    array([[3.5, 3.5]])
    >>> block.backward(np.ones((1, 2)))  # each input feeds both outputs
    array([[2., 2., 2.]])
    """

    def __init__(self, *layers: Layer | Iterable[Layer]) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], list | tuple):
            layers = tuple(layers[0])
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValueError(
                    f"Sequential: expected Layers. Received {layer!r} at "
                    f"position {index}"
                )
        self.layers: list[Layer] = list(layers)
        self.built = True  # no arrays of its own

    def children(self) -> list[Layer]:
        return list(self.layers)

    @property
    def min_batch_size(self) -> int:  # type: ignore[override]
        return max((layer.min_batch_size for layer in self.layers), default=1)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run ``x`` through every layer in order.

        Parameters
        ----------
        x : ndarray of shape (N, ...), as the first layer takes it
        training : bool
            Passed to every layer.

        Returns
        -------
        ndarray, as the last layer gives it
        """
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Backpropagate ``dL/dy`` through the layers in reverse order.

        Returns
        -------
        ndarray
            ``dL/dx``, shaped as the input of the last forward.
        """
        if not self.layers:
            return grad
        for layer in reversed(self.layers[1:]):
            grad = layer.backward(grad)
        # The first child's input is this container's input.
        return backward_into_input(self.layers[0], grad, self.input_gradient_needed)

    def get_config(self) -> dict[str, Any]:
        return {"layers": [layer_config(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        if set(config) != {"layers"} or not isinstance(config["layers"], list):
            raise ValueError("Sequential: expected a config {'layers': [...]}")
        return cls(*[layer_from_config(entry) for entry in config["layers"]])

    def __repr__(self) -> str:
        return f"Sequential({', '.join(repr(layer) for layer in self.layers)})"
