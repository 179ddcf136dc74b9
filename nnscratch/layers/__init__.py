"""The built-in layers."""

from nnscratch.layers.activation import Activation
from nnscratch.layers.batchnorm import BatchNorm
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout

__all__ = ["Activation", "BatchNorm", "Dense", "Dropout"]
