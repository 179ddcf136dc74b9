"""Weight initialisation schemes, looked up by name.

Each draws from a zero-mean normal distribution whose standard deviation keeps
the variance of activations roughly constant from layer to layer:

- ``'he'``: ``std = sqrt(2 / fan_in)``, for ReLU networks (He et al., 2015).
- ``'xavier'``: ``std = sqrt(2 / (fan_in + fan_out))``, for tanh/sigmoid
  networks (Glorot and Bengio, 2010).
- ``'random_normal'``: ``std = 0.01``, the classic small-random start.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnscratch.core.validation import lookup


def he_std(fan_in: int, fan_out: int) -> float:
    """He normal: ``sqrt(2 / fan_in)``."""
    return float(np.sqrt(2.0 / fan_in))


def xavier_std(fan_in: int, fan_out: int) -> float:
    """Xavier (Glorot) normal: ``sqrt(2 / (fan_in + fan_out))``."""
    return float(np.sqrt(2.0 / (fan_in + fan_out)))


def random_normal_std(fan_in: int, fan_out: int) -> float:
    """A fixed small standard deviation, 0.01."""
    return 0.01


INITIALIZERS: dict[str, Callable[[int, int], float]] = {
    "he": he_std,
    "xavier": xavier_std,
    "random_normal": random_normal_std,
}


def initial_weights(
    name: str,
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: np.dtype,
) -> np.ndarray:
    """Draw an array of ``shape`` with the named scheme's standard deviation.

    Examples
    --------
    >>> w = initial_weights("he", (2000, 50), 2000, 50, np.random.default_rng(0),
    ...                     np.dtype("float64"))
    >>> round(float(w.std() * np.sqrt(2000 / 2)), 1)
    1.0
    """
    std = lookup("initialization", name, INITIALIZERS)(fan_in, fan_out)
    return (rng.standard_normal(shape) * std).astype(dtype, copy=False)
