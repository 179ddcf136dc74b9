"""save/load: exact round trips, atomic writes, and refusal of untrusted files."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from nnscratch import SGD, Activation, Adam, Dense, Dropout, NeuralNetwork
from nnscratch.utils.data import get_toy_data


def trained_model(dtype="float32"):
    X, y, _, _ = get_toy_data(n_samples=200)
    model = NeuralNetwork(
        loss_name="bce", optimizer=Adam(0.02, beta1=0.8), seed=5, dtype=dtype
    )
    model.add(Dense(2, 8, initialization="xavier", l2_lambda=0.01))
    model.add(Activation("tanh"))
    model.add(Dropout(0.1))
    model.add(Dense(8, 1))
    model.add(Activation("sigmoid"))
    model.train(X, y, epochs=3, verbose=0)
    return model, X, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_exact(tmp_path, dtype):
    model, X, y = trained_model(dtype)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers
    ]
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(X), loaded.predict(X))
    assert loaded.evaluate(X, y) == model.evaluate(X, y)
    assert (loaded.loss_name, loaded.dtype, loaded.seed) == ("bce", np.dtype(dtype), 5)
    assert type(loaded.optimizer) is Adam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    loaded.train(X, y, epochs=1, verbose=0)  # a loaded model trains on


def test_save_writes_exactly_the_given_path_atomically(tmp_path):
    model, _, _ = trained_model()
    path = tmp_path / "weights.bin"
    model.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]
    old = path.read_bytes()

    # A save that fails midway leaves the previous file intact and no temp file.
    original_savez = np.savez

    def failing_savez(handle, **arrays):
        handle.write(b"partial")
        raise OSError("disk full")

    np.savez = failing_savez
    try:
        with pytest.raises(OSError, match="disk full"):
            model.save(path)
    finally:
        np.savez = original_savez
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]


def test_file_is_plain_arrays_without_pickle(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)
        config = json.loads(str(archive["__config__"]))
    assert config["layers"][0] == {
        "type": "Dense",
        "config": {
            "input_size": 2,
            "output_size": 8,
            "initialization": "xavier",
            "l2_lambda": 0.01,
        },
    }


def rewrite(path, target, change):
    """Copy the archive at ``path`` to ``target`` with entries changed by ``change``."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    change(arrays)
    with open(target, "wb") as handle:
        np.savez(handle, **arrays)


def edit_config(edit):
    def change(arrays):
        config = json.loads(str(arrays["__config__"]))
        edit(config)
        arrays["__config__"] = np.array(json.dumps(config))

    return change


CORRUPTIONS = {
    "missing array": (
        lambda a: a.pop("layers.0.params.W"),
        r"Missing: \['layers.0.params.W'\]",
    ),
    "extra array": (lambda a: a.update(extra=np.ones(2)), r"unexpected: \['extra'\]"),
    "mis-shaped array": (
        lambda a: a.update({"layers.3.params.b": np.ones(3)}),
        r"layers.3.params.b: expected a float array of shape \(1,\). "
        r"Received float64 of shape \(3,\)",
    ),
    "integer array": (
        lambda a: a.update({"layers.3.params.b": np.ones(1, dtype=np.int64)}),
        r"expected a float array",
    ),
    "NaN weights": (
        lambda a: a.update({"layers.0.params.b": np.full(8, np.nan)}),
        r"layers.0.params.b: expected finite values",
    ),
    "no config": (lambda a: a.pop("__config__"), r"expected a '__config__' entry"),
    "config not JSON": (
        lambda a: a.update(__config__=np.array("{not json")),
        r"expected '__config__' to hold JSON",
    ),
    "config as numbers": (lambda a: a.update(__config__=np.arange(3)), r"JSON string"),
    "wrong format": (
        edit_config(lambda c: c.update(format="other")),
        r"expected format 'nnscratch-model'",
    ),
    "future version": (
        edit_config(lambda c: c.update(version=99)),
        r"expected format version 1. Received 99",
    ),
    "unknown layer": (
        edit_config(lambda c: c["layers"][1].update(type="Evil")),
        r"unknown layer type 'Evil'",
    ),
    "bad layer argument": (
        edit_config(lambda c: c["layers"][0]["config"].update(output_size=-4)),
        r"output_size: expected a positive integer. Received: -4",
    ),
    "unexpected layer argument": (
        edit_config(lambda c: c["layers"][0]["config"].update(code="rm -rf")),
        r"bad arguments for layer Dense",
    ),
    "unknown loss": (
        edit_config(lambda c: c.update(loss_name="hinge")),
        r"loss_name: expected one of",
    ),
    "unknown optimizer": (
        edit_config(lambda c: c["optimizer"].update(type="os.system")),
        r"unknown optimizer type 'os.system'",
    ),
    "layers not a list": (
        edit_config(lambda c: c.update(layers="Dense")),
        r"expected 'layers' of type list",
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_load_refuses_a_corrupt_file(tmp_path, case):
    change, message = CORRUPTIONS[case]
    model, _, _ = trained_model()
    model.save(tmp_path / "good.npz")
    rewrite(tmp_path / "good.npz", tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=message):
        NeuralNetwork.load(tmp_path / "bad.npz")


def test_load_refuses_truncated_and_garbage_files(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 5):
        (tmp_path / "cut.npz").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cannot load model"):
            NeuralNetwork.load(tmp_path / "cut.npz")
    (tmp_path / "junk.npz").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="cannot load model"):
        NeuralNetwork.load(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="cannot load model"):
        NeuralNetwork.load(tmp_path / "does-not-exist.npz")


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle executed')",))


def test_load_never_unpickles(tmp_path):
    (tmp_path / "pickled.npz").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ValueError, match="cannot load model"):
        NeuralNetwork.load(tmp_path / "pickled.npz")
    # An .npz whose entry is an object array (which only pickle can read).
    model, _, _ = trained_model()
    model.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["layers.0.params.b"] = np.array([Boom()], dtype=object)
    np.savez(tmp_path / "objects.npz", **arrays)
    with pytest.raises(ValueError, match="cannot load model.*pickled|Object arrays"):
        NeuralNetwork.load(tmp_path / "objects.npz")
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match=r"expected an .npz \(zip\) archive"):
        NeuralNetwork.load(single)


def test_load_refuses_an_entry_declaring_an_absurd_size(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    # Well-compressed zeros: a small file that would expand to 80 MB.
    arrays["layers.3.params.b"] = np.zeros(10_000_000)
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as bomb:
        for name, array in arrays.items():
            with bomb.open(f"{name}.npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, array)
    assert (tmp_path / "bomb.npz").stat().st_size < 1_000_000
    with pytest.raises(ValueError, match=r"layers.3.params.b: declares 80000128 bytes"):
        NeuralNetwork.load(tmp_path / "bomb.npz")


def test_sgd_model_round_trips_its_optimizer(tmp_path):
    model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.3, momentum=0.7))
    model.add(Dense(2, 2))
    model.save(tmp_path / "sgd.npz")
    loaded = NeuralNetwork.load(tmp_path / "sgd.npz")
    assert repr(loaded.optimizer) == "SGD(learning_rate=0.3, momentum=0.7)"


def test_a_learning_rate_annealed_to_zero_round_trips(tmp_path):
    # CosineAnnealing with eta_min=0 ends at exactly 0, as in torch.
    model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.0))
    model.add(Dense(2, 2))
    model.save(tmp_path / "zero.npz")
    assert NeuralNetwork.load(tmp_path / "zero.npz").optimizer.learning_rate == 0.0


def test_saved_files_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        model = NeuralNetwork(loss_name="mse")
        model.add(Dense(2, 2))
        model.save(tmp_path / "m.npz")
    finally:
        os.umask(mask)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o644
