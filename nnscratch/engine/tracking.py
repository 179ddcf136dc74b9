"""Looking inside training: per-layer statistics, epoch by epoch.

``train(..., track=True)`` adds to the history, for layer ``i`` of type
``Name`` (keys ``'{i}:{Name}/{statistic}'``), the mean over the epoch's
batches of:

- ``activation_mean``, ``activation_std``: of the layer's output (a ReLU
  whose outputs are mostly 0 is dying; a sigmoid stuck near 0 or 1 saturates);
- ``grad_norm``: ``||dL/dtheta||`` over all the layer's parameters (vanishing
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
        self.sums: dict[str, float] = defaultdict(float)
        self.batches = 0
        self._before: list[list[np.ndarray]] = []

    def key(self, index: int, layer: Layer, statistic: str) -> str:
        return f"{index}:{type(layer).__name__}/{statistic}"

    def observe_output(self, layer: Layer, output: np.ndarray) -> None:
        """Called by the model's training forward with each layer's output."""
        index = self.model.layers.index(layer)
        self.sums[self.key(index, layer, "activation_mean")] += float(output.mean())
        self.sums[self.key(index, layer, "activation_std")] += float(output.std())

    def before_step(self) -> None:
        # The update ratio needs the weights as they were before the step.
        self._before = [
            [p.copy() for p in layer.params.values()] for layer in self.model.layers
        ]

    def after_step(self) -> None:
        self.batches += 1
        for index, (layer, before) in enumerate(
            zip(self.model.layers, self._before, strict=True)
        ):
            if not layer.params:
                continue
            after = list(layer.params.values())
            change = [a - b for a, b in zip(after, before, strict=True)]
            self.sums[self.key(index, layer, "grad_norm")] += _norm(
                list(layer.grads.values())
            )
            self.sums[self.key(index, layer, "update_ratio")] += _norm(change) / max(
                _norm(before), np.finfo(np.float64).tiny
            )

    def epoch_stats(self) -> dict[str, float]:
        """The epoch's mean of each statistic; resets for the next epoch."""
        stats = {key: total / max(self.batches, 1) for key, total in self.sums.items()}
        self.sums.clear()
        self.batches = 0
        return dict(sorted(stats.items(), key=lambda item: int(item[0].split(":")[0])))
