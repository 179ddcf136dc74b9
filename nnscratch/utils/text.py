"""Text for language models: a character tokenizer, a corpus, and generation.

- :class:`CharTokenizer`: characters <-> integer ids.
- :func:`load_text`: a corpus on every machine without a download (the
  Python standard library's own sources), or any text file.
- :func:`next_token_windows`: ``(X, y)`` pairs for next-token training.
- :func:`generate`: sample new tokens from a model, with a key/value cache.
"""

from __future__ import annotations

import glob
import os
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.core.functional import softmax
from nnscratch.core.tree import walk
from nnscratch.core.validation import check_float_in_range, check_positive_int
from nnscratch.layers.activation import Activation
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.embedding import Embedding, check_ids
from nnscratch.layers.kv_cache import KVCache
from nnscratch.layers.layernorm import LayerNorm

POSITIONWISE = (Embedding, Dense, Activation, LayerNorm, Dropout)
"""Layers that treat every position on its own: a cache needs nothing from them."""


class CharTokenizer:
    """One id per distinct character, in sorted order.

    Parameters
    ----------
    chars : str, optional
        The vocabulary, one character per id (as :meth:`get_config` gives it);
        or call :meth:`fit`.

    Examples
    --------
    >>> tokenizer = CharTokenizer().fit("hello")
    >>> tokenizer.vocab_size, tokenizer.get_config()
    (4, {'chars': 'ehlo'})
    >>> ids = tokenizer.encode("hole")
    >>> ids.tolist(), tokenizer.decode(ids)
    ([1, 3, 2, 0], 'hole')
    >>> CharTokenizer.from_config(tokenizer.get_config()).decode([2, 0])
    'le'
    """

    def __init__(self, chars: str | None = None) -> None:
        self.chars = ""
        self._index: dict[str, int] = {}
        if chars is not None:
            if not isinstance(chars, str) or len(set(chars)) != len(chars):
                raise ValueError(
                    f"chars: expected a string of distinct characters. Received "
                    f"{chars!r:.60}"
                )
            self._set(chars)

    def _set(self, chars: str) -> None:
        self.chars = chars
        self._index = {char: index for index, char in enumerate(chars)}

    def fit(self, text: str) -> CharTokenizer:
        """Take the vocabulary from ``text``; returns ``self``."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"text: expected a non-empty str. Received {text!r:.60}")
        self._set("".join(sorted(set(text))))
        return self

    @property
    def vocab_size(self) -> int:
        """The number of distinct characters (ids run over ``[0, vocab_size)``)."""
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ids, an int64 array of shape ``(len(text),)``."""
        if not self.chars:
            raise ValueError("CharTokenizer: expected fit(text) before encode")
        unknown = set(text) - self._index.keys()
        if unknown:
            raise ValueError(
                f"CharTokenizer: expected characters of the fitted vocabulary. "
                f"Received {sorted(unknown)[:5]!r} (not in it)"
            )
        return np.fromiter((self._index[c] for c in text), np.int64, len(text))

    def decode(self, ids: Any) -> str:
        """Ids (any 1-D sequence) -> text."""
        ids = check_ids("CharTokenizer.decode", np.atleast_1d(ids), self.vocab_size)
        return "".join(self.chars[i] for i in ids.reshape(-1))

    def get_config(self) -> dict[str, Any]:
        """``{'chars': vocabulary}``: JSON-friendly, saved with a model."""
        return {"chars": self.chars}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CharTokenizer:
        if not isinstance(config, dict) or set(config) != {"chars"}:
            raise ValueError(
                f"CharTokenizer: expected a config {{'chars': str}}. Received "
                f"{config!r:.60}"
            )
        return cls(config["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def load_text(path: str | os.PathLike | None = None, max_chars: int = 500_000) -> str:
    """A text corpus: a user's file, or the Python standard library's sources.

    Parameters
    ----------
    path : path-like, optional
        A UTF-8 text file. By default the corpus is the public modules
        (names not starting with ``_``) of the running Python's standard
        library, the ``*.py`` files directly in ``sysconfig``'s ``stdlib``
        folder, read in sorted file-name order (``abc.py``, ``aifc.py``,
        ``antigravity.py``, ``argparse.py``, ...). It is on every machine
        with Python, needs no download, and is identical on every machine
        with the same Python version (unless a distribution patched those
        files).
    max_chars : int, default 500_000
        Keep at most this many characters (the first ones).

    Returns
    -------
    str
        Newlines normalised to ``\\n`` and tabs to four spaces; for the
        default corpus, characters outside printable ASCII are dropped, so
        the vocabulary is at most 96 characters.

    Examples
    --------
    >>> text = load_text(max_chars=1000)
    >>> len(text), text == load_text(max_chars=1000)
    (1000, True)
    """
    max_chars = check_positive_int("max_chars", max_chars)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"path: expected a text file. Received {str(path)!r}")
        text = path.read_text(encoding="utf-8")
        return _normalise(text)[:max_chars]
    folder = sysconfig.get_paths()["stdlib"]
    files = sorted(
        name
        for name in glob.glob(os.path.join(folder, "*.py"))
        if not os.path.basename(name).startswith("_")
    )
    parts, size = [], 0
    for name in files:
        with open(name, encoding="utf-8", errors="replace") as handle:
            text = _normalise(handle.read())
        text = "".join(c for c in text if c == "\n" or " " <= c <= "~")
        parts.append(text)
        size += len(text)
        if size >= max_chars:
            break
    return "".join(parts)[:max_chars]


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")


def next_token_windows(
    ids: np.ndarray, length: int, stride: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Training pairs: ``X[i]`` a window of ``length`` ids, ``y[i]`` the next ids.

    Parameters
    ----------
    ids : ndarray of int of shape (M,)
    length : int
        Context length ``T``.
    stride : int, optional
        Step between windows; defaults to ``length`` (no overlap).

    Returns
    -------
    X, y : ndarrays of int64 of shape (W, T), ``y[:, t] = ids[start + t + 1]``

    Examples
    --------
    >>> X, y = next_token_windows(np.arange(7), 3)
    >>> X.tolist(), y.tolist()
    ([[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]])
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    length = check_positive_int("length", length)
    stride = length if stride is None else check_positive_int("stride", stride)
    if len(ids) < length + 1:
        raise ValueError(
            f"ids: expected at least length + 1 = {length + 1} ids. Received {len(ids)}"
        )
    starts = np.arange(0, len(ids) - length, stride)  # (W,)
    offsets = np.arange(length)  # (T,)
    X = ids[starts[:, None] + offsets]  # (W, 1) + (T,) -> (W, T)
    return X, ids[starts[:, None] + offsets + 1]


def generate(
    model: Any,
    prompt_ids: Any,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Sample ``max_new_tokens`` ids after ``prompt_ids`` from a language model.

    Parameters
    ----------
    model : NeuralNetwork
        Ids ``(N, T)`` in, next-token scores ``(N, T, V)`` out (probabilities
        after a final ``Activation('softmax')``, whose logits are used, or
        logits).
    prompt_ids : array of int of shape (T,) or (N, T)
        At least one id per row.
    max_new_tokens : int >= 0
    temperature : float >= 0, default 1.0
        Logits are divided by it; 0 picks the most likely id (greedy).
    top_k : int, optional
        Sample only among the ``top_k`` most likely ids.
    seed : int, optional
        Seeds the sampling, so that a seed repeats the ids.
    use_cache : bool, default True
        Keep each attention layer's keys and values (a
        :class:`~nnscratch.layers.kv_cache.KVCache`): the prompt is read
        once, then each new token costs one position, not the whole context.
        The ids are those of the uncached path (``use_cache=False``, which
        reruns the whole context per token). When the sequence outgrows the
        context (``PositionalEmbedding.max_length``) both keep its last
        ``max_length`` ids, and the cache is refilled from them per token.
        A model with a layer that mixes positions but has no
        ``forward_step`` (an LSTM) always takes the uncached path.

    Returns
    -------
    ndarray of int64 of shape (T + max_new_tokens,) or (N, T + max_new_tokens)
        The prompt with the new ids appended.
    """
    ids = np.asarray(prompt_ids)
    single = ids.ndim == 1
    if ids.ndim not in (1, 2) or ids.shape[-1] == 0:
        raise ValueError(
            f"prompt_ids: expected ids of shape (T,) or (N, T) with T >= 1. "
            f"Received shape {ids.shape}"
        )
    ids = check_ids("prompt_ids", ids[None] if single else ids, np.iinfo(np.int64).max)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise ValueError(
            f"max_new_tokens: expected an int. Received {max_new_tokens!r}"
        )
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected >= 0. Received {max_new_tokens}")
    temperature = check_float_in_range("temperature", temperature, 0.0, np.inf)
    top_k = None if top_k is None else check_positive_int("top_k", top_k)
    layers = list(model.layers)
    if layers and isinstance(layers[-1], Activation) and layers[-1].name == "softmax":
        layers = layers[:-1]  # sample from the logits
    context = min(
        (layer.max_length for _, layer in walk(layers) if hasattr(layer, "max_length")),
        default=None,
    )
    cached = use_cache and all(
        hasattr(layer, "forward_step") or isinstance(layer, POSITIONWISE)
        for layer in layers
    )
    rng = np.random.default_rng(seed)
    ids = ids.astype(np.int64)
    cache = KVCache()
    for _ in range(max_new_tokens):
        window = ids if context is None else ids[:, -context:]
        if not cached:
            logits = _forward(layers, window, None)
        elif cache.position == 0 or cache.position >= window.shape[1]:
            cache = KVCache()  # the first step, or the context slid: refill
            logits = _forward(layers, window, cache)
        else:
            logits = _forward(layers, window[:, -1:], cache)
        next_ids = _sample(logits[:, -1], temperature, top_k, rng)  # (N,)
        ids = np.concatenate([ids, next_ids[:, None]], axis=1)
    return ids[0] if single else ids


def _forward(layers: list, x: np.ndarray, cache: KVCache | None) -> np.ndarray:
    """The layers on ``x`` (inference); with a cache, on new positions only."""
    for layer in layers:
        if cache is not None and hasattr(layer, "forward_step"):
            x = layer.forward_step(x, cache)
        else:
            x = layer.forward(x, training=False)
    if cache is not None:
        cache.advance(x.shape[1])
    return x


def _sample(
    logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator
) -> np.ndarray:
    """One id per row of ``logits`` ``(N, V)``."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0.0:
        return np.argmax(logits, axis=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.sort(logits, axis=-1)[:, -top_k][:, None]  # (N, 1)
        logits = np.where(logits < kth, -np.inf, logits)
    p = softmax(logits)  # (N, V)
    # Inverse CDF: the first id whose cumulative probability exceeds u.
    u = rng.random((len(p), 1))
    chosen = (np.cumsum(p, axis=-1) < u).sum(axis=-1)
    return np.minimum(chosen, p.shape[-1] - 1)
