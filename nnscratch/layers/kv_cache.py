"""KVCache: what autoregressive generation keeps between tokens."""

from __future__ import annotations

from typing import Any

import numpy as np


class KVCache:
    """What generation keeps between tokens: the keys and values seen so far.

    One cache serves a whole model: ``position`` counts the tokens already
    processed (read by :meth:`PositionalEmbedding.forward_step`), and each
    attention layer keeps its own keys and values in :meth:`state`. A
    generator calls every layer's ``forward_step(x_new, cache)`` on the new
    tokens only, then :meth:`advance` by their number.

    Examples
    --------
    >>> from nnscratch.layers.attention import MultiHeadAttention
    >>> attention = MultiHeadAttention(4, 2, causal=True)
    >>> x = np.random.default_rng(0).standard_normal((1, 3, 4))
    >>> cache = KVCache()
    >>> first = attention.forward_step(x[:, :2], cache); cache.advance(2)
    >>> last = attention.forward_step(x[:, 2:], cache); cache.advance(1)
    >>> bool(np.allclose(last, attention.forward(x)[:, 2:], atol=1e-6))
    True
    """

    def __init__(self) -> None:
        self.position = 0
        self._states: dict[int, dict[str, np.ndarray]] = {}

    def state(self, layer: Any) -> dict[str, np.ndarray]:
        """The dict ``layer`` keeps its arrays in (empty at first)."""
        return self._states.setdefault(id(layer), {})

    def advance(self, steps: int) -> None:
        """Record that ``steps`` more tokens went through every layer."""
        self.position += steps
