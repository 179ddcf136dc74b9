"""RMSprop: divide each step by a running root mean square of the gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range
from nnscratch.optimizers.optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), update for update as ``torch.optim.RMSprop``.

    The same as ``torch.optim.RMSprop(lr=learning_rate, alpha=rho,
    eps=epsilon, momentum=momentum)`` (not centered, no weight decay).

    Parameters
    ----------
    learning_rate : float, default 0.01
    rho : float in [0, 1), default 0.99
        Decay of the running mean of squared gradients (torch's ``alpha``).
    epsilon : float, default 1e-8
        Added to the root mean square (outside the square root, as in torch).
    momentum : float in [0, 1), default 0.0
    clipnorm : float, optional
        Clip the gradients' joint norm first (see :class:`Optimizer`).

    Notes
    -----
    With gradient ``g``, and ``s`` (and the velocity ``v``) starting at 0:

    - ``s <- rho * s + (1 - rho) * g**2``
    - ``denominator = sqrt(s) + epsilon``
    - without momentum: ``param <- param - learning_rate * g / denominator``
    - with momentum: ``v <- momentum * v + g / denominator`` and
      ``param <- param - learning_rate * v``

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0])
    >>> opt = RMSprop(learning_rate=0.01, rho=0.75)
    >>> opt.step([w], [np.array([2.0])])  # s = 0.25 * 4 = 1: a step of lr * 2 / 1
    True
    >>> w.round(6)
    array([0.98])
    """

    decaying_state = ("mean_square", "velocity")

    def __init__(
        self,
        learning_rate: float = 0.01,
        rho: float = 0.99,
        epsilon: float = 1e-8,
        momentum: float = 0.0,
        clipnorm: float | None = None,
    ) -> None:
        super().__init__(learning_rate, clipnorm=clipnorm)
        self.rho = check_float_in_range("rho", rho, 0.0, 1.0, high_inclusive=False)
        self.epsilon = check_float_in_range(
            "epsilon", epsilon, 0.0, np.inf, low_inclusive=False
        )
        self.momentum = check_float_in_range(
            "momentum", momentum, 0.0, 1.0, high_inclusive=False
        )

    def initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        state = {"mean_square": np.zeros_like(param)}
        if self.momentum:
            state["velocity"] = np.zeros_like(param)
        return state

    def update(self, param, grad, state, next_state, out) -> None:
        # out is the work array, then the step: no temporaries.
        mean_square = next_state["mean_square"]
        # s <- rho * s + (1 - rho) * g**2
        np.multiply(state["mean_square"], self.rho, out=mean_square)
        np.multiply(grad, grad, out=out)
        out *= 1.0 - self.rho
        mean_square += out
        # out <- g / (sqrt(s) + epsilon)
        np.sqrt(mean_square, out=out)
        out += self.epsilon
        np.divide(grad, out, out=out)
        if self.momentum:
            velocity = next_state["velocity"]
            np.multiply(state["velocity"], self.momentum, out=velocity)
            velocity += out
            np.multiply(velocity, self.learning_rate, out=out)
        else:
            out *= self.learning_rate

    def bound_step(self, bounds, gradient_bound):
        # A weighted mean of g**2 for s; the denominator is at least epsilon.
        bounds = {
            **bounds,
            "mean_square": max(bounds["mean_square"], gradient_bound * gradient_bound),
        }
        scaled = gradient_bound / self.epsilon
        if self.momentum:
            bounds["velocity"] = self.momentum * bounds["velocity"] + scaled
            return bounds, self.learning_rate * bounds["velocity"]
        return bounds, self.learning_rate * scaled

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rho": self.rho,
            "epsilon": self.epsilon,
            "momentum": self.momentum,
        }
