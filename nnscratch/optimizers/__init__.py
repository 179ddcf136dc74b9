"""Optimizers: how parameters move given their gradients."""

from nnscratch.optimizers.adam import Adam
from nnscratch.optimizers.optimizer import Optimizer
from nnscratch.optimizers.sgd import SGD

__all__ = ["SGD", "Adam", "Optimizer"]
