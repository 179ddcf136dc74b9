"""Stochastic gradient descent with (heavy-ball or Nesterov) momentum."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range
from nnscratch.optimizers.optimizer import Optimizer


class SGD(Optimizer):
    """SGD with momentum, update for update as ``torch.optim.SGD``.

    The same as ``torch.optim.SGD(lr=learning_rate, momentum=momentum,
    nesterov=nesterov)`` (no dampening, no weight decay).

    Parameters
    ----------
    learning_rate : float, default 0.01
    momentum : float in [0, 1), default 0.0
    nesterov : bool, default False
        Use Nesterov momentum: step along the gradient plus the momentum
        term, as seen one step ahead. Needs ``momentum > 0``.
    clipnorm : float, optional
        Clip the gradients' joint norm first (see :class:`Optimizer`).

    Notes
    -----
    With gradient ``g`` and a velocity ``v`` that starts at 0:

    - ``v <- momentum * v + g``
    - ``param <- param - learning_rate * v``, or with ``nesterov=True``
      ``param <- param - learning_rate * (g + momentum * v)``

    With ``momentum = 0`` this is plain gradient descent.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0])
    >>> opt = SGD(learning_rate=0.1, momentum=0.9)
    >>> opt.step([w], [np.array([1.0])])   # True: the step was taken
    True
    >>> w                                  # v = 1
    array([0.9])
    >>> _ = opt.step([w], [np.array([1.0])]); w   # v = 0.9 * 1 + 1 = 1.9
    array([0.71])
    >>> w = np.array([1.0])
    >>> opt = SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    >>> _ = opt.step([w], [np.array([1.0])]); w   # v = 1, step 1 + 0.9 * 1
    array([0.81])
    """

    decaying_state = ("velocity",)

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        clipnorm: float | None = None,
    ) -> None:
        super().__init__(learning_rate, clipnorm=clipnorm)
        self.momentum = check_float_in_range(
            "momentum", momentum, 0.0, 1.0, high_inclusive=False
        )
        if not isinstance(nesterov, bool | np.bool_):
            raise ValueError(
                f"nesterov: expected True or False. Received: {nesterov!r}"
            )
        if nesterov and self.momentum == 0.0:
            raise ValueError(
                "nesterov: expected momentum > 0 for Nesterov momentum. "
                f"Received: momentum={momentum!r}"
            )
        self.nesterov = bool(nesterov)

    def initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {"velocity": np.zeros_like(param)} if self.momentum else {}

    def update(self, param, grad, state, next_state, out) -> None:
        # out holds the step: no temporaries.
        if self.momentum:
            velocity = next_state["velocity"]
            np.multiply(state["velocity"], self.momentum, out=velocity)
            velocity += grad  # v <- momentum * v + g
            if self.nesterov:
                np.multiply(velocity, self.momentum, out=out)
                out += grad  # g + momentum * v
                out *= self.learning_rate
            else:
                np.multiply(velocity, self.learning_rate, out=out)
        else:
            np.multiply(grad, self.learning_rate, out=out)

    def bound_step(self, bounds, gradient_bound):
        if not self.momentum:
            return bounds, self.learning_rate * gradient_bound
        velocity = self.momentum * bounds["velocity"] + gradient_bound
        if self.nesterov:
            return {"velocity": velocity}, self.learning_rate * (
                gradient_bound + self.momentum * velocity
            )
        return {"velocity": velocity}, self.learning_rate * velocity

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "nesterov": self.nesterov,
        }
