"""from_torch / to_torch: nnscratch twins of ``torch.nn.Sequential`` models.

Weights are copied, not shared, in the layouts of DESIGN.md: a Dense ``W`` is
``Linear.weight.T``; Conv2D, BatchNorm and the rest keep torch's layout. Each
direction looks a module or layer up by its exact type in one registry
(:func:`torch_to_layer_converters`, :data:`LAYER_TO_TORCH`), so supporting a
new piece is one function and one entry. Needs the ``[torch]`` extra.

Examples
--------
>>> import numpy as np
>>> import torch
>>> torch_model = torch.nn.Sequential(
...     torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3),
...     torch.nn.Softmax(dim=1))
>>> model = from_torch(torch_model)   # a softmax head means loss 'cce'
>>> model.loss_name, [type(layer).__name__ for layer in model.layers]
('cce', ['Dense', 'Activation', 'Dense', 'Activation'])
>>> X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
>>> expected = torch_model(torch.from_numpy(X)).detach().numpy()
>>> bool(np.allclose(model.predict(X), expected, atol=1e-5))
True
>>> back = to_torch(model)            # and back, in eval mode
>>> bool(np.allclose(back(torch.from_numpy(X)).detach().numpy(), expected, atol=1e-5))
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.interop import torch_sequences as sequences
from nnscratch.interop._optional import require
from nnscratch.layers.activation import Activation
from nnscratch.layers.activation_functions import ELU_ALPHA, LEAKY_RELU_SLOPE
from nnscratch.layers.attention import MultiHeadAttention
from nnscratch.layers.batchnorm import BatchNorm
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.embedding import Embedding, PositionalEmbedding
from nnscratch.layers.flatten import Flatten
from nnscratch.layers.gru import GRU
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.normalization import Normalization
from nnscratch.layers.pooling import AvgPool2D, MaxPool2D
from nnscratch.layers.residual import Residual
from nnscratch.layers.rnn import RNN
from nnscratch.layers.sequential import Sequential
from nnscratch.layers.transformer import TransformerBlock
from nnscratch.optimizers.optimizer import Optimizer

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork

__all__ = ["LAYER_TO_TORCH", "from_torch", "to_torch", "torch_to_layer_converters"]

HEAD_LOSSES = {"softmax": "cce", "sigmoid": "bce"}
"""The loss a converted model gets from its last activation (else ``'mse'``)."""


def _torch() -> Any:
    return require("torch", "torch")


@dataclass
class Context:
    """What a converter needs to know about the tensors flowing through.

    ``images`` is True while the data are ``(N, C, H, W)`` (after a
    convolution or pooling, before a Flatten or Linear): it decides between
    BatchNorm1d and BatchNorm2d, and what ``Softmax(dim=1)`` means.
    """

    images: bool = False
    dtype: Any = None  # to_torch: the torch dtype the modules are made in


# --------------------------------------------------------------- torch -> nn
Copy = Callable[[], None]
"""Writes a module's weights into its twin, in place, once the twin is built."""


def _array(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def copy_into(layer: Layer, store: str, values: dict[str, Any]) -> Copy:
    """A :data:`Copy` writing ``values`` into ``layer.<store>[key][...]``."""

    def copy() -> None:
        arrays = getattr(layer, store)
        for key, value in values.items():
            arrays[key][...] = value() if callable(value) else value

    return copy


def check_setting(module: Any, name: str, value: Any, supported: Any) -> None:
    if value != supported:
        raise ValueError(
            f"from_torch: cannot convert {module!r}: expected {name}={supported!r} "
            f"(what nnscratch computes). Received {name}={value!r}"
        )


def _bias(module: Any, size: int) -> Any:
    if module.bias is None:
        return np.zeros(size)
    return lambda: _array(module.bias)


def _from_linear(module: Any, context: Context) -> tuple[Layer, Copy]:
    context.images = False
    layer = Dense(module.in_features, module.out_features)
    weights = {
        "W": lambda: _array(module.weight).T,
        "b": _bias(module, layer.output_size),
    }
    return layer, copy_into(layer, "params", weights)


def _from_conv2d(module: Any, context: Context) -> tuple[Layer, Copy]:
    for name, supported in (
        ("groups", 1),
        ("dilation", (1, 1)),
        ("padding_mode", "zeros"),
    ):
        check_setting(module, name, getattr(module, name), supported)
    if isinstance(module.padding, str):
        check_setting(module, "padding", module.padding, "an int or a pair")
    context.images = True
    layer = Conv2D(
        module.in_channels,
        module.out_channels,
        module.kernel_size,
        stride=module.stride,
        padding=module.padding,
    )
    weights = {
        "W": lambda: _array(module.weight),
        "b": _bias(module, module.out_channels),
    }
    return layer, copy_into(layer, "params", weights)


def _from_pool(kind: type) -> Callable[[Any, Context], tuple[Layer, Copy]]:
    def convert(module: Any, context: Context) -> tuple[Layer, Copy]:
        check_setting(module, "padding", module.padding, 0)
        check_setting(module, "ceil_mode", module.ceil_mode, False)
        if kind is MaxPool2D:
            check_setting(module, "dilation", module.dilation, 1)
        context.images = True
        stride = module.stride if module.stride else None
        return kind(module.kernel_size, stride=stride), lambda: None

    return convert


def _from_batchnorm(module: Any, context: Context) -> tuple[Layer, Copy]:
    check_setting(module, "affine", module.affine, True)
    check_setting(module, "track_running_stats", module.track_running_stats, True)
    if module.momentum is None:
        check_setting(module, "momentum", None, "a number (not None)")
    context.images = type(module).__name__ == "BatchNorm2d"
    layer = BatchNorm(module.num_features, momentum=module.momentum, epsilon=module.eps)

    def copy() -> None:
        copy_into(layer, "params", {"gamma": _array(module.weight)})()
        copy_into(layer, "params", {"beta": _array(module.bias)})()
        buffers = {
            "running_mean": _array(module.running_mean),
            "running_var": _array(module.running_var),
        }
        copy_into(layer, "buffers", buffers)()

    return layer, copy


def _from_flatten(module: Any, context: Context) -> tuple[Layer, Copy]:
    check_setting(module, "start_dim", module.start_dim, 1)
    check_setting(module, "end_dim", module.end_dim, -1)
    context.images = False
    return Flatten(), lambda: None


def _from_dropout(module: Any, context: Context) -> tuple[Layer, Copy]:
    return Dropout(module.p), lambda: None


def _from_softmax(module: Any, context: Context) -> tuple[Layer, Copy]:
    # nnscratch's softmax runs over the last axis: torch's dim=-1, or dim=1
    # on (N, features) data.
    if module.dim != -1 and not (module.dim == 1 and not context.images):
        check_setting(module, "dim", module.dim, -1)
    return Activation("softmax"), lambda: None


def _activation(name: str, **settings: Any) -> Callable[[Any, Context], Any]:
    def convert(module: Any, context: Context) -> tuple[Layer, Copy]:
        for setting, supported in settings.items():
            check_setting(module, setting, getattr(module, setting), supported)
        return Activation(name), lambda: None

    return convert


@functools.cache
def torch_to_layer_converters() -> dict[type, Callable[[Any, Context], Any]]:
    """torch module type -> function returning ``(nnscratch layer, copy)``.

    Built on first use, as it needs torch's classes.
    """
    nn = _torch().nn
    return {
        nn.Linear: _from_linear,
        nn.Conv2d: _from_conv2d,
        nn.MaxPool2d: _from_pool(MaxPool2D),
        nn.AvgPool2d: _from_pool(AvgPool2D),
        nn.BatchNorm1d: _from_batchnorm,
        nn.BatchNorm2d: _from_batchnorm,
        nn.Flatten: _from_flatten,
        nn.Dropout: _from_dropout,
        nn.ReLU: _activation("relu"),
        nn.Sigmoid: _activation("sigmoid"),
        nn.Tanh: _activation("tanh"),
        nn.Softmax: _from_softmax,
        nn.LeakyReLU: _activation("leaky_relu", negative_slope=LEAKY_RELU_SLOPE),
        nn.ELU: _activation("elu", alpha=ELU_ALPHA),
        nn.GELU: _activation("gelu", approximate="none"),
        # torch returns x itself above threshold=20; nnscratch's stable
        # formula differs from that by less than 2.1e-9.
        nn.Softplus: _activation("softplus", beta=1.0, threshold=20.0),
        nn.Identity: _activation("linear"),
        **sequences.torch_sequence_converters(),
    }


def _converter(registry: dict, item: Any, label: str, caller: str, noun: str) -> Any:
    """The registry's function for ``type(item)``, or a ValueError naming it."""
    convert = registry.get(type(item))
    if convert is None:
        known = sorted(kind.__name__ for kind in registry)
        raise ValueError(
            f"{caller}: cannot convert {noun} {label} ({type(item).__name__}): "
            f"expected one of {known}. Received {item!r}"
        )
    return convert


def convert_module(module: Any, label: str, context: Context) -> tuple[Layer, Copy]:
    registry = torch_to_layer_converters()
    return _converter(registry, module, label, "from_torch", "module")(module, context)


def _default_dtype(module: Any) -> str:
    dtypes = {str(p.dtype).removeprefix("torch.") for p in module.parameters()}
    return "float64" if dtypes == {"float64"} else "float32"


def from_torch(
    module: Any,
    loss_name: str | None = None,
    optimizer: Optimizer | None = None,
    seed: int | None = None,
    dtype: str | None = None,
) -> NeuralNetwork:
    """The nnscratch twin of a ``torch.nn.Sequential``, weights copied.

    Parameters
    ----------
    module : torch.nn.Sequential
        Of the modules in :func:`torch_to_layer_converters` (Linear, Conv2d,
        MaxPool2d, AvgPool2d, BatchNorm1d/2d, Flatten, Dropout, ReLU,
        Sigmoid, Tanh, Softmax, LeakyReLU, ELU, GELU, Softplus, Identity,
        LayerNorm, Embedding, RNN/LSTM/GRU, nested Sequential, and the
        wrappers of :mod:`nnscratch.interop.torch_modules`) in the settings
        nnscratch computes (e.g. ``groups=1``, ``batch_first=True``). A bare
        ``nn.LSTM`` (RNN, GRU) stands for its output sequence, the first item
        torch returns (``return_sequences=True``); ``torch_modules.Recurrent``
        chooses, and ``torch_modules.SelfAttention`` wraps an
        ``nn.MultiheadAttention`` used as self-attention.
    loss_name : {'mse', 'bce', 'cce'}, optional
        The twin's training loss, which a torch module does not carry. By
        default it follows the last module, as ``build_mlp`` pairs them: a
        Softmax head means ``'cce'``, a Sigmoid head ``'bce'``, anything
        else ``'mse'``.
    optimizer : Optimizer, optional
        ``Adam()`` if not given.
    seed : int, optional
        Seeds the twin's shuffling and dropout (its weights are copied).
    dtype : {'float32', 'float64'}, optional
        By default the module's parameter dtype (float32 unless all are
        float64).

    Returns
    -------
    NeuralNetwork
        Whose ``predict`` equals ``module.eval()(x)`` (to ~1e-6 in float32).

    Raises
    ------
    ValueError
        For a module that is not a Sequential, an unsupported module (named,
        with the supported ones listed) or an unsupported setting.
    """
    from nnscratch.engine.model import NeuralNetwork

    torch = _torch()
    if not isinstance(module, torch.nn.Sequential):
        raise ValueError(
            f"from_torch: expected a torch.nn.Sequential. Received "
            f"{type(module).__name__}"
        )
    context = Context()
    converted = [
        convert_module(child, f"{index}", context) for index, child in enumerate(module)
    ]
    if loss_name is None:
        last = converted[-1][0] if converted else None
        loss_name = HEAD_LOSSES.get(getattr(last, "name", None), "mse")
    model = NeuralNetwork(
        loss_name=loss_name,
        optimizer=optimizer,
        seed=seed,
        dtype=dtype or _default_dtype(module),
    )
    for layer, _ in converted:
        model.add(layer)  # allocates the weights the copies write into
    with torch.no_grad():
        for _, copy in converted:
            copy()
    return model


# --------------------------------------------------------------- nn -> torch
def _to_activation(layer: Activation, context: Context) -> Any:
    nn = _torch().nn
    modules = {
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "softmax": lambda: nn.Softmax(dim=-1),
        "leaky_relu": lambda: nn.LeakyReLU(LEAKY_RELU_SLOPE),
        "elu": lambda: nn.ELU(ELU_ALPHA),
        "gelu": nn.GELU,
        "softplus": nn.Softplus,
        "linear": nn.Identity,
    }
    if layer.name not in modules:
        raise ValueError(
            f"to_torch: cannot convert Activation({layer.name!r}): expected one of "
            f"{sorted(modules)}"
        )
    return modules[layer.name]()


def _tensor(array: np.ndarray) -> Any:
    return _torch().from_numpy(np.ascontiguousarray(array))


def _to_linear(layer: Dense, context: Context) -> Any:
    context.images = False
    module = _torch().nn.Linear(
        layer.input_size, layer.output_size, dtype=context.dtype
    )
    module.weight.copy_(_tensor(layer.params["W"].T))
    module.bias.copy_(_tensor(layer.params["b"]))
    return module


def _to_conv2d(layer: Conv2D, context: Context) -> Any:
    context.images = True
    module = _torch().nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dtype=context.dtype,
    )
    module.weight.copy_(_tensor(layer.params["W"]))
    module.bias.copy_(_tensor(layer.params["b"]))
    return module


def _to_pool(layer: MaxPool2D | AvgPool2D, context: Context) -> Any:
    context.images = True
    nn = _torch().nn
    kind = nn.MaxPool2d if isinstance(layer, MaxPool2D) else nn.AvgPool2d
    return kind(layer.pool_size, stride=layer.stride)


def _to_batchnorm(layer: BatchNorm, context: Context) -> Any:
    # BatchNorm1d and BatchNorm2d compute the same; they differ in the input
    # rank they accept, which follows from the layers before.
    nn = _torch().nn
    kind = nn.BatchNorm2d if context.images else nn.BatchNorm1d
    module = kind(
        layer.num_features,
        eps=layer.epsilon,
        momentum=layer.momentum,
        dtype=context.dtype,
    )
    module.weight.copy_(_tensor(layer.params["gamma"]))
    module.bias.copy_(_tensor(layer.params["beta"]))
    module.running_mean.copy_(_tensor(layer.buffers["running_mean"]))
    module.running_var.copy_(_tensor(layer.buffers["running_var"]))
    return module


def _to_flatten(layer: Flatten, context: Context) -> Any:
    context.images = False
    return _torch().nn.Flatten()


LAYER_TO_TORCH: dict[type, Callable[[Any, Context], Any]] = {
    Activation: _to_activation,
    AvgPool2D: _to_pool,
    BatchNorm: _to_batchnorm,
    Conv2D: _to_conv2d,
    Dense: _to_linear,
    Dropout: lambda layer, context: _torch().nn.Dropout(layer.rate),
    Embedding: sequences.to_embedding,
    Flatten: _to_flatten,
    GRU: sequences.to_recurrent,
    LSTM: sequences.to_recurrent,
    LayerNorm: sequences.to_layernorm,
    MaxPool2D: _to_pool,
    MultiHeadAttention: sequences.to_self_attention,
    Normalization: sequences.to_normalization,
    PositionalEmbedding: sequences.to_positional,
    RNN: sequences.to_recurrent,
    Residual: sequences.to_residual,
    Sequential: sequences.to_sequential,
    # Its forward chains its two residual branches: an nn.Sequential of them
    # (from_torch reads that back as a Sequential of two Residuals).
    TransformerBlock: sequences.to_sequential,
}
"""nnscratch layer type -> function returning the torch module, weights copied."""


def convert_layer(layer: Layer, label: str, context: Context) -> Any:
    convert = _converter(LAYER_TO_TORCH, layer, label, "to_torch", "layer")
    return convert(layer, context)


def to_torch(model: NeuralNetwork) -> Any:
    """The ``torch.nn.Sequential`` twin of ``model``, weights copied, in eval mode.

    Parameters
    ----------
    model : NeuralNetwork
        Of the layers in :data:`LAYER_TO_TORCH`.

    Returns
    -------
    torch.nn.Sequential
        In ``model.dtype`` and in ``eval()`` mode (Dropout off, BatchNorm on
        its running statistics), so that it computes ``model.predict``;
        call ``.train()`` to train it in torch.

    Raises
    ------
    ValueError
        For a layer with no torch counterpart (named, with the supported ones).
    """
    torch = _torch()
    dtype = torch.float64 if np.dtype(model.dtype) == np.float64 else torch.float32
    context = Context(dtype=dtype)
    with torch.no_grad():
        modules = [
            convert_layer(layer, str(index), context)
            for index, layer in enumerate(model.layers)
        ]
    return torch.nn.Sequential(*modules).eval()
