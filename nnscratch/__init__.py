"""nnscratch: a deep-learning framework written from scratch in NumPy.

Examples
--------
>>> from nnscratch import NeuralNetwork, Dense, Activation, Dropout, Adam, SGD
"""

from nnscratch.core.layer import Layer
from nnscratch.engine.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ReduceLROnPlateau,
)
from nnscratch.engine.gradient_check import check_gradients
from nnscratch.engine.model import NeuralNetwork
from nnscratch.layers.activation import Activation
from nnscratch.layers.batchnorm import BatchNorm
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.losses.losses import BCE, CCE, MSE
from nnscratch.optimizers import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineAnnealing,
    ExponentialDecay,
    Optimizer,
    RMSprop,
    StepDecay,
)
from nnscratch.utils.data import get_moons_data, get_spirals_data, get_toy_data
from nnscratch.utils.metrics import accuracy

__version__ = "0.1.0"

__all__ = [
    "BCE",
    "CCE",
    "MSE",
    "SGD",
    "Activation",
    "Adagrad",
    "Adam",
    "AdamW",
    "BatchNorm",
    "Callback",
    "CosineAnnealing",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "ExponentialDecay",
    "Layer",
    "LearningRateScheduler",
    "NeuralNetwork",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepDecay",
    "accuracy",
    "check_gradients",
    "get_moons_data",
    "get_spirals_data",
    "get_toy_data",
]
