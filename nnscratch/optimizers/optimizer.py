"""The base class of optimizers: what they share, apart from the update rule."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from nnscratch.core.validation import check_float_in_range

OPTIMIZER_TYPES: dict[str, type[Optimizer]] = {}
"""Every Optimizer subclass by class name; ``NeuralNetwork.load`` rebuilds from it."""

CLIP_EPSILON = 1e-6
"""Added to the global norm before dividing, as ``torch.nn.utils.clip_grad_norm_``."""


def clip_by_global_norm(
    grads: list[np.ndarray], max_norm: float
) -> tuple[list[np.ndarray], float]:
    """Scale ``grads`` together so that their joint L2 norm is at most ``max_norm``.

    The same rule as ``torch.nn.utils.clip_grad_norm_(params, max_norm)``:

    - ``norm = sqrt(sum over every array g of sum(g**2))``
    - ``g <- g * (max_norm / (norm + 1e-6))``, only when that factor is below 1

    Parameters
    ----------
    grads : list of ndarray
        The gradients; they are never modified.
    max_norm : float
        The largest joint norm allowed.

    Returns
    -------
    clipped : list of ndarray
        New, scaled arrays (each in its own dtype) when clipping applies,
        otherwise the very arrays of ``grads``.
    norm : float
        The joint norm before clipping.

    Examples
    --------
    >>> import numpy as np
    >>> g = [np.array([3.0]), np.array([4.0])]   # joint norm 5
    >>> clipped, norm = clip_by_global_norm(g, 1.0)
    >>> norm, [c.round(6) for c in clipped]
    (5.0, [array([0.6]), array([0.8])])
    >>> clip_by_global_norm(g, 10.0)[0][0] is g[0]   # below the limit: untouched
    True
    """
    # Accumulate in float64 so a float32 network's norm does not lose digits.
    norm = float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads)))
    scale = max_norm / (norm + CLIP_EPSILON)
    if scale >= 1.0:
        return list(grads), norm
    # The scale is cast to each array's dtype, so float32 gradients stay float32.
    return [g * np.asarray(scale, dtype=g.dtype) for g in grads], norm


class Optimizer:
    """Updates arrays in place from their gradients.

    An optimizer sees only a list of parameter arrays and a matching list of
    gradients, so any layer that follows the protocol trains. Per-parameter
    state (momentum, moment estimates) is kept in the same order and created
    on the first :meth:`step`.

    Parameters
    ----------
    learning_rate : float
        Step size; it may be changed between steps (e.g. by a schedule).
    clipnorm : float, optional
        If given, every step first scales all gradients together so that
        their joint L2 norm is at most ``clipnorm`` (see
        :func:`clip_by_global_norm`), as ``torch.nn.utils.clip_grad_norm_``
        before ``optimizer.step()``. The caller's gradient arrays are not
        modified: the update uses scaled copies.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        OPTIMIZER_TYPES[cls.__name__] = cls

    def __init__(self, learning_rate: float, clipnorm: float | None = None) -> None:
        self.learning_rate = check_float_in_range(
            "learning_rate", learning_rate, 0.0, np.inf
        )
        self.clipnorm = (
            None
            if clipnorm is None
            else check_float_in_range(
                "clipnorm", clipnorm, 0.0, np.inf, low_inclusive=False
            )
        )
        self.iterations = 0
        self.state: list[dict[str, np.ndarray]] | None = None
        self._shapes: list[tuple[int, ...]] = []
        self._scratch: dict[tuple, np.ndarray] = {}

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Apply one update to every array of ``params`` in place.

        Parameters
        ----------
        params : list of ndarray
            The arrays to update; the same arrays, in the same order, each step.
        grads : list of ndarray
            ``dL/dparam`` for each array of ``params``, of the same shape.
            They are read, never written (also with ``clipnorm``).
        """
        shapes = [p.shape for p in params]
        if [g.shape for g in grads] != shapes:
            raise ValueError(
                f"{type(self).__name__}.step: expected gradients of shapes {shapes}. "
                f"Received {[g.shape for g in grads]}"
            )
        if self.state is not None and shapes != self._shapes:
            raise ValueError(
                f"{type(self).__name__}.step: expected parameters of shapes "
                f"{self._shapes}, as in earlier steps. Received {shapes}; use a new "
                "optimizer for a different network"
            )
        if self.clipnorm is not None:
            grads, _ = clip_by_global_norm(grads, self.clipnorm)
        if self.state is None:
            self.state = [self.initial_state(p) for p in params]
            self._shapes = shapes
        self.iterations += 1
        for param, grad, state in zip(params, grads, self.state, strict=True):
            self.update(param, grad, state)

    def load_state(
        self, params: list[np.ndarray], state: list[dict[str, np.ndarray]]
    ) -> None:
        """Take per-parameter state for ``params`` (as a resumed run restores
        it), one dict per parameter in step order, before the next step."""
        self.state = state
        self._shapes = [param.shape for param in params]

    def initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        """The per-parameter state before the first step; none by default."""
        return {}

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        """Update one array in place; ``self.iterations`` is the step number t."""
        raise NotImplementedError

    def scratch(self, like: np.ndarray) -> np.ndarray:
        """A reusable work array of ``like``'s shape and dtype (contents undefined).

        Parameters are updated one after another, so one array per shape is
        enough; it is kept between steps, so updates allocate nothing.
        """
        key = (like.shape, like.dtype)
        if key not in self._scratch:
            self._scratch[key] = np.empty_like(like)
        return self._scratch[key]

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this optimizer.

        Subclasses extend it: ``{**super().get_config(), 'momentum': ...}``.
        """
        return {"learning_rate": self.learning_rate, "clipnorm": self.clipnorm}

    def __repr__(self) -> str:
        # Only the arguments that differ from their defaults, as scikit-learn does.
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(type(self)).parameters.items()
        }
        args = ", ".join(
            f"{key}={value!r}"
            for key, value in self.get_config().items()
            if key not in defaults or defaults[key] != value
        )
        return f"{type(self).__name__}({args})"
