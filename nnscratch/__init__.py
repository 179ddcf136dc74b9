"""nnscratch: a deep-learning framework written from scratch in NumPy.

Examples
--------
>>> from nnscratch import NeuralNetwork, Dense, Activation, Dropout, Adam, SGD
"""

from typing import Any

from nnscratch.core.layer import Layer
from nnscratch.distributed import DataParallel
from nnscratch.engine.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from nnscratch.engine.gradient_check import check_gradients
from nnscratch.engine.model import NeuralNetwork
from nnscratch.interop.tensorboard import TensorBoard
from nnscratch.layers import (
    GRU,
    LSTM,
    RNN,
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    KVCache,
    LayerNorm,
    MaxPool2D,
    MultiHeadAttention,
    Normalization,
    PositionalEmbedding,
    Residual,
    Sequential,
    TransformerBlock,
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
from nnscratch.utils.text import CharTokenizer, generate, load_text

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Plots need matplotlib, which `import nnscratch` does not load.
    if name == "plot_layer_stats":
        from nnscratch.utils.visualization import plot_layer_stats

        return plot_layer_stats
    raise AttributeError(f"module 'nnscratch' has no attribute {name!r}")


__all__ = [
    "DataParallel",
    "GRU",
    "LSTM",
    "RNN",
    "CharTokenizer",
    "Embedding",
    "KVCache",
    "LayerNorm",
    "MultiHeadAttention",
    "PositionalEmbedding",
    "TransformerBlock",
    "generate",
    "load_text",
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
    "MonitorCallback",
    "NeuralNetwork",
    "Normalization",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "Residual",
    "SGD",
    "Sequential",
    "StepDecay",
    "TensorBoard",
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
