"""The base class of optimizers: what they share, apart from the update rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range

OPTIMIZER_TYPES: dict[str, type[Optimizer]] = {}
"""Every Optimizer subclass by class name; ``NeuralNetwork.load`` rebuilds from it."""


class Optimizer:
    """Updates arrays in place from their gradients.

    An optimizer sees only a list of parameter arrays and a matching list of
    gradients, so any layer that follows the protocol trains. Per-parameter
    state (momentum, moment estimates) is kept in the same order and created
    on the first :meth:`step`.

    Parameters
    ----------
    learning_rate : float
        Step size; it may be changed between steps (e.g. by a schedule).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        OPTIMIZER_TYPES[cls.__name__] = cls

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = check_float_in_range(
            "learning_rate", learning_rate, 0.0, np.inf, low_inclusive=False
        )
        self.iterations = 0
        self.state: list[dict[str, np.ndarray]] | None = None
        self._shapes: list[tuple[int, ...]] = []

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Apply one update to every array of ``params`` in place.

        Parameters
        ----------
        params : list of ndarray
            The arrays to update; the same arrays, in the same order, each step.
        grads : list of ndarray
            ``dL/dparam`` for each array of ``params``, of the same shape.
        """
        shapes = [p.shape for p in params]
        if [g.shape for g in grads] != shapes:
            raise ValueError(
                f"{type(self).__name__}.step: expected gradients of shapes {shapes}. "
                f"Received {[g.shape for g in grads]}"
            )
        if self.state is None:
            self.state = [self.initial_state(p) for p in params]
            self._shapes = shapes
        elif shapes != self._shapes:
            raise ValueError(
                f"{type(self).__name__}.step: expected parameters of shapes "
                f"{self._shapes}, as in earlier steps. Received {shapes}; use a new "
                "optimizer for a different network"
            )
        self.iterations += 1
        for param, grad, state in zip(params, grads, self.state, strict=True):
            self.update(param, grad, state)

    def initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        """The per-parameter state before the first step; none by default."""
        return {}

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        """Update one array in place; ``self.iterations`` is the step number t."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this optimizer."""
        return {"learning_rate": self.learning_rate}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"
