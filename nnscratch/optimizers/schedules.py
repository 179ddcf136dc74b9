"""Learning-rate schedules: the rate of each epoch as a closed-form formula.

A schedule is called as ``schedule(epoch, initial_learning_rate)`` and returns
the learning rate for ``epoch`` (counted from 0), given the rate training
started with (torch's ``base_lr``). Being a formula of the epoch alone, it
never drifts and gives the same rate when a run is resumed. Use one in
training through ``nnscratch.engine.callbacks.LearningRateScheduler``; any
function of ``(epoch, initial_learning_rate)`` works there too.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from nnscratch.core.validation import check_float_in_range, check_positive_int

SCHEDULE_TYPES: dict[str, type[Schedule]] = {}
"""Every Schedule subclass by class name, to rebuild one from its config."""


class Schedule:
    """Base class: subclasses implement :meth:`rate` and :meth:`get_config`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        SCHEDULE_TYPES[cls.__name__] = cls

    def __call__(self, epoch: int, initial_learning_rate: float) -> float:
        """The learning rate for ``epoch`` (from 0) of a run started at the other."""
        if (
            isinstance(epoch, bool)
            or not isinstance(epoch, numbers.Integral)
            or epoch < 0
        ):
            raise ValueError(f"epoch: expected an integer >= 0. Received: {epoch!r}")
        initial_learning_rate = check_float_in_range(
            "initial_learning_rate", initial_learning_rate, 0.0, math.inf
        )
        return float(self.rate(int(epoch), initial_learning_rate))

    def rate(self, epoch: int, initial_learning_rate: float) -> float:
        """The formula, for arguments already checked."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this schedule."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"


class StepDecay(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs.

    The rates of ``torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma)``
    stepped once per epoch.

    Parameters
    ----------
    step_size : int >= 1
        Epochs between two decays.
    gamma : float in (0, 1], default 0.1
        The factor applied at each decay.

    Notes
    -----
    ``lr(epoch) = initial_learning_rate * gamma ** (epoch // step_size)``

    Examples
    --------
    >>> schedule = StepDecay(step_size=2, gamma=0.5)
    >>> [schedule(epoch, 1.0) for epoch in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_positive_int("step_size", step_size)
        self.gamma = check_float_in_range("gamma", gamma, 0.0, 1.0, low_inclusive=False)

    def rate(self, epoch: int, initial_learning_rate: float) -> float:
        return initial_learning_rate * self.gamma ** (epoch // self.step_size)

    def get_config(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}


class ExponentialDecay(Schedule):
    """Multiply the rate by ``gamma`` every epoch.

    The rates of ``torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)``
    stepped once per epoch.

    Parameters
    ----------
    gamma : float in (0, 1]
        The factor applied each epoch.

    Notes
    -----
    ``lr(epoch) = initial_learning_rate * gamma ** epoch``

    Examples
    --------
    >>> schedule = ExponentialDecay(gamma=0.5)
    >>> [schedule(epoch, 1.0) for epoch in range(4)]
    [1.0, 0.5, 0.25, 0.125]
    """

    def __init__(self, gamma: float) -> None:
        self.gamma = check_float_in_range("gamma", gamma, 0.0, 1.0, low_inclusive=False)

    def rate(self, epoch: int, initial_learning_rate: float) -> float:
        return initial_learning_rate * self.gamma**epoch

    def get_config(self) -> dict[str, Any]:
        return {"gamma": self.gamma}


class CosineAnnealing(Schedule):
    """Follow half a cosine from the initial rate down to ``eta_min``.

    The closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR(optimizer,
    T_max, eta_min)`` stepped once per epoch (torch's recursive update gives
    the same rates up to rounding). Past ``T_max`` the cosine goes on, rising
    back to the initial rate at ``2 * T_max``, as in torch.

    Parameters
    ----------
    T_max : int >= 1
        Epochs from the initial rate down to ``eta_min``.
    eta_min : float >= 0, default 0.0
        The lowest rate, reached at epoch ``T_max``.

    Notes
    -----
    ``lr(epoch) = eta_min + (initial_learning_rate - eta_min)
    * (1 + cos(pi * epoch / T_max)) / 2``

    Examples
    --------
    >>> schedule = CosineAnnealing(T_max=4, eta_min=0.0)
    >>> [round(schedule(epoch, 1.0), 6) for epoch in range(5)]
    [1.0, 0.853553, 0.5, 0.146447, 0.0]
    """

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = check_positive_int("T_max", T_max)
        self.eta_min = check_float_in_range("eta_min", eta_min, 0.0, math.inf)

    def rate(self, epoch: int, initial_learning_rate: float) -> float:
        cosine = (1.0 + math.cos(math.pi * epoch / self.T_max)) / 2.0
        return self.eta_min + (initial_learning_rate - self.eta_min) * cosine

    def get_config(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}
