"""The built-in layers, and the containers that combine them."""

from nnscratch.layers.activation import Activation
from nnscratch.layers.batchnorm import BatchNorm
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.flatten import Flatten
from nnscratch.layers.normalization import Normalization
from nnscratch.layers.pooling import AvgPool2D, MaxPool2D
from nnscratch.layers.residual import Residual
from nnscratch.layers.sequential import Sequential

__all__ = [
    "Activation",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "MaxPool2D",
    "Normalization",
    "Residual",
    "Sequential",
]
