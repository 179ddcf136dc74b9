"""AdamW: Adam with weight decay applied to the weights, not to the gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range
from nnscratch.optimizers.adam import Adam


class AdamW(Adam):
    """AdamW (Loshchilov and Hutter, 2019), update for update as ``torch.optim.AdamW``.

    The same as ``torch.optim.AdamW(lr=learning_rate, betas=(beta1, beta2),
    eps=epsilon, weight_decay=weight_decay)``: every step first shrinks the
    weights, then takes the :class:`Adam` step, whose moments never see the
    decay.

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1, beta2, epsilon : float
        As in :class:`Adam`.
    weight_decay : float >= 0, default 0.01
        Fraction of the weights removed per unit of learning rate.
    clipnorm : float, optional
        Clip the gradients' joint norm first (see :class:`Optimizer`).

    Notes
    -----
    At step ``t`` with gradient ``g``:

    - ``param <- param * (1 - learning_rate * weight_decay)``
    - then the Adam update of ``param`` with ``g`` (see :class:`Adam`).

    Unlike an L2 penalty (``Dense(l2_lambda=...)``), the decay is not scaled
    by Adam's per-parameter step size.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0])
    >>> opt = AdamW(learning_rate=0.1, weight_decay=0.5)
    >>> opt.step([w], [np.array([3.0])])  # 1 * (1 - 0.05), then ~ -0.1 * sign(g)
    True
    >>> w.round(6)
    array([0.85])
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.01,
        clipnorm: float | None = None,
    ) -> None:
        super().__init__(learning_rate, beta1, beta2, epsilon, clipnorm=clipnorm)
        self.weight_decay = check_float_in_range(
            "weight_decay", weight_decay, 0.0, np.inf
        )

    def apply_step(self, param: np.ndarray, step: np.ndarray, into: np.ndarray) -> None:
        """``into <- param * (1 - lr * weight_decay) - step``, in torch's
        order: the decay first, then Adam's step from there."""
        decayed = self._work(("decayed", param.shape), param, param.dtype)
        np.multiply(param, 1.0 - self.learning_rate * self.weight_decay, out=decayed)
        np.subtract(decayed, step, out=into)

    def new_value_bound(self, param_bound: float, step_bound: float) -> float:
        decay = abs(1.0 - self.learning_rate * self.weight_decay)
        return param_bound * decay + step_bound

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight_decay": self.weight_decay}
