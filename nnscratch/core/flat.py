"""One flat buffer for a model's parameters and one for their gradients.

A model keeps every trainable array of its layers as a view into one 1-D
array (and every gradient as a view into a second one, at the same offsets),
so that an optimizer updates all parameters in one pass per operation, as
PyTorch's fused optimizers do, and data-parallel training sums every
gradient with a single allreduce (Horovod's tensor fusion).

Layers see nothing of this: ``layer.params['W']`` is still an array of its
own shape and dtype, written in place by the layer (``out=``, ``[...] =``).

Writing weights
---------------
Write into the arrays a layer holds, in place: ``layer.params['W'][...] =
new`` or ``np.copyto(layer.params['W'], new)`` (``set_weights`` and
``load_state_dict`` do that). An array *replaced* in the dict
(``layer.params['W'] = new``) is noticed at the start of the next training
step and re-adopted: its values are copied into the flat buffer and the
view is put back in the dict (so ``new`` itself is no longer the layer's
weight). A replacement of another shape is a ``ValueError``. A gradient
array a layer's ``backward`` assigns anew (rather than writing in place) is
taken in the same way right after the backward pass.

Examples
--------
>>> import numpy as np
>>> from nnscratch.layers import Dense
>>> layers = [Dense(2, 3), Dense(3, 1)]
>>> flat = FlatParameters(layers, np.float64)
>>> flat.params.shape                      # 2*3 + 3 + 3*1 + 1
(13,)
>>> np.shares_memory(layers[0].params["W"], flat.params)
True
>>> layers[1].params["b"] = np.array([5.0])   # replaced: re-adopted
>>> _ = flat.adopt(layers)
>>> float(flat.params[-1]), np.shares_memory(layers[1].params["b"], flat.params)
(5.0, True)
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.tree import every_layer, walk


def flat_span(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-D array the ``arrays`` tile, back to back, or None.

    ``arrays`` must be C-contiguous views of one 1-D buffer, of one dtype,
    each starting where the one before ends: then the span is a view of
    that buffer whose elements are those of the arrays, in order.

    Examples
    --------
    >>> buffer = np.arange(6.0)
    >>> span = flat_span([buffer[1:3], buffer[3:6].reshape(3, 1)])
    >>> span, np.shares_memory(span, buffer)
    (array([1., 2., 3., 4., 5.]), True)
    >>> flat_span([buffer[1:3], buffer[4:6]]) is None    # a gap
    True
    """
    if not arrays:
        return None
    first = arrays[0]
    base = first.base
    if base is None or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    itemsize = first.itemsize
    address = first.__array_interface__["data"][0]
    start = address - base.__array_interface__["data"][0]
    for array in arrays:
        if (
            array.base is not base
            or array.dtype != first.dtype
            or not array.flags.c_contiguous
            or array.__array_interface__["data"][0] != address
        ):
            return None
        address += array.size * itemsize
    # Views of a buffer of this dtype start at whole elements of it.
    first_element = start // itemsize
    count = sum(array.size for array in arrays)
    return base[first_element : first_element + count]


def split(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Views of ``flat`` of the given shapes, back to back."""
    views, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        views.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return views


class FlatParameters:
    """Flat parameter and gradient buffers whose views the layers hold.

    Parameters
    ----------
    layers : iterable of Layer
        Built layers; their current values are copied in.
    dtype : numpy dtype
        The dtype of both buffers (the model's).

    Attributes
    ----------
    params, grads : ndarray of shape (total parameters,)
    param_views, grad_views : list of ndarray
        The layers' arrays, in walking order (the optimizer's view).
    reduce_buffer : ndarray of shape (total parameters + EXTRA,)
        ``grads`` followed by ``EXTRA`` free values. All three are views
        into one array, ``params`` first and ``grads`` right after it.
    """

    EXTRA = 3

    def __init__(self, layers: Iterable[Layer], dtype: np.dtype) -> None:
        layers = list(layers)
        self.entries = [
            (path, layer, key) for path, layer in walk(layers) for key in layer.params
        ]
        sources = [layer.params[key] for _, layer, key in self.entries]
        total = sum(np.size(array) for array in sources)
        # One allocation: the parameters, the gradients right after them (an
        # optimizer's guard bounds both with one reduction over the two, see
        # Optimizer.step), then a few values that data-parallel training sums
        # with the gradients in the same allreduce (loss, accuracy, a stop
        # request): one message per step.
        storage = np.zeros(2 * total + self.EXTRA, dtype=dtype)
        self.params = storage[:total]
        self.reduce_buffer = storage[total:]
        self.grads = storage[total : 2 * total]
        shapes = [np.shape(array) for array in sources]
        self.param_views = split(self.params, shapes)
        self.grad_views = split(self.grads, shapes)
        for (_, layer, key), source, view, grad in zip(
            self.entries, sources, self.param_views, self.grad_views, strict=True
        ):
            view[...] = source
            old_grad = layer.grads.get(key)
            if old_grad is not None and np.shape(old_grad) == view.shape:
                grad[...] = old_grad
            layer.params[key] = view
            layer.grads[key] = grad
        self._remember(layers)

    def _unchanged(self, every: list[Layer]) -> bool:
        """Whether the same layers (``every`` layer of the tree, as
        :func:`~nnscratch.core.tree.every_layer` lists them) hold the same
        arrays as when last seen."""
        if _layer_ids(every) != self._layer_ids:
            return False
        # The stores themselves, not the properties: these layers are built.
        for layer, count, key, view, grad in self._checks:
            params = layer._params
            if len(params) != count or params.get(key) is not view:
                return False
            if layer._grads.get(key) is not grad:
                return False
        return True

    def _remember(self, layers: list[Layer]) -> None:
        self._layer_ids = _layer_ids(every_layer(layers))
        self._checks = [
            (layer, len(layer.params), key, view, grad)
            for (_, layer, key), view, grad in zip(
                self.entries, self.param_views, self.grad_views, strict=True
            )
        ]

    def adopt(
        self, layers: Iterable[Layer], every: list[Layer] | None = None
    ) -> FlatParameters:
        """These buffers, or new ones if the tree of layers changed, with
        every array the layers hold a view into them again.

        Cheap when nothing changed: an identity test per layer and per array.
        ``every`` is the tree already walked (:func:`every_layer` of
        ``layers``), when the caller has it.
        """
        layers = list(layers)
        if self._unchanged(every_layer(layers) if every is None else every):
            return self
        params, grads = [], []
        entries = []
        for path, layer in walk(layers):
            for key, param in layer.params.items():
                entries.append((path, layer, key))
                params.append(param)
                grads.append(layer.grads.get(key))
        same = len(params) == len(self.param_views) and all(
            map(operator.is_, params, self.param_views)
        )
        if same and all(map(operator.is_, grads, self.grad_views)):
            # The same arrays in a changed tree (a layer without params
            # added): remembered, so that the next check is the cheap one.
            self._remember(layers)
            return self
        if [(p, id(la), k) for p, la, k in entries] != [
            (p, id(la), k) for p, la, k in self.entries
        ]:
            # Layers or keys came or went: new buffers, the values kept.
            return FlatParameters(layers, self.params.dtype)
        for (path, layer, key), param, view, grad in zip(
            entries, params, self.param_views, self.grad_views, strict=True
        ):
            if param is not view:
                if np.shape(param) != view.shape:
                    raise ValueError(
                        f"{path}.{key}: expected an array of shape {view.shape} "
                        f"(the layer's). Received {np.shape(param)}; write weights "
                        "in place (params[key][...] = new) or build a new layer"
                    )
                view[...] = param
                layer.params[key] = view
            new_grad = layer.grads.get(key)
            if new_grad is not grad:
                # A layer that assigns a new gradient array in backward (a
                # user's): its values are taken into the flat buffer.
                if new_grad is not None and np.shape(new_grad) == grad.shape:
                    grad[...] = new_grad
                layer.grads[key] = grad
        self._remember(layers)
        return self


def _layer_ids(every: list[Layer]) -> list[int]:
    """The identity of each of ``every`` layer of a walked tree, in order."""
    return list(map(id, every))
