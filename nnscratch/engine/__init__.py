"""The model and its training loop."""

from nnscratch.engine.callbacks import Callback, EarlyStopping
from nnscratch.engine.model import NeuralNetwork

__all__ = ["Callback", "EarlyStopping", "NeuralNetwork"]
