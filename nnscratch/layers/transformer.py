"""TransformerBlock: the pre-norm GPT block, built from the pieces."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.validation import check_float_in_range, check_positive_int
from nnscratch.layers.activation import Activation
from nnscratch.layers.attention import MultiHeadAttention
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.kv_cache import KVCache
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.residual import Residual
from nnscratch.layers.sequential import Sequential


class TransformerBlock(Layer):
    r"""Pre-norm transformer block (GPT-2): attention, then an MLP, each residual.

    Parameters
    ----------
    embed_dim : int
        Width ``D`` of the input and output ``(N, T, D)``.
    num_heads : int
        Attention heads; must divide ``embed_dim``.
    mlp_ratio : int, default 4
        The MLP's hidden width is ``mlp_ratio * D``.
    dropout : float in [0, 1), default 0.0
        On the attention weights and at the end of each residual branch
        (GPT-2's ``attn_pdrop`` and ``resid_pdrop``), in training only.
    causal : bool, default True
        Causal attention (a language model).

    Notes
    -----
    Its two children, listed by ``children()``, are

    - ``attention``: ``Residual(Sequential(LayerNorm, MultiHeadAttention))``:
      ``h = x + MHA(LN1(x))``
    - ``mlp``: ``Residual(Sequential(LayerNorm, Dense, Activation('gelu'),
      Dense))``: ``y = h + W2(gelu(W1(LN2(h))))``

    so the backward pass is the containers' own: ``dh = g + mlp.backward(g)``,
    ``dx = dh + attention.backward(dh)``. GELU is the exact erf form,
    torch's default. The Dense layers start Xavier-normal, biases 0.

    Examples
    --------
    >>> import numpy as np
    >>> block = TransformerBlock(embed_dim=8, num_heads=2)
    >>> y = block.forward(np.ones((2, 5, 8), dtype=np.float32))
    >>> y.shape, [type(child).__name__ for child in block.children()]
    ((2, 5, 8), ['Residual', 'Residual'])
    >>> block.backward(np.ones_like(y)).shape
    (2, 5, 8)
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        causal: bool = True,
    ) -> None:
        super().__init__()
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self.mlp_ratio = check_positive_int("mlp_ratio", mlp_ratio)
        self.dropout = check_float_in_range(
            "dropout", dropout, 0.0, 1.0, high_inclusive=False
        )
        self.attention = MultiHeadAttention(embed_dim, num_heads, causal, dropout)
        self.num_heads, self.causal = self.attention.num_heads, self.attention.causal
        hidden = self.mlp_ratio * embed_dim
        attention_branch = [LayerNorm(embed_dim), self.attention]
        mlp_branch = [
            LayerNorm(embed_dim),
            Dense(embed_dim, hidden, initialization="xavier"),
            Activation("gelu"),
            Dense(hidden, embed_dim, initialization="xavier"),
        ]
        if self.dropout > 0.0:
            attention_branch.append(Dropout(self.dropout))
            mlp_branch.append(Dropout(self.dropout))
        self.attention_residual = Residual(Sequential(*attention_branch))
        self.mlp_residual = Residual(Sequential(*mlp_branch))
        self.built = True  # no arrays of its own: they are its children's

    def children(self) -> list[Layer]:
        return [self.attention_residual, self.mlp_residual]

    def named_children(self) -> list[tuple[str, Layer]]:
        return [("attention", self.attention_residual), ("mlp", self.mlp_residual)]

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``h = x + MHA(LN1(x))``, then ``h + MLP(LN2(h))``.

        Parameters
        ----------
        x : ndarray of shape (N, T, embed_dim)
        training : bool
            Dropout on (if ``dropout > 0``).

        Returns
        -------
        ndarray of shape (N, T, embed_dim)
        """
        h = self.attention_residual.forward(x, training=training)
        return self.mlp_residual.forward(h, training=training)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Backpropagate through the MLP branch, then the attention branch.

        Parameters
        ----------
        grad : ndarray of shape (N, T, embed_dim)
            dLoss/dOutput.

        Returns
        -------
        ndarray of shape (N, T, embed_dim)
        """
        return self.attention_residual.backward(self.mlp_residual.backward(grad))

    def forward_step(self, x: np.ndarray, cache: KVCache) -> np.ndarray:
        """The block on new positions only, attention reading ``cache``
        (inference; see :class:`~nnscratch.layers.kv_cache.KVCache`)."""
        norm = self.attention_residual.body.layers[0]
        h = x + self.attention.forward_step(norm.forward(x), cache)
        return self.mlp_residual.forward(h)

    def get_config(self) -> dict[str, Any]:
        return {
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "dropout": self.dropout,
            "causal": self.causal,
        }
