"""Small torch modules for nnscratch layers that torch has no single module for.

``to_torch`` builds them and ``from_torch`` reads them back; each fits in an
``nn.Sequential`` (one tensor in, one out). Importing this module imports
torch, so only the functions of :mod:`nnscratch.interop.torch_convert` do.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "Normalization",
    "PositionalEmbedding",
    "Recurrent",
    "Residual",
    "SelfAttention",
]


class Residual(nn.Module):
    """``y = x + body(x)``, as ``nnscratch.layers.Residual``."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Normalization(nn.Module):
    """``y = (x - mean) / sqrt(variance + 1e-7)`` over the last axis (buffers)."""

    def __init__(self, mean: torch.Tensor, variance: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("variance", variance.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * torch.rsqrt(self.variance + 1e-7)


class PositionalEmbedding(nn.Module):
    """Learned positions: ``y = x + weight[:T]`` on ``(N, T, D)``."""

    def __init__(self, max_length: int, embed_dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_length, embed_dim, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.shape[1]]


class Recurrent(nn.Module):
    """An ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (batch first) returning one tensor:
    the outputs ``(N, T, H)`` with ``return_sequences``, else the last ``(N, H)``."""

    def __init__(self, rnn: nn.Module, return_sequences: bool) -> None:
        super().__init__()
        self.rnn = rnn
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(x)  # zero initial state
        return outputs if self.return_sequences else outputs[:, -1]


class SelfAttention(nn.Module):
    """``nn.MultiheadAttention`` (batch first) with ``q = k = v = x``, causal or not."""

    def __init__(self, attention: nn.MultiheadAttention, causal: bool) -> None:
        super().__init__()
        self.attention = attention
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = None
        if self.causal:  # True above the diagonal: a key a query may not see
            steps = x.shape[1]
            mask = torch.ones(steps, steps, dtype=torch.bool, device=x.device).triu(1)
        output, _ = self.attention(x, x, x, attn_mask=mask, need_weights=False)
        return output
