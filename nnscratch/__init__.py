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
from nnscratch.engine.checkpoint import CSVLogger, ModelCheckpoint
from nnscratch.engine.gradient_check import check_gradients
from nnscratch.engine.model import NeuralNetwork
from nnscratch.layers import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
)
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
from nnscratch.utils.data import (
    from_one_hot,
    get_moons_data,
    get_spirals_data,
    get_toy_data,
    load_digits,
    load_mnist,
    load_mnist_sample,
    one_hot,
)
from nnscratch.utils.metrics import accuracy, confusion_matrix
from nnscratch.utils.visualization import plot_layer_stats

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "Adagrad",
    "Adam",
    "AdamW",
    "AvgPool2D",
    "BCE",
    "BatchNorm",
    "CCE",
    "CSVLogger",
    "Callback",
    "Conv2D",
    "CosineAnnealing",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "ExponentialDecay",
    "Flatten",
    "Layer",
    "LearningRateScheduler",
    "MSE",
    "MaxPool2D",
    "ModelCheckpoint",
    "NeuralNetwork",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "SGD",
    "StepDecay",
    "accuracy",
    "check_gradients",
    "confusion_matrix",
    "from_one_hot",
    "get_moons_data",
    "get_spirals_data",
    "get_toy_data",
    "load_digits",
    "load_mnist",
    "load_mnist_sample",
    "one_hot",
    "plot_layer_stats",
]
