"""Flatten: images (or any per-sample arrays) to feature vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer


class Flatten(Layer):
    r"""Flatten every sample, as ``torch.nn.Flatten()``: ``(N, ...) -> (N, prod(...))``.

    Notes
    -----
    - forward:  ``y = x.reshape(N, -1)`` (row-major: for images, channel by
      channel, each row by row)
    - backward: ``dx = g.reshape(x.shape)``

    Both are views when the memory layout allows it, copies otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Flatten()
    >>> layer.forward(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    >>> layer.backward(np.ones((2, 60))).shape
    (2, 3, 4, 5)
    """

    def __init__(self) -> None:
        super().__init__()
        self._input_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Merge every axis after the first.

        Parameters
        ----------
        x : ndarray of shape (N, d1, d2, ...)
        training : bool
            Unused.

        Returns
        -------
        ndarray of shape (N, d1 * d2 * ...)
        """
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(
                "Flatten: expected input with a batch axis and at least one more, "
                f"(N, ...). Received shape {x.shape}"
            )
        self._input_shape = x.shape
        # (N, d1, d2, ...) -> (N, d1*d2*...)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Reshape ``grad`` of shape ``(N, d1*d2*...)`` back to ``(N, d1, d2, ...)``."""
        input_shape = self._cached("_input_shape")
        # (N, d1*d2*...) -> (N, d1, d2, ...)
        return grad.reshape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {}
