"""What layers with weights and biases share: initialisation and the L2 penalty."""

from __future__ import annotations

import numpy as np

from nnscratch.core.initializers import initial_weights
from nnscratch.core.layer import Layer


class WeightedLayer(Layer):
    """Base of layers with a weight array ``W`` and a bias vector ``b``.

    Subclasses (Dense, Conv2D) set ``initialization`` and ``l2_lambda`` and
    call :meth:`init_params` from ``build``. The L2 penalty is
    ``l2_lambda * sum(W**2)``; its gradient ``2 * l2_lambda * W`` is added to
    ``dW`` by :meth:`penalised`. Biases are not penalised.
    """

    initialization: str
    l2_lambda: float

    def init_params(
        self,
        weight_shape: tuple[int, ...],
        bias_size: int,
        fan_in: int,
        fan_out: int,
        rng: np.random.Generator,
        dtype: np.dtype,
    ) -> None:
        """Draw ``W`` with the layer's scheme; ``b`` of ``bias_size`` starts at 0."""
        self.params = {
            "W": initial_weights(
                self.initialization, weight_shape, fan_in, fan_out, rng, dtype
            ),
            "b": np.zeros(bias_size, dtype=dtype),
        }
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}

    def penalised(self, dW: np.ndarray) -> np.ndarray:
        """``dW + 2 * l2_lambda * W``, in place."""
        if self.l2_lambda:
            dW += 2.0 * self.l2_lambda * self.params["W"]
        return dW

    def regularization_loss(self) -> float:
        """``l2_lambda * sum(W**2)``."""
        if not self.l2_lambda:
            return 0.0
        W = self.params["W"]
        return self.l2_lambda * float(np.vdot(W, W))
