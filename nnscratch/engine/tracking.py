"""Looking inside training: per-layer statistics, epoch by epoch.

``train(..., track=True)`` adds to the history, for the layer at path ``p``
(``'2'``, or ``'2.body.0'`` inside a container; see :mod:`nnscratch.core.tree`)
of type ``Name`` (keys ``'{p}:{Name}/{statistic}'``), the mean over the
epoch's batches of:

- ``activation_mean``, ``activation_std``: of a top-level layer's output (a ReLU
  whose outputs are mostly 0 is dying; a sigmoid stuck near 0 or 1 saturates);
- ``grad_norm``: ``||dL/dtheta||`` over all of a layer's own parameters (vanishing
  gradients show as norms shrinking towards the input);
- ``update_ratio``: ``||theta_after - theta_before|| / ||theta_before||`` of one
  step (around 1e-3 is the classic healthy value).

Examples
--------
>>> import numpy as np
>>> from nnscratch import NeuralNetwork, Dense, Activation, SGD
>>> model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.1), seed=0)
>>> model.add(Dense(3, 4))
>>> model.add(Activation("relu"))
>>> X = np.ones((8, 3))
>>> history = model.train(X, X[:, :1].repeat(4, 1), epochs=2, verbose=0, track=True)
>>> [key.split("/")[1] for key in history if key.startswith("0:Dense")]
['activation_mean', 'activation_std', 'grad_norm', 'update_ratio']
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from nnscratch.core.tree import walk

if TYPE_CHECKING:
    from nnscratch.core.layer import Layer
    from nnscratch.engine.model import NeuralNetwork


def _norm(arrays: list[np.ndarray]) -> float:
    """The Euclidean norm of several arrays taken together."""
    return float(np.sqrt(sum(np.vdot(a, a) for a in arrays)))


class LayerStatsTracker:
    """Collects per-layer statistics over the batches of an epoch."""

    def __init__(self, model: NeuralNetwork) -> None:
        self.model = model
        self.paths = {id(layer): path for path, layer in walk(model.layers)}
        # Insertion order is walking order: statistics come out as the
        # layers come in the model.
        self.sums: dict[str, float] = defaultdict(float)
        self.batches = 0
        self._before: dict[str, list[np.ndarray]] = {}

    def key(self, layer: Layer, statistic: str) -> str:
        return f"{self.paths[id(layer)]}:{type(layer).__name__}/{statistic}"

    def observe_output(self, layer: Layer, output: np.ndarray) -> None:
        """Called by the model's training forward with each layer's output."""
        self.sums[self.key(layer, "activation_mean")] += float(output.mean())
        self.sums[self.key(layer, "activation_std")] += float(output.std())

    def trained_layers(self) -> list[Layer]:
        return [layer for _, layer in walk(self.model.layers) if layer.params]

    def before_step(self) -> None:
        # The update ratio needs the weights as they were before the step.
        self._before = {
            self.key(layer, ""): [p.copy() for p in layer.params.values()]
            for layer in self.trained_layers()
        }

    def after_step(self) -> None:
        self.batches += 1
        for layer in self.trained_layers():
            before = self._before[self.key(layer, "")]
            after = list(layer.params.values())
            change = [a - b for a, b in zip(after, before, strict=True)]
            self.sums[self.key(layer, "grad_norm")] += _norm(list(layer.grads.values()))
            self.sums[self.key(layer, "update_ratio")] += _norm(change) / max(
                _norm(before), np.finfo(np.float64).tiny
            )

    def epoch_stats(self) -> dict[str, float]:
        """The epoch's mean of each statistic, in walking order; resets for
        the next epoch."""
        order = {path: rank for rank, path in enumerate(self.paths.values())}
        stats = {key: total / max(self.batches, 1) for key, total in self.sums.items()}
        self.sums.clear()
        self.batches = 0
        return dict(
            sorted(stats.items(), key=lambda item: order[item[0].split(":")[0]])
        )
