"""One walker over a tree of layers, which everything that visits a model uses.

A model is a list of layers, some of which hold layers of their own
(:meth:`Layer.children`). Parameters and gradients, buffers, dtype, building,
penalties, the summary, tracking, gradient checks and saving all come from
:func:`walk`, so a new container needs no code anywhere else.

Every layer has a path: its index in the model, then the names of the
children leading to it (``'2.body.0'``); an array is named by its layer's
path and its key (``'2.body.0.W'``). Paths are stable: they are the names
used in saved files and in tracked statistics.

Examples
--------
>>> from nnscratch.layers import Dense, Residual, Sequential
>>> layers = [Dense(2, 3), Residual(Sequential(Dense(3, 3)))]
>>> [path for path, _ in walk(layers)]
['0', '1', '1.body', '1.body.0']
>>> [name for name, _ in named_arrays(layers, "params")]
['0.W', '0.b', '1.body.0.W', '1.body.0.b']
>>> declared_shapes(layers)["1.body.0.W"]
(3, 3)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from nnscratch.core.layer import Layer

STATE_STORES = ("params", "buffers")
"""The stores that make a model's state (``grads`` follow from params)."""


def walk(layers: Iterable[Layer]) -> Iterator[tuple[str, Layer]]:
    """Every layer of the tree with its path, each parent before its children.

    Parameters
    ----------
    layers : iterable of Layer
        The top-level layers, named by their position.
    """
    for index, layer in enumerate(layers):
        yield from _subtree(str(index), layer)


def _subtree(path: str, layer: Layer) -> Iterator[tuple[str, Layer]]:
    yield path, layer
    for name, child in layer.named_children():
        yield from _subtree(f"{path}.{name}", child)


def every_layer(layers: Iterable[Layer]) -> list[Layer]:
    """Every layer of the tree, parents first, as :func:`walk` but without
    paths: for the checks made at every training step, where building the
    path strings would cost more than the check itself."""
    found, stack = [], list(reversed(list(layers)))
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(reversed(layer.children()))
    return found


def leaves(layers: Iterable[Layer]) -> Iterator[tuple[str, Layer]]:
    """The layers of the tree that hold no other layers."""
    return ((path, layer) for path, layer in walk(layers) if not layer.children())


def named_arrays(
    layers: Iterable[Layer], store: str
) -> Iterator[tuple[str, np.ndarray]]:
    """``('{path}.{key}', array)`` for every array of one store of every layer.

    Parameters
    ----------
    store : {'params', 'grads', 'buffers'}
    """
    for path, layer in walk(layers):
        for key, array in getattr(layer, store).items():
            yield f"{path}.{key}", array


def state_arrays(layers: Iterable[Layer]) -> dict[str, np.ndarray]:
    """Every param and buffer by name (the arrays themselves, not copies)."""
    layers = list(layers)
    return {
        name: array
        for store in STATE_STORES
        for name, array in named_arrays(layers, store)
    }


def declared_shapes(layers: Iterable[Layer]) -> dict[str, tuple[int, ...]]:
    """The shape of every param and buffer the layers will hold, by array
    name, from the layers' arguments alone (nothing is allocated)."""
    return {
        f"{path}.{key}": tuple(shape)
        for path, layer in walk(layers)
        for key, shape in layer.state_shapes().items()
    }


def regularization_loss(layers: Iterable[Layer]) -> float:
    """The sum of every layer's own penalty."""
    return penalty(every_layer(layers))


def penalty(every: list[Layer]) -> float:
    """:func:`regularization_loss` of a tree already walked (``every`` layer
    of it, as :func:`every_layer` lists them)."""
    return float(sum(layer.regularization_loss() for layer in every))


def load_state(layers: Iterable[Layer], state: dict, caller: str) -> None:
    """Copy arrays named as by :func:`state_arrays` into the layers, in place.

    Every name must be there, with its shape and finite values; nothing is
    changed unless all are.
    """
    targets = state_arrays(layers)
    if set(state) != set(targets):
        missing = sorted(set(targets) - set(state))
        extra = sorted(set(state) - set(targets))
        raise ValueError(
            f"{caller}: expected the arrays of this architecture. "
            f"Missing: {missing[:10]}; unexpected: {extra[:10]}"
        )
    for name, target in targets.items():
        source = np.asarray(state[name])
        if source.shape != target.shape:
            raise ValueError(
                f"{caller}: {name}: expected shape {target.shape}. "
                f"Received {source.shape}"
            )
        if not np.isfinite(source).all():
            raise ValueError(
                f"{caller}: {name}: expected finite values. Received NaN or infinity"
            )
    for name, target in targets.items():
        target[...] = state[name]
