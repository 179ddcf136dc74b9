"""The built-in layers, and the containers that combine them."""

from nnscratch.layers.activation import Activation
from nnscratch.layers.attention import MultiHeadAttention
from nnscratch.layers.batchnorm import BatchNorm
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.embedding import Embedding
from nnscratch.layers.flatten import Flatten
from nnscratch.layers.gru import GRU
from nnscratch.layers.kv_cache import KVCache
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.normalization import Normalization
from nnscratch.layers.pooling import AvgPool2D, MaxPool2D
from nnscratch.layers.positional_embedding import PositionalEmbedding
from nnscratch.layers.residual import Residual
from nnscratch.layers.rnn import RNN
from nnscratch.layers.sequential import Sequential
from nnscratch.layers.transformer import TransformerBlock

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Activation",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "KVCache",
    "LayerNorm",
    "MaxPool2D",
    "MultiHeadAttention",
    "Normalization",
    "PositionalEmbedding",
    "Residual",
    "Sequential",
    "TransformerBlock",
]
