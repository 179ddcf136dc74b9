"""BatchNorm: normalise each feature (or channel) over the batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.shard import batch_moments, batch_sums
from nnscratch.core.validation import check_float_in_range, check_positive_int


def _layout(ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The axes statistics run over, and the shape a ``(C,)`` vector takes to
    broadcast against the input."""
    if ndim == 2:
        return (0,), (1, -1)  # (N, F): over the batch; (F,) -> (1, F)
    return (0, 2, 3), (1, -1, 1, 1)  # (N, C, H, W): over N, H, W; -> (1, C, 1, 1)


class BatchNorm(Layer):
    r"""Batch normalisation, as ``torch.nn.BatchNorm1d`` / ``BatchNorm2d``.

    Parameters
    ----------
    num_features : int
        ``F`` for input ``(N, F)``, or the channel count ``C`` for ``(N, C, H, W)``.
    momentum : float in [0, 1], default 0.1
        Weight of the newest batch in the running statistics.
    epsilon : float > 0, default 1e-5
        Added to the variance before the square root.

    Notes
    -----
    Per feature / channel, over its ``m = N`` (or ``N*H*W``) values; ``g = dL/dy``:

    - training:  ``mu = mean(x)``, ``var = mean((x - mu)**2)`` (biased),
      ``std = sqrt(var + epsilon)``, ``xhat = (x - mu) / std``,
      ``y = gamma * xhat + beta``
    - running:   ``running_mean = (1 - momentum) * running_mean + momentum * mu``,
      ``running_var = (1 - momentum) * running_var + momentum * var * m/(m-1)``
      (the unbiased variance, as torch)
    - inference: the same ``y`` with ``mu, var = running_mean, running_var``
    - backward:  ``dgamma = sum(g * xhat)``, ``dbeta = sum(g)``; in training
      ``dx = (1/m) * gamma/std * (m*g - dbeta - xhat * dgamma)`` (the batch
      statistics depend on ``x``); in inference ``dx = g * gamma/std``

    ``gamma`` and ``beta`` are ``params``; ``running_mean`` and
    ``running_var`` are ``buffers``: saved with the model, never trained.

    Examples
    --------
    >>> import numpy as np
    >>> layer = BatchNorm(1)
    >>> layer.forward(np.array([[1.0], [3.0]]), training=True).round(4)
    array([[-1.],
           [ 1.]])
    >>> layer.buffers["running_mean"], layer.buffers["running_var"]
    (array([0.2], dtype=float32), array([1.1], dtype=float32))
    >>> layer.backward(np.array([[1.0], [1.0]]))  # a shift changes nothing
    array([[0.],
           [0.]])
    """

    # Batch statistics of a single sample are meaningless (its variance is 0):
    # NeuralNetwork.train refuses a split whose last batch would be that small.
    min_batch_size = 2
    buffer_names = ("running_mean", "running_var")

    def __init__(
        self, num_features: int, momentum: float = 0.1, epsilon: float = 1e-5
    ) -> None:
        super().__init__()
        self.num_features = check_positive_int("num_features", num_features)
        self.momentum = check_float_in_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = check_float_in_range(
            "epsilon", epsilon, 0.0, np.inf, low_inclusive=False
        )
        self._xhat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._training = False

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        shape = (self.num_features,)
        return dict.fromkeys(("gamma", "beta", "running_mean", "running_var"), shape)

    def create_state(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """``gamma`` and ``running_var`` start at 1, ``beta`` and the mean at 0."""
        ones, zeros = (
            np.ones(self.num_features, dtype),
            np.zeros(self.num_features, dtype),
        )
        self.params = {"gamma": ones, "beta": zeros}
        self.buffers = {"running_mean": zeros.copy(), "running_var": ones.copy()}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Normalise with batch statistics (training) or running ones.

        Parameters
        ----------
        x : ndarray of shape (N, num_features) or (N, num_features, H, W)
        training : bool
            True: use and record this batch's statistics; False: use the
            running statistics.

        Returns
        -------
        ndarray of the same shape as ``x``
        """
        self._check_input(x, training)
        axes, vector_shape = _layout(x.ndim)
        if training:
            # (N, C, H, W) -> (C,), over every process's share of the batch;
            # biased: divides by m, as torch normalises.
            mean, var, m = batch_moments(x, axes, self.batch_shard)
            self._update_running_stats(mean, var, m)
        else:
            mean = self.buffers["running_mean"]
            var = self.buffers["running_var"]
        self._training = bool(training)
        self._inv_std = 1.0 / np.sqrt(var + self.epsilon)  # (C,)
        # (C,) -> (1, C) or (1, C, 1, 1), broadcast over the batch (and pixels).
        centred = x - mean.reshape(vector_shape)
        self._xhat = centred * self._inv_std.reshape(vector_shape)
        gamma = self.params["gamma"].reshape(vector_shape)
        return gamma * self._xhat + self.params["beta"].reshape(vector_shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Fill ``grads['gamma']``, ``grads['beta']`` and return ``dL/dx``.

        Parameters
        ----------
        grad : ndarray of the shape of ``x``
            dLoss/dOutput.

        Returns
        -------
        ndarray of the shape of ``x``
            dLoss/dInput.
        """
        xhat = self._cached("_xhat")
        axes, vector_shape = _layout(xhat.ndim)
        # (N, C, H, W) -> (C,): each sum runs over the m values of a channel.
        dbeta = np.sum(grad, axis=axes, out=self.grads["beta"])
        dgamma = np.sum(grad * xhat, axis=axes, out=self.grads["gamma"])
        scale = (self.params["gamma"] * self._inv_std).reshape(vector_shape)
        if not self._training:
            return grad * scale
        # The sums over the global batch (data-parallel training: all shares).
        (dbeta, dgamma), m = batch_sums(
            [dbeta, dgamma], grad.size // self.num_features, self.batch_shard
        )
        # (C,) -> (1, C[, 1, 1]) for both sums, broadcast back over the m values.
        centred = m * grad - dbeta.reshape(vector_shape)
        return scale / m * (centred - xhat * dgamma.reshape(vector_shape))

    def _check_input(self, x: np.ndarray, training: bool) -> None:
        """Raise ``ValueError`` for a wrong shape, or one value per channel."""
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm: expected input of shape (N, {self.num_features}) or "
                f"(N, {self.num_features}, H, W). Received shape {x.shape}"
            )
        shard = self.batch_shard
        total = x.shape[0] if shard is None else shard.total
        if training and x.size // max(x.shape[0], 1) * total <= self.num_features:
            raise ValueError(
                "BatchNorm: expected more than 1 value per channel when training "
                f"(as torch). Received shape {x.shape}; use a batch of 2 or more, "
                "or training=False"
            )

    def _update_running_stats(self, mean: np.ndarray, var: np.ndarray, m: int) -> None:
        """Move the buffers toward this batch, in place (keeps their dtype)."""
        unbiased_var = var * (m / (m - 1))
        for name, batch_value in (
            ("running_mean", mean),
            ("running_var", unbiased_var),
        ):
            running = self.buffers[name]
            running *= 1.0 - self.momentum
            running += self.momentum * batch_value

    def get_config(self) -> dict[str, Any]:
        return {
            "num_features": self.num_features,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }
