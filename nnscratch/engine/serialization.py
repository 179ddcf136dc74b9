"""Saving and loading models as ``.npz`` files, without pickle.

File layout (every entry a plain NumPy array):

- ``__config__``: a 0-d unicode array holding JSON: format name and version,
  ``loss_name``, ``dtype``, ``seed``, the optimizer's type and arguments, and
  each layer's type, constructor arguments and array shapes.
- ``layers.{i}.params.{name}`` and ``layers.{i}.buffers.{name}``: the arrays.

Loading trusts nothing in the file: JSON is parsed (never unpickled), every
layer is rebuilt through its constructor's checks, and every array must be
present, of a float dtype, finite and of the shape the architecture implies
before it is read; a size declared larger than that is refused unread.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.layer import LAYER_TYPES
from nnscratch.engine.callbacks import EarlyStopping
from nnscratch.optimizers.optimizer import OPTIMIZER_TYPES
from nnscratch.utils.io import atomic_write

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork

FORMAT = "nnscratch-model"
VERSION = 1
CONFIG_KEY = "__config__"
# Room for an .npy header beyond the array bytes themselves.
MAX_HEADER_BYTES = 65536


def _array_key(index: int, store: str, name: str) -> str:
    return f"layers.{index}.{store}.{name}"


def model_config(model: NeuralNetwork) -> dict[str, Any]:
    """Everything but the arrays, as JSON-friendly data."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "loss_name": model.loss_name,
        "dtype": model.dtype.name,
        "seed": model.seed,
        "optimizer": {
            "type": type(model.optimizer).__name__,
            "config": model.optimizer.get_config(),
        },
        "layers": [
            {"type": type(layer).__name__, "config": layer.get_config()}
            for layer in model.layers
        ],
    }


def training_state(model: NeuralNetwork) -> tuple[dict, dict[str, np.ndarray]]:
    """What a resumed run needs beyond the weights: JSON part and arrays.

    Optimizer moments and step count, the random generator's state (which
    drives shuffling and dropout), the history, and each early stopper's
    counters and best weights.
    """
    optimizer = model.optimizer
    arrays = {}
    for i, state in enumerate(optimizer.state or []):
        for name, array in state.items():
            arrays[f"training.optimizer.{i}.{name}"] = array
    stoppers = []
    for j, stopper in enumerate(
        c for c in model.callbacks if isinstance(c, EarlyStopping)
    ):
        state = stopper.get_state()
        for k, array in enumerate(state.pop("best_weights") or []):
            arrays[f"training.early_stopping.{j}.{k}"] = array
        stoppers.append({**state, "has_best_weights": stopper.best_weights is not None})
    config = {
        "epochs_done": model.epochs_done,
        "history": model.history,
        "rng": model.rng.bit_generator.state,
        "optimizer": {
            "iterations": optimizer.iterations,
            "state": None
            if optimizer.state is None
            else [sorted(state) for state in optimizer.state],
        },
        "early_stopping": stoppers,
    }
    return config, arrays


def save_model(model: NeuralNetwork, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` through a temporary file and a rename.

    A model that has trained also carries its training state (see
    :func:`training_state`), so that ``train(resume_from=path)`` continues
    the run exactly.
    """
    config = model_config(model)
    arrays = {}
    for index, layer in enumerate(model.layers):
        for store_name in ("params", "buffers"):
            for name, array in getattr(layer, store_name).items():
                arrays[_array_key(index, store_name, name)] = array
    if model.epochs_done:
        config["training"], training_arrays = training_state(model)
        arrays.update(training_arrays)
    arrays[CONFIG_KEY] = np.array(json.dumps(config))
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def load_model(path: str | os.PathLike) -> NeuralNetwork:
    """Rebuild a model from ``path``; any doubt about the file is a ``ValueError``."""
    try:
        # Opening the file ourselves closes it even when np.load fails midway.
        with open(path, "rb") as handle:
            if not zipfile.is_zipfile(handle):
                raise ValueError("expected an .npz (zip) archive; this is not one")
            handle.seek(0)
            with np.load(handle, allow_pickle=False) as archive:
                return _rebuild(archive)
    except ValueError as error:
        raise ValueError(
            f"cannot load model from {os.fspath(path)!r}: {error}"
        ) from None
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        KeyError,
        TypeError,
        json.JSONDecodeError,
        RuntimeError,
        io.UnsupportedOperation,
    ) as error:
        raise ValueError(
            f"cannot load model from {os.fspath(path)!r}: the file is not a valid "
            f"nnscratch model ({type(error).__name__}: {error})"
        ) from None


def _rebuild(archive: np.lib.npyio.NpzFile) -> NeuralNetwork:
    from nnscratch.engine.model import NeuralNetwork

    config = _read_config(archive)
    optimizer = _construct("optimizer", config["optimizer"], OPTIMIZER_TYPES)
    model = NeuralNetwork(
        loss_name=config["loss_name"],
        optimizer=optimizer,
        seed=config["seed"],
        dtype=config["dtype"],
    )
    for entry in config["layers"]:
        model.add(_construct("layer", entry, LAYER_TYPES))

    expected = {
        _array_key(index, store_name, name): array
        for index, layer in enumerate(model.layers)
        for store_name in ("params", "buffers")
        for name, array in getattr(layer, store_name).items()
    }
    if config.get("training") is not None:
        expected.update(_restore_training(model, config["training"]))
    found = set(archive.files) - {CONFIG_KEY}
    if found != set(expected):
        missing, extra = sorted(set(expected) - found), sorted(found - set(expected))
        raise ValueError(
            f"expected the arrays the architecture declares. Missing: {missing}; "
            f"unexpected: {extra}"
        )
    for key, target in expected.items():
        target[...] = _read_array(archive, key, target)
    return model


def _read_config(archive: np.lib.npyio.NpzFile) -> dict[str, Any]:
    if CONFIG_KEY not in archive.files:
        raise ValueError(f"expected a {CONFIG_KEY!r} entry; this is not a model file")
    raw = _read_array(archive, CONFIG_KEY, None)
    if raw.dtype.kind != "U" or raw.shape != ():
        raise ValueError(f"expected {CONFIG_KEY!r} to be a JSON string")
    try:
        config = json.loads(str(raw[()]))
    except json.JSONDecodeError as error:
        raise ValueError(f"expected {CONFIG_KEY!r} to hold JSON: {error}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"expected format {FORMAT!r}; this is not a model file")
    if config.get("version") != VERSION:
        raise ValueError(
            f"expected format version {VERSION}. Received {config.get('version')!r}"
        )
    for key, kind in (("loss_name", str), ("optimizer", dict), ("layers", list)):
        if not isinstance(config.get(key), kind):
            raise ValueError(f"expected {key!r} of type {kind.__name__} in the config")
    return config


def _construct(kind: str, entry: Any, registry: dict[str, type]) -> Any:
    """Build a layer or optimizer from ``{'type': name, 'config': kwargs}``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"expected a {kind} entry with 'type' and 'config'")
    name = entry.get("type")
    if name not in registry:
        raise ValueError(
            f"unknown {kind} type {name!r}; known: {sorted(registry)} (a custom "
            "class must be defined, i.e. imported, before loading)"
        )
    try:
        return registry[name](**entry["config"])
    except TypeError as error:
        raise ValueError(f"bad arguments for {kind} {name}: {error}") from None


def _read_array(
    archive: np.lib.npyio.NpzFile, key: str, target: np.ndarray | None
) -> np.ndarray:
    """Read one entry, refusing a declared size larger than expected, unread."""
    info = archive.zip.getinfo(f"{key}.npy")
    limit = MAX_HEADER_BYTES + (target.nbytes if target is not None else 1 << 24)
    if info.file_size > limit:
        raise ValueError(
            f"{key}: declares {info.file_size} bytes, expected at most {limit}"
        )
    array = archive[key]
    if target is None:
        return array
    if array.dtype.kind != "f" or array.shape != target.shape:
        raise ValueError(
            f"{key}: expected a float array of shape {target.shape}. Received "
            f"{array.dtype} of shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{key}: expected finite values. Received NaN or infinity")
    return array


def _restore_training(model: NeuralNetwork, training: Any) -> dict[str, np.ndarray]:
    """Set the saved training state on ``model``; return the arrays to read.

    Every array is allocated here from the architecture, so the file only
    fills arrays of shapes this code chose.
    """
    if not isinstance(training, dict):
        raise ValueError("expected 'training' to be a JSON object")
    epochs_done = training.get("epochs_done")
    history = training.get("history")
    if (
        not isinstance(epochs_done, int)
        or isinstance(epochs_done, bool)
        or (epochs_done < 1)
    ):
        raise ValueError(f"expected epochs_done >= 1. Received {epochs_done!r}")
    if not isinstance(history, dict) or not all(
        isinstance(values, list) and all(isinstance(v, float | int) for v in values)
        for values in history.values()
    ):
        raise ValueError("expected the history as lists of numbers")
    try:
        model.rng.bit_generator.state = training.get("rng")
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"expected a PCG64 generator state: {error}") from None
    model.epochs_done, model.history = epochs_done, history
    targets = _restore_optimizer(model, training.get("optimizer"))
    stoppers = training.get("early_stopping")
    if not isinstance(stoppers, list):
        raise ValueError("expected 'early_stopping' to be a list")
    for j, state in enumerate(stoppers):
        if not isinstance(state, dict) or not {"wait", "best", "best_epoch"} <= set(
            state
        ):
            raise ValueError("expected early_stopping entries with wait and best")
        weights = None
        if state.get("has_best_weights"):
            weights = [np.empty_like(a) for a in model._state_arrays()]
            for k, array in enumerate(weights):
                targets[f"training.early_stopping.{j}.{k}"] = array
        model.early_stopping_states.append(
            {key: state[key] for key in ("wait", "best", "best_epoch")}
            | {"best_weights": weights}
        )
    return targets


def _restore_optimizer(model: NeuralNetwork, saved: Any) -> dict[str, np.ndarray]:
    optimizer = model.optimizer
    if not isinstance(saved, dict) or not isinstance(saved.get("iterations"), int):
        raise ValueError("expected the optimizer's iterations in 'training'")
    optimizer.iterations = saved["iterations"]
    if saved.get("state") is None:
        return {}
    params, _ = model._params_and_grads()
    states = [optimizer.initial_state(param) for param in params]
    expected_names = [sorted(state) for state in states]
    if saved["state"] != expected_names:
        raise ValueError(
            f"expected optimizer state entries {expected_names}. "
            f"Received {saved['state']!r}"
        )
    optimizer.state = states
    optimizer._shapes = [param.shape for param in params]
    return {
        f"training.optimizer.{i}.{name}": array
        for i, state in enumerate(states)
        for name, array in state.items()
    }
