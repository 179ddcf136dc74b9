"""What layers with weights and biases share: initialisation and the L2 penalty."""

from __future__ import annotations

import numpy as np

from nnscratch.core.initializers import initial_weights
from nnscratch.core.layer import Layer


class WeightedLayer(Layer):
    """Base of layers with a weight array ``W`` and a bias vector ``b``.

    Subclasses (Dense, Conv2D) set ``initialization`` and ``l2_lambda`` and
    say what their weights look like in :meth:`weight_layout`; this base
    allocates them in ``create_state``. The L2 penalty is
    ``l2_lambda * sum(W**2)``; its gradient ``2 * l2_lambda * W`` is added to
    ``dW`` by :meth:`penalised`. Biases are not penalised.
    """

    initialization: str
    l2_lambda: float

    def weight_layout(self) -> tuple[tuple[int, ...], int, int]:
        """``(shape of W, fan_in, fan_out)``; ``b`` has ``shape[...]`` outputs."""
        raise NotImplementedError

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        shape, _, _ = self.weight_layout()
        return {"W": shape, "b": (self.bias_size,)}

    @property
    def bias_size(self) -> int:
        """One bias per output unit (Dense) or filter (Conv2D)."""
        raise NotImplementedError

    def create_state(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Draw ``W`` with the layer's scheme; ``b`` starts at 0."""
        shape, fan_in, fan_out = self.weight_layout()
        self.params = {
            "W": initial_weights(
                self.initialization, shape, fan_in, fan_out, rng, dtype
            ),
            "b": np.zeros(self.bias_size, dtype=dtype),
        }

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
