"""Embedding: token ids -> learned vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.validation import check_positive_int

# Also importable from here, where it lived first (interop imports it so).
from nnscratch.layers.positional_embedding import PositionalEmbedding

__all__ = ["Embedding", "PositionalEmbedding", "check_ids"]


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
