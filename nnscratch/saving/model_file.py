"""Saving and loading models as ``.npz`` files, without pickle.

File layout (every entry a plain NumPy array):

- ``__config__``: a 0-d unicode array holding JSON: format name and version
  and the model's ``get_config()`` (loss, dtype, seed, optimizer, layers with
  their children nested); after training, the training state (see
  :func:`training_state`).
- ``layers.{path}.params.{name}`` and ``layers.{path}.buffers.{name}``: the
  model's ``state_dict()`` entry ``{path}.{name}``, e.g.
  ``layers.2.body.0.params.W`` (the path of a nested layer, see
  :mod:`nnscratch.core.tree`); ``training.*``: the optimizer's moments and
  early stopping's best weights.

This module talks to a model only through its public ``get_config``,
``from_config``, ``state_dict`` and ``load_state_dict`` (and the training
attributes a resumed run needs); the archive itself is read by
:mod:`nnscratch.saving.npz`, which knows nothing about models.

Loading trusts nothing in the file. The JSON is parsed (never unpickled) and
checked against the schema (:mod:`nnscratch.saving.schema`), nested layers
included, before any constructor runs. The layers are then constructed,
which allocates nothing, and every array they declare must be in the archive
with a header of the right dtype kind and shape and an entry of the size
that implies, before any weight is allocated: the file bounds the memory a
load takes. Then the model is built and every array read, checked finite.
Whatever the file holds, the outcome is a model or a ``ValueError``.
"""

from __future__ import annotations

import errno
import json
import os
from typing import Any

import numpy as np

from nnscratch.core.registry import layer_from_config
from nnscratch.core.tree import declared_shapes, walk
from nnscratch.saving.npz import (
    ARCHIVE_ERRORS,
    NpzReader,
    open_npz,
    short,
    write_npz,
)
from nnscratch.saving.schema import FORMAT, VERSION, check_config

CONFIG_KEY = "__config__"
MAX_CONFIG_BYTES = 1 << 24


class ModelFileNotFoundError(FileNotFoundError, ValueError):
    """``load`` of a path where there is no file: a ``FileNotFoundError``,
    and also the ``ValueError`` that every refused load is."""


def file_keys(layers: list) -> dict[str, str]:
    """Where each ``state_dict`` entry of ``layers`` is stored in the archive."""
    keys = {}
    for path, layer in walk(layers):
        for key in layer.state_shapes():
            store = "buffers" if key in layer.buffer_names else "params"
            keys[f"{path}.{key}"] = f"layers.{path}.{store}.{key}"
    return keys


def training_state(model: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """What a resumed run needs beyond the weights: JSON part and arrays.

    Optimizer moments and step count, the random generator's state (which
    drives shuffling and dropout), the history, and each stateful callback's
    counters and best weights (those with ``get_state``, e.g. EarlyStopping).
    """
    optimizer = model.optimizer
    arrays = {}
    for i, state in enumerate(optimizer.state or []):
        for name, array in state.items():
            arrays[f"training.optimizer.{i}.{name}"] = array
    stoppers = []
    for j, stopper in enumerate(_stateful(model.callbacks)):
        state = stopper.get_state()
        for k, array in enumerate(state.pop("best_weights") or []):
            arrays[f"training.early_stopping.{j}.{k}"] = array
        stoppers.append({**state, "has_best_weights": stopper.best_weights is not None})
    config = {
        "epochs_done": model.epochs_done,
        "epoch_position": model.__dict__.get("epoch_position"),
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


def _stateful(callbacks: list) -> list:
    return [c for c in callbacks if hasattr(c, "get_state") and hasattr(c, "set_state")]


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` through a temporary file and a rename.

    A model that has trained also carries its training state (see
    :func:`training_state`), so that ``train(resume_from=path)`` continues
    the run exactly.
    """
    config = {"format": FORMAT, "version": VERSION, **model.get_config()}
    keys = file_keys(model.layers)
    arrays = {keys[name]: array for name, array in model.state_dict().items()}
    if model.epochs_done or model.__dict__.get("epoch_position") is not None:
        config["training"], training_arrays = training_state(model)
        arrays.update(training_arrays)
    _check_finite_arrays(arrays)
    arrays[CONFIG_KEY] = np.array(json.dumps(config))
    write_npz(path, arrays)


def _check_finite_arrays(arrays: dict[str, np.ndarray]) -> None:
    """Refuse to write a model that no load would accept: NaN or infinity
    in a weight, a buffer or the training state. One sum per array is the
    cheap test (a sum is finite when every term is, barring overflow)."""
    with np.errstate(over="ignore", invalid="ignore"):
        for name, array in arrays.items():
            if np.isfinite(array.sum()) or np.isfinite(array).all():
                continue
            raise ValueError(
                f"cannot save a model holding NaN or infinity (in {name}); "
                "no load would accept the file, so nothing was written"
            )


def load_model(path: str | os.PathLike, model_class: type) -> Any:
    """Rebuild a model of ``model_class`` from ``path``; any doubt about the
    file is a ``ValueError``."""
    shown = short(repr(os.fspath(path)), 200)
    try:
        with open_npz(path) as reader:
            return _rebuild(reader, model_class)
    except FileNotFoundError:
        raise ModelFileNotFoundError(
            errno.ENOENT, f"cannot load model from {shown}: no such file"
        ) from None
    except ValueError as error:
        raise ValueError(f"cannot load model from {shown}: {error}") from None
    except ARCHIVE_ERRORS as error:
        raise ValueError(
            f"cannot load model from {shown}: the file is not a valid "
            f"nnscratch model ({type(error).__name__}: {short(str(error), 200)})"
        ) from None


def _rebuild(reader: NpzReader, model_class: type) -> Any:
    config = _read_config(reader)
    check_config(config)
    # Constructing allocates nothing: the arrays the layers declare are
    # checked against the archive's entries before any is allocated, so
    # the file bounds the memory a load takes.
    layers = [layer_from_config(entry) for entry in config["layers"]]
    shapes, keys = declared_shapes(layers), file_keys(layers)
    names = reader.names() - {CONFIG_KEY}
    _expect_entries(set(keys.values()), names, partial=True)
    for name, shape in shapes.items():
        reader.check_header(keys[name], "f", shape)
    model = model_class.from_config(config)
    training = {}
    if config.get("training") is not None:
        training = _restore_training(model, config["training"])
    _expect_entries(set(keys.values()) | set(training), names, partial=False)
    state = {name: _read_finite(reader, keys[name], shapes[name]) for name in shapes}
    model.load_state_dict(state)
    for key, target in training.items():
        target[...] = _read_finite(reader, key, target.shape)
    return model


def _expect_entries(expected: set[str], found: set[str], partial: bool) -> None:
    """Every expected entry is there (and, unless ``partial``, no other)."""
    missing = sorted(expected - found)
    extra = [] if partial else sorted(found - expected)
    if missing or extra:
        raise ValueError(
            f"expected the arrays the architecture declares. Missing: "
            f"{[short(n) for n in missing[:10]]}; unexpected: "
            f"{[short(n) for n in extra[:10]]}"
            + (" ..." if len(missing) > 10 or len(extra) > 10 else "")
        )


def _read_finite(reader: NpzReader, key: str, shape: tuple[int, ...]) -> np.ndarray:
    array = reader.read(key, "f", shape)
    if not np.isfinite(array).all():
        raise ValueError(f"{key}: expected finite values. Received NaN or infinity")
    return array


def _read_config(reader: NpzReader) -> dict[str, Any]:
    if CONFIG_KEY not in reader.names():
        raise ValueError(f"expected a {CONFIG_KEY!r} entry; this is not a model file")
    raw = reader.read(CONFIG_KEY, "U", (), max_bytes=MAX_CONFIG_BYTES)
    try:
        return json.loads(str(raw[()]))
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"expected {CONFIG_KEY!r} to hold JSON: {error}") from None


def _restore_training(model: Any, training: dict) -> dict[str, np.ndarray]:
    """Set the (checked) training state on ``model``; return the arrays to read.

    Every array is allocated here from the architecture, so the file only
    fills arrays of shapes this code chose.
    """
    model.rng.bit_generator.state = training["rng"]
    model.epochs_done, model.history = training["epochs_done"], training["history"]
    if training.get("epoch_position") is not None:
        model.epoch_position = training["epoch_position"]
    targets = _restore_optimizer(model, training["optimizer"])
    for j, state in enumerate(training["early_stopping"]):
        weights = None
        if state["has_best_weights"]:
            weights = [np.empty_like(a) for a in model.state_dict().values()]
            for k, array in enumerate(weights):
                targets[f"training.early_stopping.{j}.{k}"] = array
        model.early_stopping_states.append(
            {key: state[key] for key in ("wait", "best", "best_epoch")}
            | {"best_weights": weights}
        )
    return targets


def _restore_optimizer(model: Any, saved: dict) -> dict[str, np.ndarray]:
    optimizer = model.optimizer
    optimizer.iterations = saved["iterations"]
    if saved["state"] is None:
        return {}
    params, _ = model.params_and_grads()
    states = [optimizer.initial_state(param) for param in params]
    expected_names = [sorted(state) for state in states]
    if saved["state"] != expected_names:
        raise ValueError(
            "expected optimizer state entries as the architecture implies "
            f"({len(expected_names)} parameters)"
        )
    optimizer.load_state(params, states)
    return {
        f"training.optimizer.{i}.{name}": array
        for i, state in enumerate(states)
        for name, array in state.items()
    }
