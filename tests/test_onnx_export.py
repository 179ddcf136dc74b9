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
from nnscratch.interop import to_onnx
from nnscratch.interop.onnx_layers import ACTIVATION_EXPORTERS, ONNX_EXPORTERS
from nnscratch.layers.activation_functions import ACTIVATIONS

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
        X = rng.normal(size=(batch, *input_shape)).astype(np.float32)
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


def test_every_activation_and_builtin_layer_has_an_exporter():
    assert set(ACTIVATION_EXPORTERS) == set(ACTIVATIONS)
    import nnscratch.layers

    builtins = {getattr(nnscratch.layers, name) for name in nnscratch.layers.__all__}
    assert builtins <= set(ONNX_EXPORTERS)


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
