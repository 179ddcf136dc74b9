"""The built-in layers."""

from nnscratch.layers.activation import Activation
from nnscratch.layers.batchnorm import BatchNorm
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.flatten import Flatten
from nnscratch.layers.pooling import AvgPool2D, MaxPool2D

__all__ = [
    "Activation",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "MaxPool2D",
]
