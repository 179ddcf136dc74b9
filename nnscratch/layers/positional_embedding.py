"""PositionalEmbedding: a learned vector added at each position (GPT-2's ``wpe``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.validation import check_positive_int


class PositionalEmbedding(Layer):
    r"""Learned positional embedding: ``y = x + W[:T]``.

    Parameters
    ----------
    max_length : int
        The longest sequence ``L`` the layer accepts (GPT's context size).
    embed_dim : int
        Width ``D`` of the input vectors.

    Notes
    -----
    ``W`` ``(L, D)`` is drawn from ``N(0, 0.02**2)`` (GPT-2's init). With
    ``x`` ``(N, T, D)``, ``T <= L`` and ``g = dL/dy``:

    - forward:  ``y[n, t] = x[n, t] + W[t]``
    - backward: ``dW[t] = sum_n g[n, t]`` for ``t < T`` (0 beyond),
      ``dx = g``

    :meth:`forward_step` adds the positions after those already generated
    (see :class:`nnscratch.layers.kv_cache.KVCache`).

    Examples
    --------
    >>> import numpy as np
    >>> layer = PositionalEmbedding(max_length=4, embed_dim=2)
    >>> layer.params["W"][:] = np.arange(8).reshape(4, 2)
    >>> layer.forward(np.zeros((1, 2, 2)))
    array([[[0., 1.],
            [2., 3.]]])
    >>> layer.forward(np.zeros((1, 5, 2)))
    Traceback (most recent call last):
    ...
    ValueError: PositionalEmbedding: expected T <= max_length=4. Received T=5
    """

    def __init__(self, max_length: int, embed_dim: int) -> None:
        super().__init__()
        self.max_length = check_positive_int("max_length", max_length)
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self._steps: int | None = None

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.max_length, self.embed_dim)}

    def create_state(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """``W`` from ``N(0, 0.02**2)``, as GPT-2's ``wpe``."""
        W = 0.02 * rng.standard_normal(self.state_shapes()["W"])
        self.params = {"W": W.astype(dtype)}

    def _check(self, x: np.ndarray, start: int) -> int:
        if x.ndim != 3 or x.shape[2] != self.embed_dim:
            raise ValueError(
                f"PositionalEmbedding: expected input of shape (N, T, "
                f"{self.embed_dim}). Received shape {x.shape}"
            )
        if start + x.shape[1] > self.max_length:
            raise ValueError(
                f"PositionalEmbedding: expected T <= max_length={self.max_length}. "
                f"Received T={start + x.shape[1]}"
            )
        return x.shape[1]

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Add the first ``T`` position vectors.

        Parameters
        ----------
        x : ndarray of shape (N, T, embed_dim), ``T <= max_length``
        training : bool
            Unused.

        Returns
        -------
        ndarray of shape (N, T, embed_dim)
        """
        self._steps = self._check(x, 0)
        return x + self.params["W"][: self._steps]  # (T, D) broadcast over N

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Fill ``grads['W']`` and return ``dL/dx = grad``.

        Parameters
        ----------
        grad : ndarray of shape (N, T, embed_dim)

        Returns
        -------
        ndarray of shape (N, T, embed_dim)
        """
        steps = self._cached("_steps")
        dW = self.grads["W"]
        dW[steps:] = 0.0
        np.sum(grad, axis=0, out=dW[:steps])  # (N, T, D) -> (T, D)
        return grad

    def forward_step(self, x: np.ndarray, cache: Any) -> np.ndarray:
        """Add the positions ``cache.position ..`` to new steps ``(N, t, D)``."""
        start = cache.position
        steps = self._check(x, start)
        return x + self.params["W"][start : start + steps]

    def get_config(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "embed_dim": self.embed_dim}
