"""The base class every layer follows.

A layer is a function ``y = f(x; params)`` that can also run backwards:
given ``dL/dy`` it returns ``dL/dx`` and fills ``grads`` with ``dL/dparams``.
An optimizer only ever sees ``params`` and ``grads``, so any class that keeps
this protocol trains like a built-in layer.

A layer that holds other layers (a container) lists them in
:meth:`Layer.children`; everything that walks a model walks that tree (see
:mod:`nnscratch.core.tree`), so a container needs no code anywhere else.

Weights are not allocated by the constructor, which only stores and checks
arguments: :meth:`Layer.build` allocates them, once, from a model's seeded
generator and in its dtype. A layer used on its own builds itself (float32,
an unseeded generator) the first time its ``params``, ``grads`` or
``buffers`` are read, as a ``torch.nn.Linear`` has weights from the start.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LAYER_TYPES: dict[str, type[Layer]] = {}
"""Every Layer subclass by class name; loading a model rebuilds from it."""


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

    float_input = True
    """Whether the input is float data, cast to the model's dtype. A layer
    that reads integer ids (Embedding) sets False: the model passes its input
    uncast, and its ``backward`` returns None."""

    input_gradient_needed = True
    """Whether ``backward`` must return ``dL/dInput``. A model clears it on
    its first layer during its own training step only (the input is the
    data): for a first Dense or Conv2D that skips a GEMM as large as the one
    for ``dW``. Any other caller gets ``dL/dInput``."""

    batch_shard: Any = None
    """This process's share of the global batch in data-parallel training
    (a :class:`nnscratch.core.shard.BatchShard`), None otherwise. Only
    layers that look across the batch (dropout masks, batch statistics)
    read it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        LAYER_TYPES[cls.__name__] = cls

    def __init__(self) -> None:
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self.built = False

    # ----------------------------------------------------------- the arrays
    # Reading any of the three stores of a layer that was never built builds
    # it: a layer used on its own has weights, as in PyTorch.
    @property
    def params(self) -> dict[str, np.ndarray]:
        self._build_if_needed()
        return self._params

    @params.setter
    def params(self, value: dict[str, np.ndarray]) -> None:
        # A layer that sets its own params (a user's, in its constructor) is
        # built by doing so; each param gets a gradient of its shape.
        self.built = True
        self._params = value
        self._grads = {key: np.zeros_like(array) for key, array in value.items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        self._build_if_needed()
        return self._grads

    @grads.setter
    def grads(self, value: dict[str, np.ndarray]) -> None:
        self._grads = value

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        self._build_if_needed()
        return self._buffers

    @buffers.setter
    def buffers(self, value: dict[str, np.ndarray]) -> None:
        self._buffers = value

    def _build_if_needed(self) -> None:
        if not self.__dict__.get("built", True):
            self.build()

    # ------------------------------------------------------------ the tree
    def children(self) -> list[Layer]:
        """The layers this layer is made of, in order; ``[]`` for a leaf."""
        return []

    def named_children(self) -> list[tuple[str, Layer]]:
        """``(name, child)`` pairs; a child's name is part of its arrays' paths
        (``'2.body.0.W'``). By default the children are named by position."""
        return [(str(index), child) for index, child in enumerate(self.children())]

    # ----------------------------------------------------------- the maths
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Compute the output for a batch ``x`` (batch on the first axis)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Given ``dL/dOutput``, fill ``grads`` and return ``dL/dInput``."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    def regularization_loss(self) -> float:
        """This layer's own penalty added to the data loss; 0.0 by default.

        A container's children are counted by the walker, not by the container.
        """
        return 0.0

    # ------------------------------------------------------------ building
    buffer_names: tuple[str, ...] = ()
    """The keys of :meth:`state_shapes` that are buffers, not params."""

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shapes of the params and buffers :meth:`create_state` makes,
        read from the constructor's arguments alone (nothing is allocated).

        A file loader bounds a model's size with it before building anything.
        """
        return {}

    def create_state(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Allocate this layer's own params and buffers (not its children's).

        Layers with weights draw their starting values from ``rng`` (a model's
        seeded generator) so that a seed repeats a run exactly.
        """

    def build(
        self, rng: np.random.Generator | None = None, dtype: Any = "float32"
    ) -> None:
        """Allocate the weights of this layer and of its children, once.

        ``NeuralNetwork.add`` calls it with the model's generator and dtype.
        A layer that is already built keeps its weights (which a user may
        have written) and is only converted to ``dtype``.
        """
        rng = np.random.default_rng() if rng is None else rng
        dtype = np.dtype(dtype)
        if not self.__dict__.get("built", True):
            self.built = True
            self.create_state(rng, dtype)
        self.to_dtype(dtype)
        for child in self.children():
            child.build(rng, dtype)

    def to_dtype(self, dtype: np.dtype) -> None:
        """Convert this layer's own params, grads and buffers to ``dtype`` (no
        copy if equal); every param gets a gradient array of its shape."""
        params, grads, buffers = self.params, self.grads, self.buffers
        for store in (params, grads, buffers):
            for key, value in store.items():
                store[key] = np.asarray(value, dtype=dtype)
        for key, value in params.items():
            if key not in grads or grads[key].shape != value.shape:
                grads[key] = np.zeros_like(value)

    # ------------------------------------------------------- configuration
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (JSON-friendly).

        A container returns its children's descriptions (see
        :func:`nnscratch.core.registry.layer_config`) under its arguments.
        """
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """The layer :meth:`get_config` describes (weights not built).

        A container overrides it to rebuild its children first.
        """
        return cls(**config)

    # ------------------------------------------------------------- helpers
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


def backward_into_input(
    layer: Layer, grad: np.ndarray, input_gradient_needed: bool
) -> np.ndarray | None:
    """``layer.backward(grad)``, letting it skip ``dL/dInput`` when not needed.

    The layer's flag is cleared for this one call only, so that any other
    caller of its ``backward`` still gets the input gradient.
    """
    if input_gradient_needed:
        return layer.backward(grad)
    layer.input_gradient_needed = False
    try:
        return layer.backward(grad)
    finally:
        layer.input_gradient_needed = True
