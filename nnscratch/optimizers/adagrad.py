"""Adagrad: per-parameter step sizes that shrink with the gradients seen so far."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range
from nnscratch.optimizers.optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), update for update as ``torch.optim.Adagrad``.

    The same as ``torch.optim.Adagrad(lr=learning_rate, eps=epsilon,
    initial_accumulator_value=initial_accumulator_value)`` (no learning-rate
    decay, no weight decay).

    Parameters
    ----------
    learning_rate : float, default 0.01
    epsilon : float, default 1e-10
        Added to the root of the accumulator (outside the square root).
    initial_accumulator_value : float >= 0, default 0.0
        The starting value of every entry of the accumulator ``s``.
    clipnorm : float, optional
        Clip the gradients' joint norm first (see :class:`Optimizer`).

    Notes
    -----
    With gradient ``g`` and ``s`` starting at ``initial_accumulator_value``:

    - ``s <- s + g**2``
    - ``param <- param - learning_rate * g / (sqrt(s) + epsilon)``

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0])
    >>> opt = Adagrad(learning_rate=0.1)
    >>> _ = opt.step([w], [np.array([3.0])]); w.round(6)   # s = 9: 0.1 * 3 / 3
    array([0.9])
    >>> _ = opt.step([w], [np.array([4.0])]); w.round(6)   # s = 25: 0.1 * 4 / 5
    array([0.82])
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        epsilon: float = 1e-10,
        initial_accumulator_value: float = 0.0,
        clipnorm: float | None = None,
    ) -> None:
        super().__init__(learning_rate, clipnorm=clipnorm)
        self.epsilon = check_float_in_range(
            "epsilon", epsilon, 0.0, np.inf, low_inclusive=False
        )
        self.initial_accumulator_value = check_float_in_range(
            "initial_accumulator_value", initial_accumulator_value, 0.0, np.inf
        )

    def initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {"sum_squares": np.full_like(param, self.initial_accumulator_value)}

    def update(self, param, grad, state, next_state, out) -> None:
        # out is the work array, then the step: no temporaries.
        sum_squares = next_state["sum_squares"]
        np.multiply(grad, grad, out=out)
        np.add(state["sum_squares"], out, out=sum_squares)  # s <- s + g**2
        np.sqrt(sum_squares, out=out)
        out += self.epsilon
        np.divide(grad, out, out=out)  # g / (sqrt(s) + epsilon)
        out *= self.learning_rate

    def bound_step(self, bounds, gradient_bound):
        # s only grows (by at most g**2); the denominator is at least epsilon.
        sum_squares = bounds["sum_squares"] + gradient_bound * gradient_bound
        step = self.learning_rate * gradient_bound / self.epsilon
        return {"sum_squares": sum_squares}, step

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "initial_accumulator_value": self.initial_accumulator_value,
        }
