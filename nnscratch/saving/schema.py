"""The checks a model file's JSON description passes before anything is built.

The one place where the types and ranges of an untrusted description are
checked, so that what follows (layer constructors, the random generator, the
model) only ever sees values of the types it takes; constructors then check
the values of their own arguments. A nested description (a container's
children) is checked entry by entry, to a bounded depth and width.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnscratch.core.registry import usable_layer_types
from nnscratch.core.validation import DTYPES, short_repr
from nnscratch.optimizers.optimizer import OPTIMIZER_TYPES

FORMAT = "nnscratch-model"
VERSION = 1
MAX_DEPTH = 32
"""Containers nested deeper than this are refused (a real model needs a few)."""
MAX_LAYERS = 10_000
"""Layers a description may hold in all, nested ones included."""
MAX_FEATURE_NAMES = 1_000_000
MAX_NAME_LENGTH = 1_000


def is_int(value: Any, low: int, high: float = math.inf) -> bool:
    """Whether ``value`` is a JSON integer (not a bool) in ``[low, high]``."""
    return (
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_float_like(value: Any) -> bool:
    """A float, or an integer a float holds (``float(2**1100)`` overflows)."""
    return isinstance(value, float) or is_int(
        abs(value) if _is_number(value) else None, 0, 2**63 - 1
    )


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def check_config(config: Any) -> None:
    """Raise ``ValueError`` unless ``config`` has the shape a saved model's
    description has (``NeuralNetwork.get_config`` plus the training state)."""
    expect(
        isinstance(config, dict) and config.get("format") == FORMAT,
        f"expected format {FORMAT!r}; this is not a model file",
    )
    expect(
        is_int(config.get("version"), VERSION, VERSION),
        f"expected format version {VERSION}. "
        f"Received {short_repr(config.get('version'))}",
    )
    for key, kind in (("loss_name", str), ("optimizer", dict), ("layers", list)):
        expect(
            isinstance(config.get(key), kind),
            f"expected {key!r} of type {kind.__name__} in the config",
        )
    dtype = config.get("dtype")
    expect(
        isinstance(dtype, str) and dtype in DTYPES,
        f"expected dtype one of {sorted(DTYPES)}. Received {short_repr(dtype)}",
    )
    seed = config.get("seed")
    expect(
        "seed" in config and (seed is None or is_int(seed, 0)),
        f"expected seed null or an integer >= 0. Received {short_repr(seed)}",
    )
    dtype = np.dtype(dtype)
    check_entry("optimizer", config["optimizer"], OPTIMIZER_TYPES, dtype)
    count = [0]
    for entry in config["layers"]:
        check_layer_entry(entry, dtype, depth=1, count=count)
    names = config.get("feature_names")
    expect(
        names is None
        or isinstance(names, list)
        and len(names) <= MAX_FEATURE_NAMES
        and all(isinstance(n, str) and len(n) <= MAX_NAME_LENGTH for n in names),
        f"expected feature_names null or a list of at most {MAX_FEATURE_NAMES} "
        f"strings of at most {MAX_NAME_LENGTH} characters",
    )
    labels = config.get("class_labels")
    expect(
        labels is None
        or isinstance(labels, list)
        and len(labels) <= MAX_FEATURE_NAMES
        and all(is_int(label, -(2**63), 2**63 - 1) for label in labels),
        f"expected class_labels null or a list of at most {MAX_FEATURE_NAMES} integers",
    )
    tokenizer = config.get("tokenizer")
    expect(
        tokenizer is None
        or isinstance(tokenizer, dict)
        and tokenizer.get("type") == "CharTokenizer"
        and isinstance(tokenizer.get("config"), dict),
        "expected tokenizer null or {'type': 'CharTokenizer', 'config': {...}}",
    )
    if config.get("training") is not None:
        check_training(config["training"])


def check_layer_entry(entry: Any, dtype: np.dtype, depth: int, count: list) -> None:
    """A layer's description and, recursively, those nested in its config."""
    expect(depth <= MAX_DEPTH, f"expected layers nested at most {MAX_DEPTH} deep")
    count[0] += 1
    expect(count[0] <= MAX_LAYERS, f"expected at most {MAX_LAYERS} layers")
    check_entry("layer", entry, usable_layer_types(), dtype)
    for value in entry["config"].values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                check_layer_entry(item, dtype, depth + 1, count)


def check_entry(
    kind: str, entry: Any, registry: dict[str, type], dtype: np.dtype
) -> None:
    """A layer or optimizer: ``{'type': a public registered name, 'config': {...}}``
    whose numbers are finite and within the model's dtype."""
    expect(
        isinstance(entry, dict)
        and isinstance(entry.get("type"), str)
        and isinstance(entry.get("config"), dict),
        f"expected a {kind} entry with 'type' and 'config'",
    )
    name = entry["type"]
    known = {key for key in registry if not key.startswith("_")}
    expect(
        name in known,
        f"unknown {kind} type {short_repr(name)}; known: {sorted(known)} (a custom "
        "class must be defined, i.e. imported, before loading)",
    )
    for key, value in entry["config"].items():
        for number in value if isinstance(value, list) else [value]:
            expect(
                not _is_number(number) or _fits(number, dtype),
                f"{name} {short_repr(key)}: expected a finite number that fits {dtype} "
                f"(an integer: int64). Received {short_repr(number)}",
            )


def _fits(number: int | float, dtype: np.dtype) -> bool:
    """Whether a JSON number is one the model's arithmetic can hold."""
    if isinstance(number, int):
        return abs(number) < 2**63
    return math.isfinite(number) and abs(number) <= float(np.finfo(dtype).max)


def check_training(training: Any) -> None:
    """The training state: counters, history, generator, optimizer, stoppers."""
    expect(isinstance(training, dict), "expected 'training' to be a JSON object")
    epochs_done = training.get("epochs_done")
    position = training.get("epoch_position")
    expect(
        is_int(epochs_done, 0 if position is not None else 1, 2**63 - 1),
        f"expected epochs_done >= 1. Received {short_repr(epochs_done)}",
    )
    if position is not None:
        check_position(position, epochs_done)
    history = training.get("history")
    expect(
        isinstance(history, dict)
        and all(
            isinstance(values, list) and all(_is_float_like(v) for v in values)
            for values in history.values()
        ),
        "expected the history as lists of numbers",
    )
    check_rng(training.get("rng"))
    optimizer = training.get("optimizer")
    names = optimizer.get("state") if isinstance(optimizer, dict) else None
    expect(
        isinstance(optimizer, dict)
        and is_int(optimizer.get("iterations"), 0, 2**63 - 1)
        and "state" in optimizer
        and (
            names is None
            or isinstance(names, list)
            and all(
                isinstance(entry, list) and all(isinstance(n, str) for n in entry)
                for entry in names
            )
        ),
        "expected the optimizer's iterations (an integer from 0 to 2**63 - 1) "
        "and state names in 'training'",
    )
    stoppers = training.get("early_stopping")
    expect(
        isinstance(stoppers, list)
        and all(
            isinstance(state, dict)
            and is_int(state.get("wait"), 0, 2**63 - 1)
            and _is_float_like(state.get("best"))
            and "best_epoch" in state
            and (state["best_epoch"] is None or is_int(state["best_epoch"], 0))
            and isinstance(state.get("has_best_weights"), bool)
            for state in stoppers
        ),
        "expected 'early_stopping' as a list of {wait, best, best_epoch, "
        "has_best_weights}",
    )


def check_rng(rng: Any) -> None:
    """A PCG64 generator's state, as ``bit_generator.state`` gives it."""
    state = rng.get("state") if isinstance(rng, dict) else None
    expect(
        isinstance(state, dict)
        and rng.get("bit_generator") == "PCG64"
        and is_int(state.get("state"), 0, 2**128 - 1)
        and is_int(state.get("inc"), 0, 2**128 - 1)
        and is_int(rng.get("has_uint32"), 0, 1)
        and is_int(rng.get("uinteger"), 0, 2**32 - 1),
        "expected a PCG64 generator state: 128-bit 'state' and 'inc', "
        "'has_uint32' 0 or 1 and a 32-bit 'uinteger'",
    )


def check_position(position: Any, epochs_done: int) -> None:
    """Where an interrupted epoch stopped: that epoch, the batches done, the
    generator's state at its start, and its running sums."""
    totals = position.get("totals") if isinstance(position, dict) else None
    expect(
        isinstance(position, dict)
        and set(position) == {"epoch", "batches_done", "rng", "totals"}
        and position["epoch"] == epochs_done
        and is_int(position["batches_done"], 1, 2**63 - 1)
        and isinstance(totals, dict)
        and set(totals) == {"samples", "loss", "correct"}
        and is_int(totals["samples"], 0, 2**63 - 1)
        and all(_is_float_like(totals[key]) for key in ("loss", "correct")),
        "expected 'epoch_position' as {epoch (= epochs_done), batches_done, "
        "rng, totals {samples, loss, correct}}",
    )
    check_rng(position["rng"])
