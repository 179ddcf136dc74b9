"""Stochastic gradient descent with (heavy-ball) momentum."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range
from nnscratch.optimizers.optimizer import Optimizer


class SGD(Optimizer):
    """SGD with momentum, update for update as ``torch.optim.SGD(lr, momentum)``.

    Parameters
    ----------
    learning_rate : float, default 0.01
    momentum : float in [0, 1), default 0.0

    Notes
    -----
    With gradient ``g`` and a velocity ``v`` that starts at 0:

    - ``v <- momentum * v + g``
    - ``param <- param - learning_rate * v``

    With ``momentum = 0`` this is plain gradient descent.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0])
    >>> opt = SGD(learning_rate=0.1, momentum=0.9)
    >>> opt.step([w], [np.array([1.0])]); w        # v = 1
    array([0.9])
    >>> opt.step([w], [np.array([1.0])]); w        # v = 0.9 * 1 + 1 = 1.9
    array([0.71])
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0) -> None:
        super().__init__(learning_rate)
        self.momentum = check_float_in_range(
            "momentum", momentum, 0.0, 1.0, high_inclusive=False
        )

    def initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {"velocity": np.zeros_like(param)} if self.momentum else {}

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        if not self.momentum:
            param -= self.learning_rate * grad
            return
        velocity = state["velocity"]
        velocity *= self.momentum
        velocity += grad
        param -= self.learning_rate * velocity

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "momentum": self.momentum}
