"""to_onnx against onnxruntime: every exportable layer, outputs equal to 1e-5.

Each case builds a small float32 model around one layer type, with random
weights (and random BatchNorm statistics), exports it, and runs onnxruntime on
batch sizes that the export never saw.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest

from nnscratch import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    NeuralNetwork,
)
from nnscratch.cli.export import add_export_parser
from nnscratch.core.layer import LAYER_TYPES
from nnscratch.interop import to_onnx
from nnscratch.interop.onnx_layers import ACTIVATION_EXPORTERS, ONNX_EXPORTERS
from nnscratch.layers import Normalization, Residual, Sequential
from nnscratch.layers.activation_functions import ACTIVATIONS
from nnscratch.layers.attention import MultiHeadAttention
from nnscratch.layers.embedding import Embedding, PositionalEmbedding
from nnscratch.layers.gru import GRU
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.rnn import RNN
from nnscratch.layers.transformer import TransformerBlock

TOLERANCE = 1e-5
BATCH_SIZES = (1, 5)  # the export probes the model with batches of 1 and 2


def _dense_takes_sequences() -> bool:
    try:
        Dense(2, 2).forward(np.zeros((1, 3, 2), dtype=np.float32))
    except ValueError:
        return False
    return True


needs_dense_on_sequences = pytest.mark.skipif(
    not _dense_takes_sequences(), reason="Dense on (N, T, F) has not landed yet"
)


def _all_layers(layers):
    for layer in layers:
        yield layer
        children = getattr(layer, "children", None)
        if callable(children):
            yield from _all_layers(children())


def randomize(model: NeuralNetwork, seed: int = 0) -> NeuralNetwork:
    """Random params and buffers (variances positive), written in place."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model.layers):
        for store in (layer.params, layer.buffers):
            for name, value in store.items():
                if "var" in name:
                    value[...] = rng.uniform(0.5, 2.0, size=value.shape)
                else:
                    value[...] = rng.normal(0.0, 0.5, size=value.shape)
    return model


def make_model(*layers: Layer, loss_name: str = "mse") -> NeuralNetwork:
    model = NeuralNetwork(loss_name=loss_name, seed=0)
    for layer in layers:
        model.add(layer)
    return randomize(model)


def image_cnn(pool: type) -> NeuralNetwork:
    return make_model(
        Conv2D(2, 3, kernel_size=3, stride=2, padding=1),
        Activation("relu"),
        pool(2),
        Flatten(),
        Dense(3 * 2 * 2, 4),
    )


CASES = {
    "Dense": lambda: (make_model(Dense(6, 4), Dense(4, 3)), (6,)),
    "Dense on (N, T, F)": pytest.param(
        lambda: (make_model(Dense(6, 4)), (7, 6)), marks=needs_dense_on_sequences
    ),
    **{
        f"Activation({name!r})": (
            lambda name=name: (make_model(Dense(5, 4), Activation(name)), (5,))
        )
        for name in ACTIVATIONS
    },
    "Dropout": lambda: (make_model(Dense(5, 4), Dropout(0.5), Dense(4, 2)), (5,)),
    "Conv2D": lambda: (make_model(Conv2D(2, 3, kernel_size=3)), (2, 6, 5)),
    "Conv2D stride+padding": lambda: (
        make_model(Conv2D(2, 4, kernel_size=(3, 2), stride=(2, 1), padding=(1, 2))),
        (2, 7, 6),
    ),
    "MaxPool2D": lambda: (image_cnn(MaxPool2D), (2, 8, 8)),
    "MaxPool2D stride": lambda: (make_model(MaxPool2D(3, stride=2)), (2, 7, 8)),
    "AvgPool2D": lambda: (image_cnn(AvgPool2D), (2, 8, 8)),
    "AvgPool2D stride": lambda: (make_model(AvgPool2D((2, 3), stride=1)), (2, 5, 6)),
    "Flatten": lambda: (make_model(Flatten(), Dense(24, 2)), (2, 3, 4)),
    "BatchNorm (N, F)": lambda: (make_model(Dense(5, 4), BatchNorm(4)), (5,)),
    "BatchNorm (N, C, H, W)": lambda: (
        make_model(Conv2D(1, 3, kernel_size=3), BatchNorm(3, epsilon=1e-3)),
        (1, 6, 6),
    ),
    "Sequential (nested)": lambda: (
        make_model(
            Sequential(Dense(5, 4), Sequential(Activation("relu"), Dense(4, 4))),
            Dense(4, 2),
        ),
        (5,),
    ),
    "Residual": lambda: (
        make_model(Dense(5, 4), Residual(Sequential(Dense(4, 4), Activation("tanh")))),
        (5,),
    ),
    "Normalization": lambda: (make_model(Normalization(5), Dense(5, 2)), (5,)),
    "LayerNorm on (N, T, F)": lambda: (
        make_model(Dense(6, 4), LayerNorm(4, epsilon=1e-3)),
        (3, 6),
    ),
    "Embedding": lambda: (make_model(Embedding(10, 4), Dense(4, 3)), (7,)),
    "PositionalEmbedding": lambda: (
        make_model(Embedding(10, 4), PositionalEmbedding(8, 4)),
        (None,),
    ),
    "RNN tanh": lambda: (make_model(RNN(3, 4)), (5, 3)),
    "RNN relu, sequences": lambda: (
        make_model(RNN(3, 4, nonlinearity="relu", return_sequences=True)),
        (5, 3),
    ),
    "LSTM": lambda: (make_model(LSTM(3, 4)), (5, 3)),
    "LSTM, sequences": lambda: (
        make_model(LSTM(3, 4, return_sequences=True), Dense(4, 2)),
        (None, 3),
    ),
    "GRU": lambda: (make_model(GRU(3, 4)), (5, 3)),
    "GRU, sequences": lambda: (make_model(GRU(3, 4, return_sequences=True)), (5, 3)),
    "MultiHeadAttention": lambda: (
        make_model(MultiHeadAttention(8, 2, causal=False)),
        (6, 8),
    ),
    "MultiHeadAttention causal": lambda: (
        make_model(MultiHeadAttention(8, 4, causal=True)),
        (None, 8),
    ),
    "TransformerBlock (a small GPT)": lambda: (
        make_model(
            Embedding(11, 8),
            PositionalEmbedding(16, 8),
            TransformerBlock(8, 2, mlp_ratio=2),
            LayerNorm(8),
            Dense(8, 11),
            Activation("softmax"),
            loss_name="cce",
        ),
        (None,),
    ),
    "classifier (softmax + cce)": lambda: (
        make_model(
            Dense(8, 16),
            Activation("tanh"),
            Dense(16, 3),
            Activation("softmax"),
            loss_name="cce",
        ),
        (8,),
    ),
}


def onnx_max_difference(model, input_shape, tmp_path, seed=1) -> float:
    """Export, check, and return the largest |onnxruntime - predict|."""
    path = tmp_path / "model.onnx"
    to_onnx(model, path, input_shape)
    onnx.checker.check_model(str(path), full_check=True)
    session = onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(seed)
    worst = 0.0
    for batch in BATCH_SIZES:
        shape = (batch, *(6 if dim is None else dim for dim in input_shape))
        first = model.layers[0]
        if isinstance(first, Embedding):  # integer ids
            X = rng.integers(0, first.num_embeddings, size=shape)
        else:
            X = rng.normal(size=shape).astype(np.float32)
        (output,) = session.run(None, {"input": X})
        expected = model.predict(X)
        assert output.shape == expected.shape
        assert output.dtype == np.float32
        worst = max(worst, float(np.max(np.abs(output - expected))))
    return worst


def _case_params():
    for name, case in CASES.items():
        if isinstance(case, tuple):  # a pytest.param: (values, marks, id)
            yield pytest.param(case.values[0], marks=case.marks, id=name)
        else:
            yield pytest.param(case, id=name)


@pytest.mark.parametrize("case", list(_case_params()))
def test_onnxruntime_matches_predict(case, tmp_path):
    model, input_shape = case()
    assert onnx_max_difference(model, input_shape, tmp_path) <= TOLERANCE


def builtin_layer_types() -> set[type]:
    """Every concrete Layer class defined in nnscratch.layers."""
    from nnscratch.cli.common import import_builtins

    import_builtins()
    return {
        kind
        for name, kind in LAYER_TYPES.items()
        if kind.__module__.startswith("nnscratch.layers.")
        and not name.startswith("_")
        and name != "RecurrentLayer"  # the base of RNN, LSTM, GRU
    }


def test_every_activation_and_builtin_layer_has_an_exporter():
    assert set(ACTIVATION_EXPORTERS) == set(ACTIVATIONS)
    missing = builtin_layer_types() - set(ONNX_EXPORTERS)
    assert not missing


def test_batch_axis_is_dynamic(tmp_path):
    model, _ = CASES["Dense"]()
    path = tmp_path / "model.onnx"
    to_onnx(model, path, (6,))
    graph = onnx.load(str(path)).graph
    for value in (graph.input[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch"
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim[1:]] == [3]


def test_input_shape_is_inferred_from_a_first_dense(tmp_path):
    model, input_shape = CASES["Dense"]()
    to_onnx(model, tmp_path / "model.onnx")  # no input_shape
    assert onnx_max_difference(model, input_shape, tmp_path) <= TOLERANCE


@needs_dense_on_sequences
def test_a_dynamic_sequence_axis(tmp_path):
    model = make_model(Dense(6, 4), Activation("gelu"))
    path = tmp_path / "model.onnx"
    to_onnx(model, path, (None, 6))
    session = onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"]
    )
    for steps in (3, 9):
        X = np.random.default_rng(steps).normal(size=(2, steps, 6)).astype(np.float32)
        (output,) = session.run(None, {"input": X})
        np.testing.assert_allclose(output, model.predict(X), atol=TOLERANCE)


class Doubler(Layer):
    def forward(self, x, training=False):
        return 2 * x

    def backward(self, grad):
        return 2 * grad


def test_a_layer_without_exporter_is_a_value_error_naming_it(tmp_path):
    model = make_model(Dense(3, 3), Doubler())
    path = tmp_path / "model.onnx"
    with pytest.raises(ValueError, match=r"cannot export layer 1_Doubler \(Doubler\)"):
        to_onnx(model, path, (3,))
    assert not path.exists()


@pytest.mark.parametrize(
    ("input_shape", "message"),
    [((0,), "positive sizes"), ((2.5,), "positive sizes"), ((4,), "does not fit")],
)
def test_a_bad_input_shape_is_a_value_error(input_shape, message, tmp_path):
    model = make_model(Dense(3, 3))
    with pytest.raises(ValueError, match=message):
        to_onnx(model, tmp_path / "model.onnx", input_shape)


def test_a_conv_first_model_needs_input_shape(tmp_path):
    model = make_model(Conv2D(1, 2, kernel_size=3))
    with pytest.raises(ValueError, match="expected input_shape"):
        to_onnx(model, tmp_path / "model.onnx")


def test_a_float64_model_exports_in_float32(tmp_path):
    model = NeuralNetwork(loss_name="mse", seed=0, dtype="float64")
    model.add(Dense(4, 2))
    randomize(model)
    assert onnx_max_difference(model, (4,), tmp_path) <= TOLERANCE


def export_command(*argv):
    import argparse

    parser = argparse.ArgumentParser(prog="nnscratch")
    add_export_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *map(str, argv)])
    return args.handler(args)


def test_the_export_command_writes_what_onnxruntime_runs(tmp_path, capsys):
    model, input_shape = CASES["MaxPool2D"]()
    model.save(tmp_path / "cnn.npz")
    with pytest.raises(ValueError, match="--input-shape"):
        export_command(tmp_path / "cnn.npz", tmp_path / "cnn.onnx")
    shape = ",".join(map(str, input_shape))
    code = export_command(
        tmp_path / "cnn.npz", tmp_path / "cnn.onnx", "--input-shape", shape
    )
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(
        str(tmp_path / "cnn.onnx"), providers=["CPUExecutionProvider"]
    )
    X = np.random.default_rng(0).normal(size=(3, *input_shape)).astype(np.float32)
    (output,) = session.run(None, {"input": X})
    np.testing.assert_allclose(output, model.predict(X), atol=TOLERANCE)


def test_the_export_command_infers_a_dense_input(tmp_path):
    model, _ = CASES["Dense"]()
    model.save(tmp_path / "mlp.npz")
    assert export_command(tmp_path / "mlp.npz", tmp_path / "mlp.onnx") == 0
    assert (tmp_path / "mlp.onnx").exists()
