"""The base class of optimizers: what they share, apart from the update rule."""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Iterable
from typing import Any

import numpy as np

from nnscratch.core.flat import flat_span, split
from nnscratch.core.functional import flush_subnormals
from nnscratch.core.validation import all_values_finite, check_float_in_range

OPTIMIZER_TYPES: dict[str, type[Optimizer]] = {}
"""Every Optimizer subclass by class name; ``NeuralNetwork.load`` rebuilds from it."""

FLUSH_EVERY = 8
"""Steps between two flushes of the decaying state's subnormals. The few
values that underflow in 8 steps cost little while they wait; flushing after
every step would cost ~8% of a small MLP's step (two passes per array),
every 8th step 1% (measured: 0.29 / 0.265 s an epoch, against 0.27 before
any moment underflows and 0.77 after, never flushed)."""

CLIP_EPSILON = 1e-6
"""Added to the global norm before dividing, as ``torch.nn.utils.clip_grad_norm_``."""

BOUND_SLACK = 1.0 + 2.0**-10
"""Every running bound is multiplied by this after each step. A bound's
formula holds in exact arithmetic; each array value behind it comes from a
handful of rounded operations (relative error below 8 units of float32's
last place, 5e-7) and the scalars are rounded to the array's dtype, so a
margin a thousand times larger covers all of it."""


def max_abs(arrays: Iterable[np.ndarray]) -> float:
    """The largest ``|value|`` in ``arrays``: NaN when any value is NaN.

    Two read-only reductions per array (its max and its min), no temporary
    array as ``np.abs(a).max()`` would write; 0 for no values.
    """
    extremes = [
        extreme
        for array in arrays
        if array.size
        for extreme in (float(np.max(array)), -float(np.min(array)))
    ]
    # np.max, unlike Python's max, returns NaN wherever a NaN is.
    return float(np.max(extremes)) if extremes else 0.0


def max_abs_bound(arrays: Iterable[np.ndarray]) -> float:
    """An upper bound on every ``|value|`` in ``arrays``; NaN or infinity
    when a value is not finite. From each array's sum of squares.

    One BLAS dot product per array reads it once, on every core (the two
    reductions of :func:`max_abs` take ~1.3x as long on one core). A sum of
    ``n`` non-negative terms computed in any order, with or without fused
    multiply-adds, is at least ``1 - 2 n u`` times the exact one while
    ``n u <= 1/4`` (``u`` the dtype's unit roundoff), so that ``x**2 <= sum
    / (1 - 2 n u)``; products that underflow lose less than the smallest
    normal number each. A larger array, one not contiguous, or a sum that
    overflows (finite values beyond the square root of the range) is
    measured exactly by :func:`max_abs`.
    """
    bound = 0.0
    # A dot product of finite values may overflow: settled below, no warning.
    with np.errstate(over="ignore", invalid="ignore"):
        for array in arrays:
            if array.size:
                value = _max_abs_bound(array)
                if not math.isfinite(value):
                    return value  # before Python's max, which could drop a NaN
                bound = max(bound, value)
    return bound


def _max_abs_bound(array: np.ndarray) -> float:
    info = np.finfo(array.dtype)
    roundoff = array.size * float(info.eps) / 2
    if roundoff <= 0.25 and array.flags.c_contiguous:
        flat = array.reshape(-1)  # a view
        squares = float(np.dot(flat, flat))
        if math.isfinite(squares):
            squares += array.size * float(info.tiny)
            return math.sqrt(squares / (1.0 - 2.0 * roundoff))
    return max_abs([array])


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


class Slots:
    """The arrays one step reads and writes, kept between steps.

    ``targets[i]`` moves by a step computed from ``gradients[i]`` and
    ``states[i]``: the model's flat buffers (one of each), or one entry per
    parameter. ``outs[i]`` holds the step (and work on the way). ``views``
    are the per-parameter dicts of the state (``Optimizer.state``).

    A step that must be computed aside (see :class:`Optimizer`) writes into
    a spare state and ``outs``; the spare is made the first time one is.
    """

    def __init__(
        self,
        params: list[np.ndarray],
        grads: list[np.ndarray],
        targets: list[np.ndarray],
        gradients: list[np.ndarray],
        states: list[dict[str, np.ndarray]],
        views: list[dict[str, np.ndarray]],
    ) -> None:
        self.params, self.grads = list(params), list(grads)
        self.targets, self.gradients = targets, gradients
        self.states, self.views = states, views
        self.outs = [np.empty_like(target) for target in targets]
        self.joint = flat_span([*targets, *gradients])
        """One array whose elements are those of ``targets`` and then those
        of ``gradients`` (a model's flat buffers, which lie back to back),
        or None."""
        self.next_states: list[dict[str, np.ndarray]] | None = None
        self.next_views: list[dict[str, np.ndarray]] | None = None

    def serves(self, params: list[np.ndarray], grads: list[np.ndarray]) -> bool:
        """Whether these are the arrays the slots were made for."""
        return (
            len(params) == len(self.params)
            and all(map(operator.is_, params, self.params))
            and all(map(operator.is_, grads, self.grads))
        )

    def spare_states(self) -> list[dict[str, np.ndarray]]:
        """The spare state, made on first use: written in full by a step
        computed aside, never read first."""
        if self.next_states is None:
            self.next_states = [
                {key: np.empty_like(array) for key, array in entry.items()}
                for entry in self.states
            ]
            self.next_views = (
                self.next_states
                if self.states is self.views
                else _views_of(self.next_states[0], [p.shape for p in self.params])
            )
        return self.next_states

    def swap(self) -> None:
        """The spare state becomes the state; the old one is the next spare."""
        self.states, self.next_states = self.next_states, self.states
        self.views, self.next_views = self.next_views, self.views


def _views_of(
    flat_state: dict[str, np.ndarray], shapes: list[tuple[int, ...]]
) -> list[dict[str, np.ndarray]]:
    """Per-parameter dicts of views into flat state arrays."""
    views = {key: split(array, shapes) for key, array in flat_state.items()}
    return [{key: views[key][i] for key in flat_state} for i in range(len(shapes))]


class Optimizer:
    """Updates arrays in place from their gradients.

    An optimizer sees only a list of parameter arrays and a matching list of
    gradients, so any layer that follows the protocol trains. Per-parameter
    state (momentum, moment estimates) is kept in the same order and created
    on the first :meth:`step`.

    A rule (:meth:`update`) reads the parameters, gradients and state and
    writes the next state and the step ``param - new value``.

    **Refusing a step exactly, at the cost of an in-place one.** Training
    asks :meth:`step` to refuse a step that would make a weight NaN or
    infinite (``refuse_non_finite``) and to leave everything as it was. A
    refusal must then be decided before the state is overwritten. Two
    reductions settle it (:func:`max_abs_bound`): bounds ``G`` on every
    ``|g|`` (NaN or infinity: refused at once, nothing touched) and ``P`` on
    every ``|param|``. A model's flat buffers lie back to back, so one
    reduction over both gives a single bound for ``G`` and ``P``, tried
    first; only where it proves nothing are the two measured apart. From
    ``G``, the rule's :meth:`bound_step` advances running bounds of its
    state (Adam's ``gradient_sum`` and ``square_sum``) and bounds the change
    of any weight, ``D``. When every bound and
    ``P + D`` stay below a quarter of the dtype's largest value, no operation of
    the step can overflow: the new weights are finite, so the step is taken
    with the state and the parameters updated in place, as a hand-written
    loop does. Otherwise (bounds lost to a huge learning rate, weights near
    overflow) the state is measured again, and if the bounds still fail the
    rule writes the next state and the new values into spare arrays kept
    between steps; a non-finite one is refused without any copy, a finite
    one copied into the parameters while the two state buffers swap. Both
    paths compute the same values, bit for bit.

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

    decaying_state: tuple[str, ...] = ()
    """The names of state arrays that decay geometrically where the gradient
    is 0 (moments, momentum). Every ``FLUSH_EVERY`` steps their subnormal
    values are rounded to 0 (:func:`~nnscratch.core.functional.flush_subnormals`):
    stuck there, they would slow every later step many times over on Intel
    CPUs, and they are far too small to change any update."""

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
        self._slots: Slots | None = None
        self._bounds: dict[str, float] | None = None
        """Running upper bounds of ``max |array|`` for each state array (see
        :meth:`bound_step`); None until measured."""

    def step(
        self,
        params: list[np.ndarray],
        grads: list[np.ndarray],
        refuse_non_finite: bool = False,
    ) -> bool:
        """Apply one update to every array of ``params`` in place.

        Parameters
        ----------
        params : list of ndarray
            The arrays to update; the same arrays, in the same order, each step.
        grads : list of ndarray
            ``dL/dparam`` for each array of ``params``, of the same shape.
            They are read, never written (also with ``clipnorm``).
        refuse_non_finite : bool, default False
            Refuse a step that would make any parameter NaN or infinite (a
            non-finite gradient, or an update that overflows): then nothing
            changes, neither parameters nor state nor step count.

        Returns
        -------
        bool
            Whether the step was taken.
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
        state_before = self.state
        slots = self._slots_for(params, grads)
        gradients = slots.gradients
        if self.clipnorm is not None:
            gradients = self._clipped(gradients)
        self.iterations += 1
        if not refuse_non_finite:
            self._bounds = None  # not followed here: measured when next needed
            self._update_in_place(slots, gradients)
            return True
        if gradients is slots.gradients and slots.joint is not None:
            # Parameters and gradients back to back: one reduction bounds
            # every |param| and every |g| at once. Where that looser bound
            # proves nothing, the two are measured apart below.
            bound = max_abs_bound([slots.joint])
            if math.isfinite(bound) and self._proven_finite(slots, bound, bound):
                self._update_in_place(slots, gradients)
                return True
            self._bounds = None  # advanced from the looser bound: measure again
        gradient_bound = max_abs_bound(gradients)
        if math.isfinite(gradient_bound):
            param_bound = max_abs_bound(slots.targets)
            if self._proven_finite(slots, gradient_bound, param_bound):
                self._update_in_place(slots, gradients)
                return True
            if self._update_aside(slots, gradients):
                return True
        self._bounds = None
        self.iterations -= 1
        if state_before is None:  # a refused first step leaves no state
            self.state, self._slots = None, None
        return False

    def _proven_finite(
        self, slots: Slots, gradient_bound: float, param_bound: float
    ) -> bool:
        """Whether bounds prove this step's new values finite (see the class
        docstring), every ``|g|`` being at most ``gradient_bound`` and every
        ``|param|`` at most ``param_bound``.

        The running bounds advance; when they fail, the state is measured
        again and they are tried once more. Advanced, they bound the state
        after this step, not before it: a caller that then takes no step in
        place drops them (``_bounds = None``, measured when next needed).
        """
        limit = float(np.finfo(slots.targets[0].dtype).max) / 4
        measured = self._bounds is None
        if measured:
            self._bounds = self.measure_bounds(slots.states)
        while True:
            bounds, change = self.bound_step(self._bounds, gradient_bound)
            if change is None:
                return False
            self._bounds = {name: b * BOUND_SLACK for name, b in bounds.items()}
            new_value_bound = self.new_value_bound(param_bound, change) * BOUND_SLACK
            if max([new_value_bound, *self._bounds.values()]) < limit:
                return True
            if measured:
                return False
            self._bounds, measured = self.measure_bounds(slots.states), True

    def _update_in_place(self, slots: Slots, gradients: list[np.ndarray]) -> None:
        """The step, every state array and parameter overwritten."""
        for target, gradient, state, work in zip(
            slots.targets, gradients, slots.states, slots.outs, strict=True
        ):
            self.update(target, gradient, state, state, work)
            self.apply_step(target, work, into=target)
        self._flush_if_due(slots.states)

    def _update_aside(self, slots: Slots, gradients: list[np.ndarray]) -> bool:
        """The step into spare arrays, kept only if every new value is finite."""
        next_states = slots.spare_states()
        # An overflow here is what the check below looks for, not an error.
        with np.errstate(over="ignore", invalid="ignore"):
            for target, gradient, state, next_state, out in zip(
                slots.targets,
                gradients,
                slots.states,
                next_states,
                slots.outs,
                strict=True,
            ):
                self.update(target, gradient, state, next_state, out)
                self.apply_step(target, out, into=out)
        if not all(map(all_values_finite, slots.outs)):
            return False
        self._flush_if_due(next_states)
        for target, out in zip(slots.targets, slots.outs, strict=True):
            np.copyto(target, out)
        slots.swap()
        self.state = slots.views
        self._bounds = None  # measured again at the next step that needs them
        return True

    def _flush_if_due(self, states: list[dict[str, np.ndarray]]) -> None:
        if self.iterations % FLUSH_EVERY == 0:
            for state in states:
                for name, array in state.items():
                    if name in self.decaying_state:
                        flush_subnormals(array)

    def _slots_for(self, params: list[np.ndarray], grads: list[np.ndarray]) -> Slots:
        """The kept :class:`Slots` for these arrays, made on first use.

        When ``params`` and ``grads`` tile flat buffers (a model's) and the
        rule is elementwise, one slot covers them all and the per-parameter
        state is views into flat state arrays at the same offsets.
        """
        slots = self._slots
        if (
            slots is not None
            and slots.views is self.state
            and slots.serves(params, grads)
        ):
            return slots
        shapes = [param.shape for param in params]
        flat_param, flat_grad = flat_span(params), flat_span(grads)
        fused = (
            self.elementwise
            and flat_param is not None
            and flat_grad is not None
            and flat_param.dtype == flat_grad.dtype
        )
        if self.state is None:
            if fused:
                flat_state = self.initial_state(flat_param)
                self.state = _views_of(flat_state, shapes)
            else:
                self.state = [self.initial_state(p) for p in params]
            self._shapes = shapes
        elif fused:
            flat_state = self._adopt_state(flat_param, shapes)
            fused = flat_state is not None
        if fused:
            slots = Slots(
                params, grads, [flat_param], [flat_grad], [flat_state], self.state
            )
        else:
            slots = Slots(
                params, grads, list(params), list(grads), self.state, self.state
            )
        self._slots, self._bounds = slots, None
        return slots

    def _adopt_state(
        self, flat_param: np.ndarray, shapes: list[tuple[int, ...]]
    ) -> dict[str, np.ndarray] | None:
        """Flat arrays holding ``self.state``: the buffers its entries
        already tile, or new ones they are copied into (a resumed run)."""
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

    def _clipped(self, gradients: list[np.ndarray]) -> list[np.ndarray]:
        """``gradients`` scaled as :func:`clip_by_global_norm` would; a flat
        buffer into a kept work array (the caller's gradients are not written)."""
        if len(gradients) != 1:
            return clip_by_global_norm(gradients, self.clipnorm)[0]
        (flat_grad,) = gradients
        square = self._work(("clip64", flat_grad.shape), flat_grad, np.float64)
        # Accumulate in float64 so a float32 network's norm does not lose digits.
        np.square(flat_grad, out=square, dtype=np.float64)
        norm = float(np.sqrt(square.sum()))
        scale = self.clipnorm / (norm + CLIP_EPSILON)
        if scale >= 1.0:
            return gradients
        clipped = self._work(("clip", flat_grad.shape), flat_grad, flat_grad.dtype)
        # The scale is cast to the array's dtype, so float32 stays float32.
        np.multiply(flat_grad, np.asarray(scale, dtype=flat_grad.dtype), out=clipped)
        return [clipped]

    def load_state(
        self, params: list[np.ndarray], state: list[dict[str, np.ndarray]]
    ) -> None:
        """Take per-parameter state for ``params`` (as a resumed run restores
        it), one dict per parameter in step order, before the next step."""
        self.state = state
        self._shapes = [param.shape for param in params]
        self._slots, self._bounds = None, None

    def free_work_arrays(self) -> None:
        """Drop the arrays kept between steps (the spare state, the new
        values, scratch); the next step makes them again. Training calls
        this when it ends, so that a trained model holds only its state."""
        self._slots = None
        self._scratch = {}

    def initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        """The per-parameter state before the first step; none by default."""
        return {}

    def update(
        self,
        param: np.ndarray,
        grad: np.ndarray,
        state: dict[str, np.ndarray],
        next_state: dict[str, np.ndarray],
        out: np.ndarray,
    ) -> None:
        """One step of the rule: every array of ``next_state`` (the state
        after this step), and the step ``param - new value`` into ``out``.

        ``param`` and ``grad`` are read, never written; ``out`` may serve as
        work space on the way. ``next_state`` is either spare arrays or
        ``state`` itself (a step in place), so a rule reads each state array
        before it writes that array's next value. ``self.iterations`` is the
        step number ``t``.
        """
        raise NotImplementedError

    def apply_step(self, param: np.ndarray, step: np.ndarray, into: np.ndarray) -> None:
        """``into <- param - step``: the new value, into ``param`` itself or
        into the array holding ``step``."""
        np.subtract(param, step, out=into)

    def measure_bounds(self, states: list[dict[str, np.ndarray]]) -> dict[str, float]:
        """``max |array|`` of each state array, by name, over all slots: where
        the running bounds of :meth:`bound_step` start."""
        names = states[0].keys() if states else ()
        return {name: max_abs(state[name] for state in states) for name in names}

    def bound_step(
        self, bounds: dict[str, float], gradient_bound: float
    ) -> tuple[dict[str, float], float | None]:
        """The bounds after this step, from ``bounds`` and ``|g| <= gradient_bound``.

        Returns the state's bounds after the step (by name, as
        :meth:`measure_bounds`) and a bound on every ``|step|`` (what
        :meth:`update` writes into ``out``), in exact arithmetic; the caller
        adds the margin for rounding. None for the step: no bound known, the
        step is then computed aside and checked. ``self.iterations`` is
        already this step's ``t``.
        """
        return bounds, None

    def new_value_bound(self, param_bound: float, step_bound: float) -> float:
        """A bound on every new value from ``|param| <= param_bound`` and
        ``|step| <= step_bound``, as :meth:`apply_step` combines them."""
        return param_bound + step_bound

    def _work(self, key: tuple, like: np.ndarray, dtype: Any) -> np.ndarray:
        """A work array kept under ``key`` (made on first use; contents
        undefined), so that updates allocate nothing."""
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
