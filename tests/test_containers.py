"""Containers (Sequential, Residual), Normalization, the tree walker, and what
every part of the engine does with nested models: parity with PyTorch,
gradient checks, saving, resuming, summary, tracking, input gradients."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nnscratch import (
    SGD,
    Activation,
    Adam,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    NeuralNetwork,
    Normalization,
    Residual,
    Sequential,
    check_gradients,
)
from nnscratch.core.tree import declared_shapes, walk
from tests.helpers import TOLERANCE, to_numpy, to_torch

FLOAT64 = np.dtype("float64")


def residual_mlp(seed: int = 0, dtype: str = "float64") -> NeuralNetwork:
    model = NeuralNetwork("cce", Adam(0.01), seed=seed, dtype=dtype)
    model.add(Dense(4, 6))
    model.add(
        Residual(Sequential(Dense(6, 6), Activation("tanh"), Residual(Dense(6, 6))))
    )
    model.add(Dropout(0.2))
    model.add(Dense(6, 3))
    model.add(Activation("softmax"))
    return model


def small_resnet(seed: int = 0, dtype: str = "float64") -> NeuralNetwork:
    def block() -> Residual:
        return Residual(
            Sequential(
                Conv2D(3, 3, 3, padding=1),
                BatchNorm(3),
                Activation("relu"),
                Conv2D(3, 3, 3, padding=1),
                BatchNorm(3),
            )
        )

    model = NeuralNetwork("cce", SGD(0.05, momentum=0.9), seed=seed, dtype=dtype)
    model.add(Conv2D(1, 3, 3, padding=1))
    model.add(block())
    model.add(Activation("relu"))
    model.add(Flatten())
    model.add(Dense(3 * 5 * 5, 2))
    model.add(Activation("softmax"))
    return model


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((20, 4)), rng.integers(0, 3, 20)


# --------------------------------------------------------------- the walker
def test_paths_name_every_nested_array_and_the_optimizer_sees_them_all():
    model = residual_mlp()
    names = list(model.state_dict())
    assert names == [
        "0.W", "0.b", "1.body.0.W", "1.body.0.b", "1.body.2.body.W",
        "1.body.2.body.b", "3.W", "3.b",
    ]  # fmt: skip
    params, grads = model.params_and_grads()
    assert len(params) == 8 and all(
        p.shape == g.shape for p, g in zip(params, grads, strict=True)
    )
    assert [p for p, _ in walk(model.layers)][:4] == ["0", "1", "1.body", "1.body.0"]


def test_constructors_allocate_nothing_and_shapes_come_from_arguments():
    layer = Dense(2, 2**40)  # 8 TB if it allocated
    assert declared_shapes([Residual(layer)]) == {
        "0.body.W": (2, 2**40),
        "0.body.b": (2**40,),
    }
    assert not layer.built


def test_a_standalone_layer_builds_itself_once_and_keeps_written_weights():
    layer = Dense(3, 2)
    layer.params["W"][...] = 1.0  # reading params built it
    model = NeuralNetwork("mse", seed=0)
    model.add(layer)  # already built: the weights stay
    assert np.all(layer.params["W"] == 1.0)


# ---------------------------------------------------------- torch parity
def test_residual_of_sequential_matches_a_torch_twin():
    rng = np.random.default_rng(3)
    block = Residual(Sequential(Dense(5, 5), Activation("tanh"), Dense(5, 5)))
    block.build(rng, FLOAT64)
    first, second = block.body.layers[0], block.body.layers[2]
    x = rng.standard_normal((7, 5))
    x_t = to_torch(x, requires_grad=True)
    weights_t = [
        to_torch(layer.params[name], requires_grad=True)
        for layer in (first, second)
        for name in ("W", "b")
    ]
    W1, b1, W2, b2 = weights_t
    y_t = x_t + torch.tanh(x_t @ W1 + b1) @ W2 + b2
    y = block.forward(x)
    np.testing.assert_allclose(y, to_numpy(y_t), **TOLERANCE)
    upstream = rng.standard_normal(y.shape)
    (y_t * to_torch(upstream)).sum().backward()
    np.testing.assert_allclose(
        block.backward(upstream), to_numpy(x_t.grad), **TOLERANCE
    )
    ours = [first.grads["W"], first.grads["b"], second.grads["W"], second.grads["b"]]
    for grad, weight_t in zip(ours, weights_t, strict=True):
        np.testing.assert_allclose(grad, to_numpy(weight_t.grad), **TOLERANCE)


def test_residual_refuses_a_body_that_changes_the_shape():
    block = Residual(Dense(3, 4))
    with pytest.raises(ValueError, match=r"Residual: expected the body to keep"):
        block.forward(np.ones((2, 3)))


@pytest.mark.parametrize("bad", ["relu", None, 3])
def test_containers_refuse_what_is_not_a_layer(bad):
    with pytest.raises(ValueError, match=r"Sequential: expected Layers"):
        Sequential(Dense(2, 2), bad)
    with pytest.raises(ValueError, match=r"Residual: expected a Layer"):
        Residual(bad)


# ------------------------------------------------------- gradient checks
def test_gradient_check_of_nested_residual_blocks(data):
    X, y = data
    errors = check_gradients(residual_mlp(), X, y)
    assert "1.body.2.body:Dense.W" in errors
    assert max(errors.values()) < 1e-6


def test_gradient_check_of_a_resnet_with_batchnorm():
    rng = np.random.default_rng(1)
    model = small_resnet()
    for _, layer in walk(model.layers):
        if "b" in layer.params:  # off the ReLU kinks at 0
            layer.params["b"][...] = rng.uniform(0.05, 0.2, layer.params["b"].shape)
    X, y = rng.standard_normal((4, 1, 5, 5)), np.array([0, 1, 1, 0])
    errors = check_gradients(model, X, y, max_entries=16)
    assert "1.body.0:Conv2D.W" in errors and "1.body.1:BatchNorm.gamma" in errors
    assert max(errors.values()) < 1e-5


def test_input_gradients_match_central_differences_and_change_nothing(data):
    X, y = data
    model = residual_mlp()
    before = model.get_weights()
    dx = model.input_gradients(X[:3], y[:3])
    assert dx.shape == (3, 4)

    def loss(x):
        return model.evaluate(x, y[:3])["loss"] * 3  # a mean over 3 rows

    eps, numeric = 1e-6, np.zeros((3, 4))
    for index in np.ndindex(3, 4):
        shifted = X[:3].copy()
        shifted[index] += eps
        plus = loss(shifted)
        shifted[index] -= 2 * eps
        numeric[index] = (plus - loss(shifted)) / (2 * eps)
    np.testing.assert_allclose(dx * 3, numeric, rtol=1e-5, atol=1e-8)
    assert all(
        np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)
    )


def test_a_first_layer_backward_returns_the_input_gradient():
    layer = Dense(3, 2)
    layer.forward(np.ones((1, 3), dtype=np.float32))
    assert layer.backward(np.ones((1, 2), dtype=np.float32)).shape == (1, 3)


# ------------------------------------------------------- saving, resuming
def test_nested_models_save_and_load_bitwise(tmp_path, data):
    X, y = data
    model = residual_mlp(dtype="float32")
    model.train(X, y, epochs=2, batch_size=8, verbose=False)
    model.save(tmp_path / "m.npz")
    loaded = NeuralNetwork.load(tmp_path / "m.npz")
    assert repr(loaded) == repr(model)
    assert np.array_equal(loaded.predict(X), model.predict(X))


def test_a_resnet_resumes_exactly(tmp_path):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((12, 1, 5, 5)), rng.integers(0, 2, 12)
    whole = small_resnet()
    whole.train(X, y, epochs=4, batch_size=4, verbose=0)
    first = small_resnet()
    first.train(X, y, epochs=2, batch_size=4, verbose=0)
    first.save(tmp_path / "half.npz")
    resumed = small_resnet()
    resumed.train(
        X, y, epochs=4, batch_size=4, verbose=0, resume_from=tmp_path / "half.npz"
    )
    for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True):
        assert np.array_equal(a, b)


def nested_file(tmp_path, config_edit):
    model = residual_mlp(dtype="float32")
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    config = json.loads(str(arrays["__config__"]))
    config_edit(config)
    arrays["__config__"] = np.array(json.dumps(config))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    return bad


def deep(config):
    entry = {"type": "Dense", "config": {"input_size": 6, "output_size": 6}}
    for _ in range(40):
        entry = {"type": "Residual", "config": {"body": entry}}
    config["layers"][1] = entry


def wide(config):
    config["layers"][1]["config"]["body"]["config"]["layers"] = [
        {"type": "Activation", "config": {"name": "tanh"}}
    ] * 20_000


def huge(config):
    inner = config["layers"][1]["config"]["body"]["config"]["layers"][0]
    inner["config"]["output_size"] = 2**40


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (deep, r"expected layers nested at most 32 deep"),
        (wide, r"expected at most 10000 layers"),
        (huge, r"layers.1.body.0.params.W: expected a float array of shape"),
        (
            lambda c: c["layers"][1]["config"].update(body=[1, 2]),
            r"expected a layer description \{'type': ..., 'config': \{...\}\}",
        ),
        (
            lambda c: c["layers"][1]["config"]["body"].update(type="Pickle"),
            r"unknown layer type 'Pickle'",
        ),
        (
            lambda c: c["layers"][1]["config"]["body"]["config"].update(extra=1),
            r"Sequential: expected a config \{'layers': \[...\]\}",
        ),
        (
            lambda c: c["layers"][1]["config"].update(
                body={"type": "Dense", "config": {}}
            ),
            r"bad arguments for layer Dense",
        ),
    ],
)
def test_the_loader_treats_a_nested_description_as_untrusted(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        NeuralNetwork.load(nested_file(tmp_path, edit))


def test_fuzzed_nested_descriptions_load_or_raise_value_error(tmp_path):
    rng = np.random.default_rng(0)
    values = [None, -1, 0, 2**70, 1e308, "x", [], {}, [{}], {"type": "Dense"}, True]
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(60):

        def mutate(config, trial=trial):
            target = config["layers"][1]
            for _ in range(int(rng.integers(0, 3))):
                body = target["config"].get("body") or target["config"].get("layers")
                if isinstance(body, list) and body:
                    target = body[int(rng.integers(len(body)))]
                elif isinstance(body, dict):
                    target = body
            key = ["type", "config", "body", "layers"][trial % 4]
            target.setdefault("config", {})[key] = values[
                int(rng.integers(len(values)))
            ]

        try:
            NeuralNetwork.load(nested_file(tmp_path, mutate))
            outcomes["loaded"] += 1
        except ValueError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 60


# ----------------------------------------------------- summary, tracking
def test_summary_indents_nested_layers_and_counts_their_params():
    lines = []
    residual_mlp().summary(print_fn=lines.append)
    table = lines[0]
    assert "Residual(1 layers)" in table and "    Dense(6, 6)" in table
    assert "Total params: 135" in table  # 30 + 2 * 42 + 21


def test_tracking_names_nested_layers_by_path(data):
    X, y = data
    history = residual_mlp().train(X, y, epochs=1, verbose=0, track=True)
    assert "1.body.2.body:Dense/grad_norm" in history
    assert "1:Residual/activation_mean" in history


def test_verbose_accepts_booleans(data, capsys):
    X, y = data
    residual_mlp().train(X, y, epochs=1, verbose=False)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------- Normalization
def test_normalization_matches_a_standard_scaler_and_never_trains():
    rng = np.random.default_rng(4)
    X = rng.normal([0.1, 100.0, 1600.0], [0.05, 10.0, 300.0], (200, 3))
    layer = Normalization()
    layer.adapt(X)
    model = NeuralNetwork("mse", SGD(0.1), seed=0, dtype="float64")
    model.add(layer)
    model.add(Dense(3, 1))
    expected = (X - X.mean(axis=0)) / np.sqrt(X.var(axis=0) + 1e-7)
    np.testing.assert_allclose(layer.forward(X), expected, rtol=1e-12)
    mean = layer.buffers["mean"].copy()
    model.train(X, X[:, :1], epochs=2, verbose=0)
    assert np.array_equal(layer.buffers["mean"], mean)
    assert layer.params == {}


def test_normalization_gradient_is_the_scale():
    layer = Normalization()
    layer.adapt(np.array([[0.0, 1.0], [2.0, 5.0]]))
    layer.forward(np.zeros((1, 2)))
    np.testing.assert_allclose(
        layer.backward(np.ones((1, 2))),
        [[1 / np.sqrt(1 + 1e-7), 1 / np.sqrt(4 + 1e-7)]],
    )


def test_normalization_refuses_bad_input():
    with pytest.raises(ValueError, match=r"num_features: expected a positive integer"):
        Normalization(0)
    layer = Normalization(3)
    with pytest.raises(ValueError, match=r"expected 3 features on the last axis"):
        layer.adapt(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"X: expected finite values"):
        Normalization().adapt(np.array([[1.0], [np.nan]]))
    with pytest.raises(RuntimeError, match=r"call adapt"):
        Normalization().forward(np.ones((2, 2)))
