"""The base class of optimizers: what they share, apart from the update rule."""

from __future__ import annotations

import inspect
import operator
from typing import Any

import numpy as np

from nnscratch.core.flat import flat_span, split
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

    elementwise = True
    """Whether :meth:`update` treats every element on its own (all the
    built-in rules do). Then, when the parameters are views into one flat
    buffer (a model's), one :meth:`update` call runs over that buffer: one
    pass per operation for all parameters, as PyTorch's fused optimizers.
    A subclass whose update needs each array's shape sets False."""

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
        self._fused: tuple | None = None

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
        fused = self._fused_arrays(params, grads) if self.elementwise else None
        if fused is not None:
            flat_param, flat_grad, flat_state = fused
            if self.clipnorm is not None:
                flat_grad = self._clip_flat(flat_grad)
            self.iterations += 1
            self.update(flat_param, flat_grad, flat_state)
            return
        if self.clipnorm is not None:
            grads, _ = clip_by_global_norm(grads, self.clipnorm)
        if self.state is None:
            self.state = [self.initial_state(p) for p in params]
            self._shapes = shapes
        self.iterations += 1
        for param, grad, state in zip(params, grads, self.state, strict=True):
            self.update(param, grad, state)

    def _fused_arrays(
        self, params: list[np.ndarray], grads: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None:
        """``(flat params, flat grads, flat state)`` when ``params`` and
        ``grads`` tile flat buffers, else None.

        The per-parameter state (``self.state``, saved per parameter) is
        then made of views into flat state arrays at the same offsets.
        Found once and kept while the same arrays come back (an identity
        test per array).
        """
        cached = self._fused
        if (
            cached is not None
            and cached[0] is self.state
            and len(cached[1]) == len(params)
            and all(map(operator.is_, params, cached[1]))
            and all(map(operator.is_, grads, cached[2]))
        ):
            return cached[3]
        self._fused = None
        flat_param, flat_grad = flat_span(params), flat_span(grads)
        if flat_param is None or flat_grad is None:
            return None
        if flat_param.dtype != flat_grad.dtype:
            return None
        shapes = [param.shape for param in params]
        if self.state is None:
            flat_state = self.initial_state(flat_param)
            views = {key: split(a, shapes) for key, a in flat_state.items()}
            self.state = [
                {key: views[key][i] for key in flat_state} for i in range(len(params))
            ]
            self._shapes = shapes
        else:
            flat_state = self._adopt_state(flat_param, shapes)
            if flat_state is None:
                return None
        arrays = (flat_param, flat_grad, flat_state)
        self._fused = (self.state, list(params), list(grads), arrays)
        return arrays

    def fused_state(self) -> dict[str, np.ndarray] | None:
        """The flat arrays the state is views into, as of the last step
        (None when the last step was not fused or the state changed since)."""
        cached = self._fused
        if cached is None or cached[0] is not self.state:
            return None
        return cached[3][2]

    def _adopt_state(
        self, flat_param: np.ndarray, shapes: list[tuple[int, ...]]
    ) -> dict[str, np.ndarray] | None:
        """Flat arrays holding ``self.state``: the buffers its entries
        already tile (a resumed run), or new ones they are copied into."""
        state = self.state
        keys = sorted(state[0]) if state else []
        if any(sorted(entry) != keys for entry in state):
            return None
        flat_state = {}
        for key in keys:
            arrays = [entry[key] for entry in state]
            flat = flat_span(arrays)
            if flat is None or flat.dtype != flat_param.dtype:
                flat = np.empty_like(flat_param)
                for entry, view in zip(state, split(flat, shapes), strict=True):
                    view[...] = entry[key]
                    entry[key] = view
            flat_state[key] = flat
        return flat_state

    def _clip_flat(self, flat_grad: np.ndarray) -> np.ndarray:
        """``flat_grad`` scaled as :func:`clip_by_global_norm` would, into a
        kept work array (the caller's gradients are not written)."""
        square = self._work(("clip64", flat_grad.shape), flat_grad, np.float64)
        # Accumulate in float64 so a float32 network's norm does not lose digits.
        np.square(flat_grad, out=square, dtype=np.float64)
        norm = float(np.sqrt(square.sum()))
        scale = self.clipnorm / (norm + CLIP_EPSILON)
        if scale >= 1.0:
            return flat_grad
        clipped = self._work(("clip", flat_grad.shape), flat_grad, flat_grad.dtype)
        # The scale is cast to the array's dtype, so float32 stays float32.
        np.multiply(flat_grad, np.asarray(scale, dtype=flat_grad.dtype), out=clipped)
        return clipped

    def load_state(
        self, params: list[np.ndarray], state: list[dict[str, np.ndarray]]
    ) -> None:
        """Take per-parameter state for ``params`` (as a resumed run restores
        it), one dict per parameter in step order, before the next step."""
        self.state = state
        self._shapes = [param.shape for param in params]
        self._fused = None

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

    def _work(self, key: tuple, like: np.ndarray, dtype: Any) -> np.ndarray:
        """A work array kept under ``key`` (made on first use)."""
        if key not in self._scratch:
            self._scratch[key] = np.empty(like.shape, dtype=dtype)
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


def optimizer_from_config(entry: dict[str, Any]) -> Optimizer:
    """The optimizer ``{'type': class name, 'config': get_config()}`` describes."""
    optimizer_type = OPTIMIZER_TYPES.get(entry["type"])
    if optimizer_type is None:
        raise ValueError(
            f"unknown optimizer type {entry['type']!r}; known: "
            f"{sorted(OPTIMIZER_TYPES)}"
        )
    try:
        return optimizer_type(**entry["config"])
    except TypeError as error:
        raise ValueError(f"bad arguments for {entry['type']}: {error}") from None
