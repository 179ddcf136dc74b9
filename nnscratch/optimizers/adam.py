"""Adam: momentum plus a per-parameter step size from the gradient's scale."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range
from nnscratch.optimizers.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), update for update as ``torch.optim.Adam``.

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1 : float in [0, 1), default 0.9
        Decay of the weights of past gradients in ``m``.
    beta2 : float in [0, 1), default 0.999
        Decay of the weights of past squared gradients in ``v``.
    epsilon : float, default 1e-8
        Keeps the denominator away from zero.
    clipnorm : float, optional
        Clip the gradients' joint norm first (see :class:`Optimizer`).

    Notes
    -----
    At step ``t`` with gradient ``g``, from both sums at 0:

    - ``gradient_sum <- beta1 * gradient_sum + g``, every gradient so far
      weighted by ``beta1**age``
    - ``square_sum <- beta2 * square_sum + g**2``
    - the weighted means, the weights summing to ``(1 - beta**t) / (1 - beta)``:
      ``m = gradient_sum * (1 - beta1) / (1 - beta1**t)`` and
      ``v = square_sum * (1 - beta2) / (1 - beta2**t)``
    - ``param <- param - lr * m / (sqrt(v) + eps)``

    ``m`` and ``v`` are the paper's bias-corrected moments; the paper (and
    torch, as ``exp_avg``) keeps ``(1 - beta1) * gradient_sum`` instead, so
    that dividing by ``1 - beta1**t`` "undoes the bias of starting at 0".
    Keeping the sums saves a pass over all parameters for each sum, and the
    two constants fold into the scalars of the step's last passes.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0])
    >>> opt = Adam(learning_rate=0.1)
    >>> opt.step([w], [np.array([3.0])])  # the first step is ~lr * sign(g)
    True
    >>> w.round(6)
    array([0.9])
    """

    decaying_state = ("gradient_sum", "square_sum")

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        clipnorm: float | None = None,
    ) -> None:
        super().__init__(learning_rate, clipnorm=clipnorm)
        self.beta1 = check_float_in_range(
            "beta1", beta1, 0.0, 1.0, high_inclusive=False
        )
        self.beta2 = check_float_in_range(
            "beta2", beta2, 0.0, 1.0, high_inclusive=False
        )
        self.epsilon = check_float_in_range(
            "epsilon", epsilon, 0.0, np.inf, low_inclusive=False
        )

    def initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        zeros = np.zeros_like
        return {"gradient_sum": zeros(param), "square_sum": zeros(param)}

    def update(self, param, grad, state, next_state, out) -> None:
        # Every operation writes into next_state or into out (the work
        # array, then the step): no temporary is allocated, which
        # matters for large layers (see benchmarks/README.md).
        gradient_sum, square_sum = next_state["gradient_sum"], next_state["square_sum"]
        np.multiply(state["gradient_sum"], self.beta1, out=gradient_sum)
        gradient_sum += grad
        np.multiply(state["square_sum"], self.beta2, out=square_sum)
        np.multiply(grad, grad, out=out)
        square_sum += out
        # With m = a * gradient_sum and v = b * square_sum (the Notes),
        # lr * m / (sqrt(v) + eps) = lr * a / sqrt(b) * gradient_sum
        # / (sqrt(square_sum) + eps / sqrt(b)). math.sqrt keeps each factor
        # a Python float: a NumPy float64 scalar would make NumPy run these
        # float32 passes in float64.
        a = self._mean_scale(self.beta1)
        sqrt_b = math.sqrt(self._mean_scale(self.beta2))
        np.sqrt(square_sum, out=out)
        out += self.epsilon / sqrt_b
        np.divide(gradient_sum, out, out=out)
        out *= self.learning_rate * a / sqrt_b

    def bound_step(self, bounds, gradient_bound):
        # |step| <= lr * a * |gradient_sum| / eps: the denominator is at
        # least eps / sqrt(b).
        gradient_sum = self.beta1 * bounds["gradient_sum"] + gradient_bound
        square_sum = self.beta2 * bounds["square_sum"] + gradient_bound * gradient_bound
        step = self.learning_rate * self._mean_scale(self.beta1) * gradient_sum
        step /= self.epsilon
        return {"gradient_sum": gradient_sum, "square_sum": square_sum}, step

    def _mean_scale(self, beta: float) -> float:
        """``(1 - beta) / (1 - beta**t)``: a running sum's weighted mean at
        step ``t``, as a Python float (see the Notes)."""
        return (1.0 - beta) / (1.0 - beta**self.iterations)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta1": self.beta1,
            "beta2": self.beta2,
            "epsilon": self.epsilon,
        }
