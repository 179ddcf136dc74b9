"""Dropout: randomly silence units during training."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.shard import batch_random
from nnscratch.core.validation import check_float_in_range


class Dropout(Layer):
    """Inverted dropout.

    In training each unit is kept with probability ``1 - rate`` and the kept
    ones are scaled by ``1 / (1 - rate)``, so the expected output equals the
    input and inference needs no rescaling: it is the identity.

    Parameters
    ----------
    rate : float in [0, 1)
        Probability of dropping a unit.

    Notes
    -----
    With a mask ``m`` of independent Bernoulli(``1 - rate``) draws:

    - forward (training):  ``y = x * m / (1 - rate)``; inference: ``y = x``
    - backward:            ``dx = g * m / (1 - rate)``

    Examples
    --------
    >>> import numpy as np
    >>> layer = Dropout(0.5)
    >>> x = np.ones((1, 6))
    >>> layer.forward(x, training=False)
    array([[1., 1., 1., 1., 1., 1.]])
    >>> y = layer.forward(x, training=True)  # each entry is 0 (dropped) or 2
    >>> bool(np.isin(y, [0.0, 2.0]).all())
    True
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = check_float_in_range("rate", rate, 0.0, 1.0, high_inclusive=False)
        self.rng = np.random.default_rng()
        self._scaled_mask: np.ndarray | None = None
        self._forward_done = False  # backward needs a forward to know the mask

    def build(
        self, rng: np.random.Generator | None = None, dtype: Any = "float32"
    ) -> None:
        """Draw masks from the model's generator, so a seed repeats them."""
        super().build(rng, dtype)
        if rng is not None:
            self.rng = rng

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Drop and rescale in training; pass through otherwise.

        Parameters
        ----------
        x : ndarray of shape (N, ...)
        training : bool

        Returns
        -------
        ndarray of the same shape and dtype as ``x``
        """
        self._forward_done = True
        if not training or self.rate == 0.0:
            self._scaled_mask = None
            return x
        # Drawn for the global batch in data-parallel training (same masks).
        keep = batch_random(self.rng, x.shape, self.batch_shard) >= self.rate
        self._scaled_mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.rate)
        return x * self._scaled_mask

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Route ``grad`` through the units that were kept, with the same scale."""
        if not self._forward_done:
            raise self._no_forward_error()
        if self._scaled_mask is None:
            return grad
        return grad * self._scaled_mask

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate}
