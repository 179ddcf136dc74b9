"""Layers described as data, and rebuilt from that description.

A layer's description is ``{'type': class name, 'config': get_config()}``; a
container's config holds its children's descriptions, so
:func:`layer_from_config` recurses through :meth:`Layer.from_config`.

Examples
--------
>>> from nnscratch.layers import Dense, Residual
>>> entry = layer_config(Residual(Dense(4, 4)))
>>> entry["type"], entry["config"]["body"]["type"]
('Residual', 'Dense')
>>> layer_from_config(entry)
Residual(Dense(input_size=4, output_size=4, initialization='he', l2_lambda=0.0))
"""

from __future__ import annotations

from typing import Any

from nnscratch.core.layer import LAYER_TYPES, Layer
from nnscratch.core.validation import short_repr


def usable_layer_types() -> dict[str, type[Layer]]:
    """The registered classes a description may name: public and complete
    (a base such as WeightedLayer is registered, but has no forward)."""
    return {
        name: cls
        for name, cls in LAYER_TYPES.items()
        if not name.startswith("_") and cls.forward is not Layer.forward
    }


def layer_config(layer: Layer) -> dict[str, Any]:
    """The JSON-friendly description of ``layer`` (and of its children)."""
    return {"type": type(layer).__name__, "config": layer.get_config()}


def layer_from_config(entry: Any) -> Layer:
    """The (unbuilt) layer an entry describes; a ``ValueError`` for anything
    that is not a description of a known layer with valid arguments."""
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("type"), str)
        and isinstance(entry.get("config"), dict)
    ):
        raise ValueError(
            "expected a layer description {'type': ..., 'config': {...}}. "
            f"Received {short_repr(entry)}"
        )
    known = usable_layer_types()
    name = entry["type"]
    if name not in known:
        raise ValueError(
            f"unknown layer type {short_repr(name)}; known: {sorted(known)} (a custom "
            "class must be defined, i.e. imported, before loading)"
        )
    try:
        return known[name].from_config(entry["config"])
    except TypeError as error:  # a missing or unexpected argument
        raise ValueError(f"bad arguments for layer {name}: {error}") from None
