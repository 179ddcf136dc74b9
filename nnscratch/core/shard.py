"""This process's share of a global batch, for layers that look across it.

In data-parallel training (:mod:`nnscratch.distributed`) each of K
processes runs the layers on a contiguous share of every global batch. Most
layers treat each sample on its own and need nothing; the two kinds that
look across the batch read the model's :class:`BatchShard` from
``layer.batch_shard`` (None outside data-parallel training):

- a layer that draws per-sample randomness (Dropout, attention dropout)
  draws for the whole global batch with :func:`batch_random` and keeps its
  share, so the masks do not depend on K;
- a layer with batch statistics (BatchNorm) sums over its share and adds
  the sums of the other processes with :meth:`BatchShard.allreduce`.

Gradients reach a layer as ``dL_k/dOutput`` for its process's loss ``L_k``
(a mean over its ``size`` samples); the model scales every gradient by
``weight = size / total`` before summing them over processes, so a layer
that combines sums across processes scales them by ``weight`` first.

Examples
--------
>>> import numpy as np
>>> shard = BatchShard(offset=2, size=2, total=5)
>>> mine = batch_random(np.random.default_rng(0), (2, 3), shard)
>>> everyone = np.random.default_rng(0).random((5, 3))
>>> bool(np.array_equal(mine, everyone[2:4]))
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class BatchShard:
    """Rows ``offset .. offset + size`` of a global batch of ``total`` rows.

    Parameters
    ----------
    offset, size, total : int
    allreduce : callable, optional
        ``allreduce(array)``: sum ``array`` over the processes, in place.
        The identity by default (one process).
    """

    def __init__(
        self,
        offset: int = 0,
        size: int = 0,
        total: int = 0,
        allreduce: Callable[[np.ndarray], None] | None = None,
        rank: int = 0,
        processes: int = 1,
    ) -> None:
        self.offset, self.size, self.total = offset, size, total
        self._allreduce = allreduce
        self.rank, self.processes = rank, processes

    def take(self, total: int) -> slice:
        """This process's rows of a global batch of ``total`` rows, which
        become the current share: process ``r`` of ``K`` takes rows
        ``r * total // K`` up to ``(r + 1) * total // K``."""
        start = self.rank * total // self.processes
        stop = (self.rank + 1) * total // self.processes
        self.offset, self.size, self.total = start, stop - start, total
        return slice(start, stop)

    @property
    def weight(self) -> float:
        """This share's fraction of the global batch, ``size / total``."""
        return self.size / self.total

    def allreduce(self, array: np.ndarray) -> np.ndarray:
        """``array`` summed over every process, in place; returns it."""
        if self._allreduce is not None:
            self._allreduce(array)
        return array


def batch_random(
    rng: np.random.Generator, shape: tuple[int, ...], shard: BatchShard | None
) -> np.ndarray:
    """Uniform [0, 1) draws of ``shape`` (batch first), as for the global batch.

    Without a shard: ``rng.random(shape)``. With one, the draws for all
    ``shard.total`` rows are made (every process's generator stays in step)
    and this process's rows returned, so a mask is the one a single process
    would draw.
    """
    if shard is None:
        return rng.random(shape)
    everyone = rng.random((shard.total, *shape[1:]))  # (total, ...)
    return everyone[shard.offset : shard.offset + shape[0]]


def batch_moments(
    x: np.ndarray, axes: tuple[int, ...], shard: BatchShard | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and biased variance over ``axes`` of the global batch, and the
    number of values each is taken over.

    Without a shard: ``x.mean(axes)``, ``x.var(axes)``. With one, the sums
    of every process are added, in two passes (the mean, then the squared
    deviations from it), so the variance does not lose digits as
    ``E[x**2] - E[x]**2`` would.
    """
    count = int(np.prod([x.shape[a] for a in axes]))  # values per channel
    if shard is None:
        return x.mean(axis=axes), x.var(axis=axes), count
    count = count // x.shape[0] * shard.total  # values per channel, all processes
    mean = shard.allreduce(x.sum(axis=axes)) / count  # (N, C, H, W) -> (C,)
    shape = [1 if a in axes else n for a, n in enumerate(x.shape)]
    deviations = np.square(x - mean.reshape(shape)).sum(axis=axes)
    return mean, shard.allreduce(deviations) / count, count


def batch_sums(
    sums: list[np.ndarray], count: int, shard: BatchShard | None
) -> tuple[list[np.ndarray], int]:
    """Per-channel gradient sums over the global batch, on this process's
    scale, and the number of values they run over.

    Each process's gradients carry the factor ``1 / size`` of its own mean
    loss; its sums are scaled by ``weight`` to a common scale, added over
    the processes, and scaled back: one allreduce for all of ``sums``.
    """
    if shard is None:
        return sums, count
    stacked = np.stack(sums) * shard.weight  # k x (C,) -> (k, C)
    shard.allreduce(stacked)
    stacked /= shard.weight
    return list(stacked), count // shard.size * shard.total
