"""The base class every layer follows.

A layer is a function ``y = f(x; params)`` that can also run backwards:
given ``dL/dy`` it returns ``dL/dx`` and fills ``grads`` with ``dL/dparams``.
An optimizer only ever sees ``params`` and ``grads``, so any class that keeps
this protocol trains like a built-in layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LAYER_TYPES: dict[str, type[Layer]] = {}
"""Every Layer subclass by class name; ``NeuralNetwork.load`` rebuilds from it."""


class Layer:
    """Base class of all layers.

    Attributes
    ----------
    params : dict of str to ndarray
        Trainable arrays, e.g. ``{'W': ..., 'b': ...}``; empty if none.
    grads : dict of str to ndarray
        Same keys and shapes as ``params``, filled by :meth:`backward`.
    buffers : dict of str to ndarray
        State that is saved with the model but not trained (e.g. running
        statistics); empty if none.

    Examples
    --------
    A layer that doubles its input, written by a user:

    >>> import numpy as np
    >>> class Double(Layer):
    ...     def forward(self, x, training=False):
    ...         return 2 * x
    ...     def backward(self, grad):
    ...         return 2 * grad
    >>> Double().forward(np.array([[1.0, -3.0]]))
    array([[ 2., -6.]])
    """

    min_batch_size = 1
    """The fewest samples a training batch may have (BatchNorm needs 2)."""

    input_gradient_needed = True
    """Whether ``backward`` must return ``dL/dInput``. ``NeuralNetwork.add``
    clears it on a network's first layer, whose input is the data: for a
    first Dense or Conv2D that skips a GEMM as large as the one for ``dW``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        LAYER_TYPES[cls.__name__] = cls

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Compute the output for a batch ``x`` (batch on the first axis)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Given ``dL/dOutput``, fill ``grads`` and return ``dL/dInput``."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    def regularization_loss(self) -> float:
        """This layer's penalty added to the data loss; 0.0 by default."""
        return 0.0

    def build(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Prepare the layer for a model of the given ``dtype``.

        Called by ``NeuralNetwork.add``. Layers with weights draw their
        starting values from ``rng`` (the model's seeded generator) so that a
        seed repeats a run exactly; the base class only converts existing
        arrays to ``dtype``.
        """
        self.to_dtype(dtype)

    def to_dtype(self, dtype: np.dtype) -> None:
        """Convert params, grads and buffers to ``dtype`` (no copy if equal)."""
        for store in (self.params, self.grads, self.buffers):
            for key, value in store.items():
                store[key] = np.asarray(value, dtype=dtype)
        for key, value in self.params.items():
            if key not in self.grads or self.grads[key].shape != value.shape:
                self.grads[key] = np.zeros_like(value)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (JSON-friendly)."""
        return {}

    def _cached(self, name: str) -> np.ndarray:
        """Return what forward cached under ``name``, or explain why it is missing."""
        value = getattr(self, name, None)
        if value is None:
            raise self._no_forward_error()
        return value

    def _no_forward_error(self) -> RuntimeError:
        return RuntimeError(
            f"{type(self).__name__}.backward called before forward: "
            "run forward on a batch first"
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"
