"""MultiHeadAttention: scaled dot-product self-attention."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnscratch.core.functional import along_rows, column_sums, constant_vector
from nnscratch.core.layer import Layer
from nnscratch.core.shard import batch_random
from nnscratch.core.validation import check_float_in_range, check_positive_int
from nnscratch.layers.kv_cache import KVCache


class MultiHeadAttention(Layer):
    r"""Multi-head self-attention, as ``torch.nn.MultiheadAttention``.

    The same as ``torch.nn.MultiheadAttention(embed_dim, num_heads,
    dropout, batch_first=True)`` called with ``q = k = v = x`` (and a causal
    mask when ``causal=True``).

    Parameters
    ----------
    embed_dim : int
        Width ``D`` of the input and output.
    num_heads : int
        Number of heads ``h``; ``D`` must be divisible by it (``d = D / h``).
    causal : bool, default False
        Position ``t`` attends only to positions ``<= t`` (a language model).
    dropout : float in [0, 1), default 0.0
        Dropout on the attention weights, in training only.

    Notes
    -----
    Params ``W_qkv`` ``(D, 3D)`` (= ``in_proj_weight.T``), ``b_qkv`` ``(3D,)``,
    ``W_o`` ``(D, D)`` (= ``out_proj.weight.T``), ``b_o`` ``(D,)``. Per head:

    - ``[q, k, v] = x @ W_qkv + b_qkv``, each split into ``h`` heads of ``d``
    - ``s = q @ k.T / sqrt(d)`` (``-inf`` above the diagonal if causal)
    - ``a = softmax(s)`` over keys; ``ad = a * m / (1 - p)`` (dropout mask ``m``)
    - ``o = ad @ v``; heads concatenated; ``y = o @ W_o + b_o``

    Backward, with ``g = dL/dy``:

    - ``dW_o = o.T @ g``, ``db_o = sum g``, ``do = g @ W_o.T``
    - ``dv = ad.T @ do``, ``dad = do @ v.T``, ``da = dad * m / (1 - p)``
    - ``ds = a * (da - sum_j(da * a))`` (softmax's Jacobian ``diag(a) - a a.T``
      applied row by row; masked entries have ``a = 0``, so ``ds = 0``)
    - ``dq = ds @ k / sqrt(d)``, ``dk = ds.T @ q / sqrt(d)``
    - ``dW_qkv = x.T @ [dq, dk, dv]``, ``db_qkv = sum [dq, dk, dv]``,
      ``dx = [dq, dk, dv] @ W_qkv.T``

    ``attention_weights`` keeps the last forward's ``a`` ``(N, h, T, T)``
    (for :func:`nnscratch.utils.attention_plot.plot_attention`).
    :meth:`forward_step` runs new positions against a
    :class:`~nnscratch.layers.kv_cache.KVCache` (generation).

    Examples
    --------
    >>> import numpy as np
    >>> layer = MultiHeadAttention(embed_dim=8, num_heads=2, causal=True)
    >>> y = layer.forward(np.ones((3, 5, 8)))
    >>> y.shape, layer.attention_weights.shape
    ((3, 5, 8), (3, 2, 5, 5))
    >>> layer.backward(np.ones_like(y)).shape
    (3, 5, 8)
    """

    def __init__(
        self, embed_dim: int, num_heads: int, causal: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self.num_heads = check_positive_int("num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiHeadAttention: expected embed_dim divisible by num_heads. "
                f"Received embed_dim={embed_dim}, num_heads={num_heads}"
            )
        if not isinstance(causal, bool | np.bool_):
            raise ValueError(f"causal: expected True or False. Received {causal!r}")
        self.causal = bool(causal)
        self.dropout = check_float_in_range(
            "dropout", dropout, 0.0, 1.0, high_inclusive=False
        )
        self.head_dim = embed_dim // num_heads
        self.rng = np.random.default_rng()
        self.attention_weights: np.ndarray | None = None
        self._cache: tuple | None = None

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        D = self.embed_dim
        return {"W_qkv": (D, 3 * D), "b_qkv": (3 * D,), "W_o": (D, D), "b_o": (D,)}

    def create_state(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """As torch: ``W_qkv`` Xavier-uniform over ``(3D, D)``, ``W_o``
        ``U(-1/sqrt(D), 1/sqrt(D))``, biases 0. Dropout masks use ``rng``."""
        D = self.embed_dim
        self.rng = rng
        bound_qkv = np.sqrt(6.0 / (D + 3 * D))
        bound_o = 1.0 / np.sqrt(D)
        self.params = {
            "W_qkv": rng.uniform(-bound_qkv, bound_qkv, (D, 3 * D)).astype(dtype),
            "b_qkv": np.zeros(3 * D, dtype=dtype),
            "W_o": rng.uniform(-bound_o, bound_o, (D, D)).astype(dtype),
            "b_o": np.zeros(D, dtype=dtype),
        }

    def _heads(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``x @ W_qkv + b_qkv`` split into ``q / sqrt(d), k, v``, each of
        shape (N, h, T, d).

        ``q`` is scaled here rather than the scores: (N, h, T, d) is smaller
        than (N, h, T, T) whenever ``d < T``.
        """
        if x.ndim != 3 or x.shape[2] != self.embed_dim:
            raise ValueError(
                f"MultiHeadAttention: expected input of shape (N, T, "
                f"{self.embed_dim}). Received shape {x.shape}"
            )
        N, T, D = x.shape
        # (N*T, D) @ (D, 3D): one 2-D GEMM (a stacked 3-D matmul is slower).
        qkv = x.reshape(N * T, D) @ self.params["W_qkv"]
        along_rows(np.add, qkv, self.params["b_qkv"], out=qkv)
        # (N*T, 3D) -> (N, T, 3, h, d) -> (3, N, h, T, d), copied contiguous so
        # that every batched matmul below runs on plain (T, d) matrices.
        qkv = qkv.reshape(N, T, 3, self.num_heads, self.head_dim)
        scaled_q, k, v = np.ascontiguousarray(qkv.transpose(2, 0, 3, 1, 4))
        # math.sqrt: a NumPy float64 scalar would make float32 work float64.
        scaled_q *= 1.0 / math.sqrt(self.head_dim)
        return scaled_q, k, v

    def _attend(self, scaled_q: np.ndarray, k: np.ndarray, offset: int) -> np.ndarray:
        """``softmax(scaled_q @ k.T)`` (N, h, Tq, Tk), for the ``q / sqrt(d)``
        of :meth:`_heads`; query ``i`` sits at position ``offset + i`` and,
        if causal, sees keys up to there.

        The scores are computed and normalised key-major, as ``k @ q.T``
        (N, h, Tk, Tq), and returned as the transposed view: the softmax's
        sums over the keys then run over the second-to-last axis, as one
        batched product ``ones(Tk) @ e`` (BLAS, ~4x faster than NumPy's sum
        over that axis). ``matmul`` reads the view as it is (BLAS takes
        either order).

        Softmax is shift-invariant, ``exp(s) / sum exp(s) = exp(s - c) / sum
        exp(s - c)``; the usual ``c = max(s)`` only keeps ``exp`` from
        overflowing. A transformer's scores are far from that (``|s| < 88``
        in float32), so they are exponentiated as they are, which saves the
        maximum over the keys and a pass (~0.4 of 1.45 ms at the char GPT's
        shapes). Only if a sum overflowed, or fell so low that a term could
        have lost digits as a subnormal number (or is NaN), are the scores
        computed again and shifted by their maximum.
        """
        scores = self._scores(scaled_q, k, offset)
        Tk = scores.shape[-2]
        ones = constant_vector(Tk, 1.0, scores.dtype).reshape(1, Tk)
        with np.errstate(over="ignore"):  # an overflow is caught below
            np.exp(scores, out=scores)
        sums = ones @ scores  # (N, h, 1, Tq)
        info = np.finfo(scores.dtype)
        # Above tiny * 2**(nmant + 1) a term that underflowed to a subnormal
        # number is off by at most 2**-(2 nmant + 1) of the sum (float32:
        # 2**-47), far below rounding. NaN fails both comparisons and takes
        # the shifted path, which keeps it.
        smallest = float(info.tiny) * 2.0 ** (info.nmant + 1)
        if not (sums.size == 0 or smallest <= sums.min() and sums.max() <= info.max):
            scores = self._scores(scaled_q, k, offset, fill=True)
            # Each query sees its own key, so its maximum is finite unless a
            # score it sees is NaN (or infinite): then its weights are NaN,
            # as torch's, without a warning.
            with np.errstate(invalid="ignore"):
                scores -= scores.max(axis=-2, keepdims=True)
            np.exp(scores, out=scores)
            sums = ones @ scores
        scores /= sums
        return scores.transpose(0, 1, 3, 2)

    def _scores(
        self, scaled_q: np.ndarray, k: np.ndarray, offset: int, fill: bool = False
    ) -> np.ndarray:
        """``k @ q.T`` (N, h, Tk, Tq), masked if causal (see :meth:`_attend`).

        The mask is -inf where key ``j`` is hidden from query ``i`` (``j >
        offset + i``; every query keeps at least its own position), and
        ``exp(-inf) = 0`` exactly. It is added, or with ``fill`` written over
        the scores, as torch's ``masked_fill`` does: a NaN score of a hidden
        key then leaves the query's weights alone (slower; the shifted path).
        """
        scores = k @ _contiguous_transpose(scaled_q)
        Tk, Tq = scores.shape[-2:]
        if self.causal:
            hidden = np.tri(Tk, Tq, -offset - 1, dtype=bool)  # (Tk, Tq)
            if fill:
                np.copyto(scores, -np.inf, where=hidden)  # over (N, h)
            else:
                mask = np.where(hidden, -np.inf, 0.0).astype(scores.dtype)
                flat_scores = scores.reshape(-1, Tk * Tq)  # (N*h, Tk*Tq), a view
                along_rows(np.add, flat_scores, mask.reshape(-1), out=flat_scores)
        return scores

    def _merge(self, weights: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``o = weights @ v`` per head, heads side by side (N*T, D), then the
        output projection: returns ``(o, y)``, ``y`` of shape (N, T, D)."""
        N, _, T, _ = weights.shape  # T queries
        # Each head's (T, d) product is written straight into its columns of
        # (N, T, h, d) = (N*T, D), through a (N, h, T, d) view: no copy.
        merged = np.empty((N, T, self.num_heads, self.head_dim), dtype=v.dtype)
        np.matmul(weights, v, out=merged.transpose(0, 2, 1, 3))
        merged = merged.reshape(N * T, self.embed_dim)
        y = merged @ self.params["W_o"]
        along_rows(np.add, y, self.params["b_o"], out=y)
        return merged, y.reshape(N, T, self.embed_dim)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Attend over the whole sequence.

        Parameters
        ----------
        x : ndarray of shape (N, T, embed_dim)
        training : bool
            Apply dropout to the attention weights.

        Returns
        -------
        ndarray of shape (N, T, embed_dim)
        """
        scaled_q, k, v = self._heads(x)
        weights = self._attend(scaled_q, k, 0)  # (N, h, T, T)
        self.attention_weights = weights
        mask = None
        dropped = weights
        if training and self.dropout > 0.0:
            keep = batch_random(self.rng, weights.shape, self.batch_shard)
            keep = keep >= self.dropout
            mask = keep.astype(weights.dtype) / weights.dtype.type(1.0 - self.dropout)
            dropped = weights * mask
        merged, y = self._merge(dropped, v)
        self._cache = (x, scaled_q, k, v, weights, mask, dropped, merged)
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Fill the four grads and return ``dL/dx``.

        Parameters
        ----------
        grad : ndarray of shape (N, T, embed_dim)
            dLoss/dOutput.

        Returns
        -------
        ndarray of shape (N, T, embed_dim)
        """
        x, scaled_q, k, v, weights, mask, dropped, merged = self._cached("_cache")
        N, T, D = x.shape
        h, d = self.num_heads, self.head_dim
        flat_grad = grad.reshape(-1, D)  # (N*T, D)
        np.matmul(merged.T, flat_grad, out=self.grads["W_o"])  # merged: (N*T, D)
        column_sums(flat_grad, out=self.grads["b_o"])
        # (N*T, D) -> (N, T, h, d) -> (N, h, T, d)
        d_o = (flat_grad @ self.params["W_o"].T).reshape(N, T, h, d)
        d_o = np.ascontiguousarray(d_o.transpose(0, 2, 1, 3))
        # Written straight into the layout of qkv, (N, T, 3, h, d) = (N*T, 3D),
        # through a (3, N, h, T, d) view: no copy back from head order.
        d_qkv = np.empty((N, T, 3, h, d), dtype=grad.dtype)
        dq, dk, dv = d_qkv.transpose(2, 0, 3, 1, 4)
        np.matmul(dropped.transpose(0, 1, 3, 2), d_o, out=dv)  # (N, h, Tk, d)
        # Key-major (N, h, Tk, Tq), as the forward normalised the weights:
        # the sums over the keys below run over whole rows (see _attend).
        key_major = weights.transpose(0, 1, 3, 2)  # a.T
        d_scores = v @ _contiguous_transpose(d_o)  # da.T, becomes ds.T in place
        if mask is not None:
            d_scores *= mask.transpose(0, 1, 3, 2)
        # Softmax Jacobian-vector product, per query: a * (da - <da, a>).
        # einsum forms <da, a> over the keys k without the (N, h, Tk, Tq)
        # temporary of a * da (2.5x faster than that product and a sum).
        d_scores -= np.einsum("nhkq,nhkq->nhq", key_major, d_scores)[:, :, None, :]
        d_scores *= key_major
        # s = (q / sqrt(d)) @ k.T: dk = ds.T @ (q / sqrt(d)) with the scaled
        # q of the forward, and dq = ds @ k / sqrt(d).
        np.matmul(d_scores, scaled_q, out=dk)  # (N, h, Tk, d)
        np.matmul(d_scores.transpose(0, 1, 3, 2), k, out=dq)  # (N, h, Tq, d)
        dq *= 1.0 / math.sqrt(d)
        d_qkv = d_qkv.reshape(N * T, 3 * D)
        np.matmul(x.reshape(-1, D).T, d_qkv, out=self.grads["W_qkv"])
        column_sums(d_qkv, out=self.grads["b_qkv"])
        return (d_qkv @ self.params["W_qkv"].T).reshape(N, T, D)

    def forward_step(self, x: np.ndarray, cache: KVCache) -> np.ndarray:
        """Attend from new positions ``(N, t, D)`` over all cached ones (inference).

        The new keys and values are appended to ``cache.state(self)``, so each
        generated token costs one position, not the whole context again.
        Causal layers only: without the mask, old positions would have to
        see the new tokens.
        """
        if not self.causal:
            raise ValueError(
                "MultiHeadAttention.forward_step: expected a causal layer "
                "(causal=True) for cached generation. Received causal=False"
            )
        state = cache.state(self)
        scaled_q, k, v = self._heads(x)
        if "keys" in state:
            k = np.concatenate([state["keys"], k], axis=2)  # along time
            v = np.concatenate([state["values"], v], axis=2)
        state["keys"], state["values"] = k, v
        weights = self._attend(scaled_q, k, cache.position)  # (N, h, t, position + t)
        return self._merge(weights, v)[1]

    def get_config(self) -> dict[str, Any]:
        return {
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "causal": self.causal,
            "dropout": self.dropout,
        }


def _contiguous_transpose(a: np.ndarray) -> np.ndarray:
    """``a`` (..., T, d) as a contiguous (..., d, T) copy.

    NumPy's stacked matmul is slow when its *second* operand is a transposed
    view: for 128 products of (64, 32) @ (32, 64) in float32, 0.60 ms on the
    view against 0.45 ms for this copy and the product together (a first
    operand transposed, or both, costs nothing extra).
    """
    return np.ascontiguousarray(np.swapaxes(a, -1, -2))
