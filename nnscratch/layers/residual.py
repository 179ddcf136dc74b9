"""Residual: a skip connection around a layer (He et al., 2016)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.registry import layer_config, layer_from_config


class Residual(Layer):
    r"""``y = x + body(x)``: the input added to what ``body`` makes of it.

    Parameters
    ----------
    body : Layer
        Any layer (often a :class:`~nnscratch.layers.sequential.Sequential`)
        whose output has the shape of its input.

    Notes
    -----
    With ``g = dL/dy``:

    - forward:  ``y = x + body(x)``
    - backward: ``dx = g + body.backward(g)``

    The identity path passes the gradient through unchanged, which is why
    deep residual networks still train: the gradient reaching early layers
    is never only a product of many small Jacobians.

    Examples
    --------
    >>> import numpy as np
    >>> from nnscratch.layers import Dense
    >>> block = Residual(Dense(2, 2))
    >>> block.body.params["W"][...] = np.eye(2)
    >>> block.forward(np.array([[1.0, 2.0]]))  # x + x @ I
    array([[2., 4.]])
    >>> block.backward(np.array([[1.0, 1.0]]))  # g + g @ I.T
    array([[2., 2.]])
    """

    def __init__(self, body: Layer) -> None:
        super().__init__()
        if not isinstance(body, Layer):
            raise ValueError(f"Residual: expected a Layer as body. Received {body!r}")
        self.body = body
        self.built = True  # no arrays of its own
        self._input_shape: tuple[int, ...] | None = None

    def named_children(self) -> list[tuple[str, Layer]]:
        return [("body", self.body)]

    def children(self) -> list[Layer]:
        return [self.body]

    @property
    def min_batch_size(self) -> int:  # type: ignore[override]
        return self.body.min_batch_size

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``x + body(x)``.

        Parameters
        ----------
        x : ndarray of shape (N, ...)
        training : bool
            Passed to ``body``.

        Returns
        -------
        ndarray of the same shape as ``x``
        """
        out = self.body.forward(x, training=training)
        if out.shape != x.shape:
            raise ValueError(
                f"Residual: expected the body to keep the input's shape "
                f"{x.shape[1:]} (without the batch). Received {out.shape[1:]} "
                f"from {type(self.body).__name__}"
            )
        self._input_shape = x.shape
        return x + out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """``dL/dx = g + body.backward(g)``; the body fills its own grads.

        Parameters
        ----------
        grad : ndarray of shape (N, ...)
            dLoss/dOutput.

        Returns
        -------
        ndarray of the same shape
        """
        self._cached("_input_shape")
        # The body's input gradient is always needed: it joins the skip path.
        return grad + self.body.backward(grad)

    def get_config(self) -> dict[str, Any]:
        return {"body": layer_config(self.body)}

    def __repr__(self) -> str:
        return f"Residual({self.body!r})"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Residual:
        if set(config) != {"body"}:
            raise ValueError("Residual: expected a config {'body': {...}}")
        return cls(layer_from_config(config["body"]))
