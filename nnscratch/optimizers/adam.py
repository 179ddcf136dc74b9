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
        Decay of the running mean of gradients.
    beta2 : float in [0, 1), default 0.999
        Decay of the running mean of squared gradients.
    epsilon : float, default 1e-8
        Keeps the denominator away from zero.
    clipnorm : float, optional
        Clip the gradients' joint norm first (see :class:`Optimizer`).

    Notes
    -----
    At step ``t`` with gradient ``g``, from ``m = v = 0``:

    - ``m <- beta1 * m + (1 - beta1) * g``
    - ``v <- beta2 * v + (1 - beta2) * g**2``
    - ``denominator = sqrt(v) / sqrt(1 - beta2**t) + eps``
    - ``param <- param - lr / (1 - beta1**t) * m / denominator``

    The ``1 - beta**t`` factors undo the bias of starting ``m`` and ``v`` at 0.

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

    decaying_state = ("m", "v")

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
        return {"m": np.zeros_like(param), "v": np.zeros_like(param)}

    def update(self, param, grad, state, next_state, out) -> None:
        # Every operation writes into next_state or into out (the work
        # array, then the new value): no temporary is allocated, which
        # matters for large layers (see benchmarks/README.md).
        m, v = next_state["m"], next_state["v"]
        t = self.iterations
        # m <- beta1 * m + (1 - beta1) * g
        np.multiply(state["m"], self.beta1, out=m)
        np.multiply(grad, 1.0 - self.beta1, out=out)
        m += out
        # v <- beta2 * v + (1 - beta2) * g**2
        np.multiply(state["v"], self.beta2, out=v)
        np.multiply(grad, grad, out=out)
        out *= 1.0 - self.beta2
        v += out
        # param - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
        np.sqrt(v, out=out)
        # math.sqrt keeps the factor a Python float: a NumPy float64 scalar
        # would make NumPy run this float32 product in float64.
        out *= 1.0 / math.sqrt(1.0 - self.beta2**t)
        out += self.epsilon
        np.divide(m, out, out=out)
        out *= self.learning_rate / (1.0 - self.beta1**t)
        self.apply_step(param, out)

    def apply_step(self, param: np.ndarray, out: np.ndarray) -> None:
        """``out <- param - out``: the new value from the step in ``out``."""
        np.subtract(param, out, out=out)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta1": self.beta1,
            "beta2": self.beta2,
            "epsilon": self.epsilon,
        }
