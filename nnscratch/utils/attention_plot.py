"""Plot a MultiHeadAttention layer's weights as heat maps (matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np


def plot_attention(
    weights: np.ndarray,
    tokens: Sequence[str],
    path: str | os.PathLike,
    title: str = "attention weights",
) -> None:
    """Write one heat map per head: row = query position, column = key.

    Parameters
    ----------
    weights : ndarray of shape (h, T, T) or (T, T)
        One sample's attention weights, e.g.
        ``layer.attention_weights[0]`` after a forward pass of a
        :class:`~nnscratch.layers.attention.MultiHeadAttention`.
    tokens : sequence of str of length T
        Axis labels (characters are shown with repr for spaces and newlines).
    path : path-like
        Image file to write (``.png``, ``.pdf``, ...).
    title : str
        Figure title.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> weights = np.tril(np.ones((2, 3, 3))) / np.arange(1, 4)[:, None]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_attention(weights, "abc", os.path.join(folder, "a.png"))
    ...     os.path.getsize(os.path.join(folder, "a.png")) > 0
    True
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 2:
        weights = weights[None]  # (T, T) -> (1, T, T)
    tokens = list(tokens)
    if weights.ndim != 3 or weights.shape[1:] != (len(tokens), len(tokens)):
        raise ValueError(
            f"plot_attention: expected weights of shape (h, {len(tokens)}, "
            f"{len(tokens)}) for {len(tokens)} tokens. Received {weights.shape}"
        )
    from matplotlib.figure import Figure  # imported here: import nnscratch stays light

    heads = weights.shape[0]
    labels = [token if token.strip() else repr(token)[1:-1] for token in tokens]
    size = 1.0 + 0.18 * len(tokens)
    figure = Figure(figsize=(size * heads, size))  # no global pyplot state
    axes = figure.subplots(1, heads, squeeze=False)
    for head, axis in enumerate(axes[0]):
        axis.imshow(weights[head], cmap="viridis", vmin=0.0, vmax=1.0)
        axis.set_title(f"head {head}")
        axis.set_xticks(range(len(tokens)), labels, fontsize=6)
        axis.set_yticks(range(len(tokens)), labels, fontsize=6)
        axis.set_xlabel("key")
        axis.set_ylabel("query")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
