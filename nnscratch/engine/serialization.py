"""Saving and loading models as ``.npz`` files, without pickle.

File layout (every entry a plain NumPy array):

- ``__config__``: a 0-d unicode array holding JSON: format name and version,
  ``loss_name``, ``dtype``, ``seed``, the optimizer's type and arguments, and
  each layer's type and constructor arguments; after training, the training
  state (see :func:`training_state`).
- ``layers.{i}.params.{name}`` and ``layers.{i}.buffers.{name}``: the arrays;
  ``training.*``: the optimizer's moments and early stopping's best weights.

Loading trusts nothing in the file. The JSON is parsed (never unpickled) and
checked against the schema in one place (:func:`check_config`): types,
ranges, and layers no larger than the file itself, before any constructor
runs. Every layer is then rebuilt through its constructor's checks, and every
array must be present, of a float dtype, of the shape the architecture
implies and of the size its header declares before its data is read (so an
object array, which only pickle could read, is refused unread), and finite.
Whatever the file holds, the outcome is a model or a ``ValueError``.
"""

from __future__ import annotations

import ast
import json
import lzma
import math
import os
import re
import struct
import zipfile
import zlib
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from nnscratch.core.layer import LAYER_TYPES, Layer
from nnscratch.engine.callbacks import EarlyStopping
from nnscratch.optimizers.optimizer import OPTIMIZER_TYPES
from nnscratch.utils.io import atomic_write

if TYPE_CHECKING:
    from nnscratch.engine.model import NeuralNetwork

FORMAT = "nnscratch-model"
VERSION = 1
CONFIG_KEY = "__config__"
NPY_MAGIC = b"\x93NUMPY"
# Room for an .npy header beyond the array bytes themselves.
MAX_HEADER_BYTES = 65536
MAX_CONFIG_BYTES = 1 << 24
MAX_FLOAT_BYTES = np.dtype(np.longdouble).itemsize
# What zipfile raises for a damaged archive, besides ValueError: a bad CRC or
# header, a compression method it cannot undo, data that does not inflate.
ARCHIVE_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    RuntimeError,
)


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
    shown = repr(os.fspath(path))
    try:
        # Opening the file ourselves closes it even when reading fails midway.
        with open(path, "rb") as handle:
            if not zipfile.is_zipfile(handle):
                raise ValueError("expected an .npz (zip) archive; this is not one")
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                return _rebuild(archive, os.fstat(handle.fileno()).st_size)
    except ValueError as error:
        raise ValueError(f"cannot load model from {shown}: {error}") from None
    except ARCHIVE_ERRORS as error:
        raise ValueError(
            f"cannot load model from {shown}: the file is not a valid "
            f"nnscratch model ({type(error).__name__}: {error})"
        ) from None


def _rebuild(archive: zipfile.ZipFile, file_bytes: int) -> NeuralNetwork:
    from nnscratch.engine.model import NeuralNetwork

    entries = _entry_names(archive)
    config = _read_config(archive, entries)
    check_config(config, file_bytes)
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
    found = set(entries) - {CONFIG_KEY}
    if found != set(expected):
        missing, extra = sorted(set(expected) - found), sorted(found - set(expected))
        raise ValueError(
            f"expected the arrays the architecture declares. Missing: {missing}; "
            f"unexpected: {extra}"
        )
    for key, target in expected.items():
        array = _read_array(archive, entries[key], key, "f", target.shape)
        if not np.isfinite(array).all():
            raise ValueError(f"{key}: expected finite values. Received NaN or infinity")
        target[...] = array
    return model


def _entry_names(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's entries by array name (``'x.npy'`` holds array ``'x'``)."""
    infos = archive.infolist()
    entries = {info.filename.removesuffix(".npy"): info for info in infos}
    if len(entries) != len(infos):
        raise ValueError("expected every entry once. Received a name twice")
    return entries


def _read_config(
    archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo]
) -> dict[str, Any]:
    if CONFIG_KEY not in entries:
        raise ValueError(f"expected a {CONFIG_KEY!r} entry; this is not a model file")
    raw = _read_array(archive, entries[CONFIG_KEY], CONFIG_KEY, "U", ())
    try:
        return json.loads(str(raw[()]))
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"expected {CONFIG_KEY!r} to hold JSON: {error}") from None


# ---------------------------------------------------------------- the schema
def _is_int(value: Any, low: int, high: float = math.inf) -> bool:
    """Whether ``value`` is a JSON integer (not a bool) in ``[low, high]``."""
    return (
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def check_config(config: Any, file_bytes: int) -> None:
    """Raise ``ValueError`` unless ``config`` has the shape :func:`model_config`
    (and :func:`training_state`) give it.

    The one place where the JSON's types and ranges are checked, so that what
    follows (constructors, the random generator, ``NeuralNetwork``) only ever
    sees values of the types it takes; constructors then check the values of
    their own arguments.
    """
    from nnscratch.engine.model import DTYPES

    _expect(
        isinstance(config, dict) and config.get("format") == FORMAT,
        f"expected format {FORMAT!r}; this is not a model file",
    )
    _expect(
        _is_int(config.get("version"), VERSION, VERSION),
        f"expected format version {VERSION}. Received {config.get('version')!r}",
    )
    for key, kind in (("loss_name", str), ("optimizer", dict), ("layers", list)):
        _expect(
            isinstance(config.get(key), kind),
            f"expected {key!r} of type {kind.__name__} in the config",
        )
    dtype = config.get("dtype")
    _expect(
        isinstance(dtype, str) and dtype in DTYPES,
        f"expected dtype one of {sorted(DTYPES)}. Received {dtype!r}",
    )
    seed = config.get("seed")
    _expect(
        "seed" in config and (seed is None or _is_int(seed, 0)),
        f"expected seed null or an integer >= 0. Received {seed!r}",
    )
    _check_entry("optimizer", config["optimizer"], OPTIMIZER_TYPES, np.dtype(dtype))
    weights = 0
    for entry in config["layers"]:
        _check_entry("layer", entry, LAYER_TYPES, np.dtype(dtype))
        # Every weight is stored in the file, in 2 bytes at least (float16):
        # a layer cannot declare more weights than the file has bytes.
        weights += _declared_weights(entry)
        _expect(
            weights <= file_bytes,
            f"expected layers whose weights fit in the file's {file_bytes} bytes. "
            f"Received layers declaring {weights} weights (up to {entry['type']})",
        )
    if config.get("training") is not None:
        _check_training(config["training"])


def _check_entry(
    kind: str, entry: Any, registry: dict[str, type], dtype: np.dtype
) -> None:
    """A layer or optimizer: ``{'type': a public registered name, 'config': {...}}``
    whose numbers are finite and within the model's dtype."""
    _expect(
        isinstance(entry, dict)
        and isinstance(entry.get("type"), str)
        and isinstance(entry.get("config"), dict),
        f"expected a {kind} entry with 'type' and 'config'",
    )
    name = entry["type"]
    known = _usable_types(registry)
    _expect(
        name in known,
        f"unknown {kind} type {name!r}; known: {sorted(known)} (a custom "
        "class must be defined, i.e. imported, before loading)",
    )
    for key, value in entry["config"].items():
        for number in value if isinstance(value, list) else [value]:
            _expect(
                not _is_number(number) or _fits(number, dtype),
                f"{name} {key}: expected a finite number that fits {dtype} "
                f"(an integer: int64). Received {number!r}",
            )


def _usable_types(registry: dict[str, type]) -> dict[str, type]:
    """The registered classes a file may name: public ones that are complete
    (a base such as WeightedLayer is registered, but has no forward)."""
    return {
        name: cls
        for name, cls in registry.items()
        if not name.startswith("_")
        and not (issubclass(cls, Layer) and cls.forward is Layer.forward)
    }


def _fits(number: int | float, dtype: np.dtype) -> bool:
    """Whether a JSON number is one the model's arithmetic can hold."""
    if isinstance(number, int):
        return abs(number) < 2**63
    return math.isfinite(number) and abs(number) <= float(np.finfo(dtype).max)


def _pair(value: Any) -> list:
    return value if isinstance(value, list) else [value, value]


# The sizes that set how many numbers a built-in layer's constructor allocates
# (and fills with random starting weights), read from its arguments alone: a
# file declaring Dense(2, 10**9) is refused before any constructor runs. A
# type not listed holds no arrays, or is a user's own class.
WEIGHT_SIZES = {
    "Dense": lambda c: [c.get("input_size"), c.get("output_size")],
    "Conv2D": lambda c: [
        c.get("in_channels"),
        c.get("out_channels"),
        *_pair(c.get("kernel_size")),
    ],
    "BatchNorm": lambda c: [c.get("num_features")],
}


def _declared_weights(entry: dict) -> int:
    """The product of a layer's sizes (those that are not positive integers
    count 1: the constructor refuses them)."""
    sizes = WEIGHT_SIZES.get(entry["type"], lambda config: [])(entry["config"])
    return math.prod(size for size in sizes if _is_int(size, 1))


def _check_training(training: Any) -> None:
    """The part :func:`training_state` writes: counters, history, generator."""
    _expect(isinstance(training, dict), "expected 'training' to be a JSON object")
    epochs_done = training.get("epochs_done")
    _expect(
        _is_int(epochs_done, 1),
        f"expected epochs_done >= 1. Received {epochs_done!r}",
    )
    history = training.get("history")
    _expect(
        isinstance(history, dict)
        and all(
            isinstance(values, list) and all(_is_number(v) for v in values)
            for values in history.values()
        ),
        "expected the history as lists of numbers",
    )
    rng = training.get("rng")
    state = rng.get("state") if isinstance(rng, dict) else None
    _expect(
        isinstance(state, dict)
        and rng.get("bit_generator") == "PCG64"
        and _is_int(state.get("state"), 0, 2**128 - 1)
        and _is_int(state.get("inc"), 0, 2**128 - 1)
        and _is_int(rng.get("has_uint32"), 0, 1)
        and _is_int(rng.get("uinteger"), 0, 2**32 - 1),
        "expected a PCG64 generator state: 128-bit 'state' and 'inc', "
        "'has_uint32' 0 or 1 and a 32-bit 'uinteger'",
    )
    optimizer = training.get("optimizer")
    names = optimizer.get("state") if isinstance(optimizer, dict) else None
    _expect(
        isinstance(optimizer, dict)
        and _is_int(optimizer.get("iterations"), 0)
        and "state" in optimizer
        and (
            names is None
            or isinstance(names, list)
            and all(
                isinstance(entry, list) and all(isinstance(n, str) for n in entry)
                for entry in names
            )
        ),
        "expected the optimizer's iterations (an integer >= 0) and state names "
        "in 'training'",
    )
    stoppers = training.get("early_stopping")
    _expect(
        isinstance(stoppers, list)
        and all(
            isinstance(state, dict)
            and _is_int(state.get("wait"), 0)
            and _is_number(state.get("best"))
            and "best_epoch" in state
            and (state["best_epoch"] is None or _is_int(state["best_epoch"], 0))
            and isinstance(state.get("has_best_weights"), bool)
            for state in stoppers
        ),
        "expected 'early_stopping' as a list of {wait, best, best_epoch, "
        "has_best_weights}",
    )


# --------------------------------------------------------------- rebuilding
def _construct(kind: str, entry: dict, registry: dict[str, type]) -> Any:
    """Build a checked layer or optimizer entry from its constructor."""
    try:
        return _usable_types(registry)[entry["type"]](**entry["config"])
    except TypeError as error:  # a missing or unexpected argument
        raise ValueError(f"bad arguments for {kind} {entry['type']}: {error}") from None


def _read_array(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    key: str,
    kind: str,
    shape: tuple[int, ...],
) -> np.ndarray:
    """Read one ``.npy`` entry, its header first.

    An entry declaring more bytes than such an array can take, or whose
    dtype kind or shape is not the expected one, or whose size is not what
    its header declares, is refused before its data is read.
    """
    limit = MAX_HEADER_BYTES + (
        MAX_CONFIG_BYTES if kind == "U" else math.prod(shape) * MAX_FLOAT_BYTES
    )
    if info.file_size > limit:
        raise ValueError(
            f"{key}: declares {info.file_size} bytes, expected at most {limit}"
        )
    with archive.open(info) as entry:
        header_size, dtype, declared_shape, fortran_order = _read_npy_header(entry, key)
        if dtype.kind != kind or declared_shape != shape:
            expected = {"f": "a float array", "U": "a JSON string"}[kind]
            raise ValueError(
                f"{key}: expected {expected} of shape {shape}. Received "
                f"{dtype} of shape {declared_shape}"
            )
        data_bytes = math.prod(shape) * dtype.itemsize
        if info.file_size != header_size + data_bytes:
            raise ValueError(
                f"{key}: declares {info.file_size} bytes, expected "
                f"{header_size + data_bytes} for its header and data"
            )
        # Reading to the end also makes zipfile check the entry's CRC.
        data = entry.read(data_bytes + 1)
    if len(data) != data_bytes:
        raise ValueError(f"{key}: expected {data_bytes} bytes. Received {len(data)}")
    return np.frombuffer(data, dtype).reshape(
        shape, order="F" if fortran_order else "C"
    )


def _read_npy_header(entry: IO[bytes], key: str) -> tuple[int, np.dtype, tuple, bool]:
    """Parse an ``.npy`` header (format 1.0, 2.0 or 3.0) without trusting it.

    Returns the header's size in bytes, the dtype, the shape and whether the
    data is in Fortran order. The header is a Python literal, read with
    ``ast.literal_eval`` (no code runs), at most ``MAX_HEADER_BYTES`` long.
    numpy's own reader is not used: a damaged header made it raise
    SyntaxError or tokenize.TokenError, and an old alias in it a warning.
    """
    prefix = entry.read(8)
    version = prefix[6] if len(prefix) == 8 and prefix[:6] == NPY_MAGIC else None
    if version not in (1, 2, 3):
        raise ValueError(f"{key}: expected an .npy entry (format 1.0 to 3.0)")
    length_bytes = 2 if version == 1 else 4
    length = int.from_bytes(entry.read(length_bytes), "little")
    if length > MAX_HEADER_BYTES:
        raise ValueError(
            f"{key}: expected an .npy header of at most {MAX_HEADER_BYTES} bytes"
        )
    text = entry.read(length)
    try:
        header = ast.literal_eval(text.decode("utf-8" if version == 3 else "latin-1"))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        header = None
    if not (
        isinstance(header, dict)
        and set(header) == {"descr", "fortran_order", "shape"}
        and isinstance(header["descr"], str)
        and isinstance(header["fortran_order"], bool)
        and isinstance(header["shape"], tuple)
        and all(_is_int(size, 0) for size in header["shape"])
    ):
        raise ValueError(
            f"{key}: expected an .npy header with descr, fortran_order and shape"
        )
    return (
        8 + length_bytes + length,
        _plain_dtype(header["descr"], key),
        header["shape"],
        header["fortran_order"],
    )


def _plain_dtype(descr: str, key: str) -> np.dtype:
    """The dtype a header names, if it is a plain one such as ``'<f4'``.

    A byte order, a kind letter (bool, integer, float, complex, bytes or
    text) and a size: nothing structured, no objects (which only pickle
    could read) and no alias numpy would warn about.
    """
    if descr.lstrip("<>|=").startswith("O"):
        raise ValueError(
            f"{key}: holds Python objects, which only pickle could read; "
            "pickled data is never loaded"
        )
    try:
        if re.fullmatch(r"[<>|=]?[biufcSU][0-9]{1,9}", descr):
            return np.dtype(descr)
    except TypeError:  # a size the kind does not have, e.g. 'f3'
        pass
    raise ValueError(f"{key}: expected a plain array dtype. Received {descr!r}")


def _restore_training(model: NeuralNetwork, training: dict) -> dict[str, np.ndarray]:
    """Set the (checked) training state on ``model``; return the arrays to read.

    Every array is allocated here from the architecture, so the file only
    fills arrays of shapes this code chose.
    """
    model.rng.bit_generator.state = training["rng"]
    model.epochs_done, model.history = training["epochs_done"], training["history"]
    targets = _restore_optimizer(model, training["optimizer"])
    for j, state in enumerate(training["early_stopping"]):
        weights = None
        if state["has_best_weights"]:
            weights = [np.empty_like(a) for a in model._state_arrays()]
            for k, array in enumerate(weights):
                targets[f"training.early_stopping.{j}.{k}"] = array
        model.early_stopping_states.append(
            {key: state[key] for key in ("wait", "best", "best_epoch")}
            | {"best_weights": weights}
        )
    return targets


def _restore_optimizer(model: NeuralNetwork, saved: dict) -> dict[str, np.ndarray]:
    optimizer = model.optimizer
    optimizer.iterations = saved["iterations"]
    if saved["state"] is None:
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
