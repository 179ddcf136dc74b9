"""Embedding (token ids -> vectors) and PositionalEmbedding (learned positions)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.validation import check_positive_int


class Embedding(Layer):
    r"""A lookup table of ``num_embeddings`` vectors, as ``torch.nn.Embedding``.

    Parameters
    ----------
    num_embeddings : int
        Vocabulary size ``V``: ids run over ``[0, V)``.
    embedding_dim : int
        Width ``D`` of each vector.

    Notes
    -----
    ``W`` ``(V, D)`` is ``torch.nn.Embedding.weight`` (no transpose), drawn
    from ``N(0, 1)`` as torch does. With ids ``x`` ``(N, T)``, ``g = dL/dy``:

    - forward:  ``y[n, t] = W[x[n, t]]``
    - backward: ``dW[v] = sum over (n, t) with x[n, t] = v of g[n, t]``;
      the ids have no gradient: ``backward`` returns None.

    The input is integer ids, so ``float_input`` is False: a model passes it
    uncast. Float arrays holding whole numbers are accepted too.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Embedding(4, 2)
    >>> layer.params["W"][:] = np.arange(8).reshape(4, 2)
    >>> layer.forward(np.array([[3, 0, 3]]))
    array([[[6., 7.],
            [0., 1.],
            [6., 7.]]], dtype=float32)
    >>> layer.backward(np.ones((1, 3, 2))) is None
    True
    >>> layer.grads["W"]  # id 3 was used twice
    array([[1., 1.],
           [0., 0.],
           [0., 0.],
           [2., 2.]], dtype=float32)
    """

    float_input = False

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings = check_positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self._ids: np.ndarray | None = None

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.num_embeddings, self.embedding_dim)}

    def create_state(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """``W`` from ``N(0, 1)``, as ``torch.nn.Embedding``."""
        self.params = {"W": rng.standard_normal(self.state_shapes()["W"]).astype(dtype)}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Look the ids up.

        Parameters
        ----------
        x : ndarray of int of shape (N, T) (or any shape ``(N, ...)``)
            Token ids in ``[0, num_embeddings)``.
        training : bool
            Unused.

        Returns
        -------
        ndarray of shape (N, T, embedding_dim)
        """
        self._ids = check_ids("Embedding", x, self.num_embeddings)
        return self.params["W"][self._ids]  # (N, T) ids -> (N, T, D) rows

    def backward(self, grad: np.ndarray) -> None:
        """Scatter-add ``grad`` into the rows of ``grads['W']``; return None.

        Parameters
        ----------
        grad : ndarray of shape (N, T, embedding_dim)
            dLoss/dOutput.
        """
        ids = self._cached("_ids").reshape(-1)  # (N, T) -> (N*T,)
        rows = grad.reshape(-1, self.embedding_dim)  # (N, T, D) -> (N*T, D)
        # Repeated ids must accumulate (fancy-index assignment would keep one
        # of them): sort the positions by id and sum each run of equal ids
        # with one reduceat, several times faster than np.add.at.
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        dW = self.grads["W"]
        dW[...] = 0.0
        dW[sorted_ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
        return None

    def get_config(self) -> dict[str, Any]:
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
        }


def check_ids(layer: str, x: Any, vocabulary: int) -> np.ndarray:
    """``x`` as an ``intp`` array of ids in ``[0, vocabulary)``, else ``ValueError``."""
    x = np.asarray(x)
    if x.dtype.kind == "f" and np.isfinite(x).all() and np.array_equal(x, np.round(x)):
        x = x.astype(np.intp)
    if x.dtype.kind not in "iu":
        raise ValueError(
            f"{layer}: expected integer token ids. Received dtype {x.dtype}"
        )
    if x.ndim < 1 or x.size == 0:
        raise ValueError(
            f"{layer}: expected ids of shape (N, T). Received shape {x.shape}"
        )
    low, high = int(x.min()), int(x.max())
    if low < 0 or high >= vocabulary:
        raise ValueError(
            f"{layer}: expected ids in [0, {vocabulary}). "
            f"Received ids from {low} to {high}"
        )
    return x.astype(np.intp, copy=False)


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
    (see :class:`nnscratch.layers.attention.KVCache`).

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
