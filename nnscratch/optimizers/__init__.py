"""Optimizers: how parameters move given their gradients."""

from nnscratch.optimizers.adagrad import Adagrad
from nnscratch.optimizers.adam import Adam
from nnscratch.optimizers.adamw import AdamW
from nnscratch.optimizers.optimizer import Optimizer, clip_by_global_norm
from nnscratch.optimizers.rmsprop import RMSprop
from nnscratch.optimizers.schedules import (
    CosineAnnealing,
    ExponentialDecay,
    Schedule,
    StepDecay,
)
from nnscratch.optimizers.sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealing",
    "ExponentialDecay",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "StepDecay",
    "clip_by_global_norm",
]
