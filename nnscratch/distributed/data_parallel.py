"""DataParallel: one model on K MPI processes, one allreduce per step.

How a step runs on process ``r`` of ``K`` (see docs/distributed.md):

1. every process shuffles with the same generator, so all see the same
   global batch of ``N`` rows; process ``r`` reads only its contiguous share
   of ``n_r`` rows (``r * N // K`` up to ``(r + 1) * N // K``);
2. forward and backward on the share. Layers that look across the batch
   read ``layer.batch_shard``: Dropout draws the mask of the whole global
   batch and keeps its rows; BatchNorm adds its per-channel sums to the
   other processes' (one small allreduce for the statistics in forward, one
   for the two gradient sums in backward);
3. the flat gradient buffer, followed by the loss, the accuracy and a stop
   flag, is scaled by ``n_r / N`` and summed over the processes by ONE
   ``Allreduce``: every process then holds the gradient of the global
   batch's mean loss, the global loss and accuracy, and whether any process
   saw Ctrl-C;
4. every process takes the same optimizer step, so the weights stay equal
   without being sent again.

So K processes give the weights one process gives with the same seed and
batch size (up to rounding: float64 to ~1e-12).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from typing import Any

import numpy as np

from nnscratch.core.shard import BatchShard
from nnscratch.core.tree import named_arrays, walk
from nnscratch.utils.metrics import accuracy

MPI_EXTRA_HINT = (
    "nnscratch.distributed needs mpi4py and an MPI library: "
    "pip install 'nnscratch[mpi]' (mpi4py and mpich)"
)


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"{MPI_EXTRA_HINT} ({error})") from error
    return MPI


FORWARD_SECONDS = 0.3
"""How long a failing process waits, after printing its error, before it ends
every process: the launcher forwards a process's output through a pipe, and
an abort that comes first can drop the message (seen under load)."""


def _abort_on_uncaught_exceptions(comm: Any) -> None:
    """An exception no one catches, anywhere in the script (also outside
    ``train``), ends every process instead of leaving the others waiting
    in a collective call, as ``python -m mpi4py script.py`` does."""
    previous = sys.excepthook
    if getattr(previous, "nnscratch_aborts", False):
        return

    def hook(kind: type, value: BaseException, trace: Any) -> None:
        previous(kind, value, trace)  # the traceback, as usual
        sys.stderr.flush()
        time.sleep(FORWARD_SECONDS)
        comm.Abort(1)
        os._exit(1)  # MPICH's Abort may return before the launcher acts

    hook.nnscratch_aborts = True  # type: ignore[attr-defined]
    sys.excepthook = hook


class DataParallel:
    """Train one model on every process of an MPI job, as if on one.

    Pass it to ``train``: ``model.train(X, y, batch_size=256,
    distributed=DataParallel())`` and start the script with ``mpiexec -n K
    python train.py``. Every process runs the same script on the same data
    (or the same memory-mapped file, of which each reads only its rows).

    - ``batch_size`` is the global batch; each process takes its share.
    - Process 0's weights, buffers and random state are sent to all at the
      start, so a user's own initialisation on process 0 is honoured.
    - Process 0 alone prints (``verbose``) and runs the callbacks that write
      files (``ModelCheckpoint``, ``CSVLogger``, ``TensorBoard``); use
      :attr:`is_main` for your own output (``model.save``, plots).
    - Validation scores and metrics are over the whole data, summed over
      the processes; early stopping and Ctrl-C stop all at the same step.
    - An exception on any process prints its traceback and ends every
      process (``MPI.Comm.Abort``) with exit code 1: never a hang. Once a
      DataParallel exists, this holds for an exception no one catches
      anywhere in the script (``sys.excepthook``), as under ``python -m
      mpi4py``.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        ``MPI.COMM_WORLD`` by default.

    Raises
    ------
    ImportError
        Without mpi4py, naming the ``[mpi]`` extra.
    """

    def __init__(self, comm: Any = None) -> None:
        self.MPI = _mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.shard = BatchShard(
            allreduce=self._allreduce, rank=self.rank, processes=self.size
        )
        self.stop_requested = False
        self.batch_accuracy = 0.0
        self._local_stop: Any = lambda: False
        self.allreduce_seconds = 0.0
        """Time spent in the per-step gradient allreduce (for benchmarks)."""
        if self.size > 1:
            _abort_on_uncaught_exceptions(self.comm)

    @property
    def is_main(self) -> bool:
        """Whether this is process 0, the one that prints and writes files."""
        return self.rank == 0

    def _allreduce(self, array: np.ndarray) -> None:
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)

    # ------------------------------------------------------------ the run
    def fit(self, model: Any, fit: Any, X: Any, y: Any, options: dict) -> dict:
        """Run ``fit`` (``nnscratch.engine.training._fit``) as this process's
        share of the job; any exception ends every process."""
        options = dict(options)
        if not self.is_main:
            options["verbose"] = 0
            options["callbacks"] = [
                callback
                for callback in options.get("callbacks") or []
                if not getattr(callback, "writes_files", False)
            ]
        try:
            with warnings.catch_warnings():
                if not self.is_main:
                    warnings.simplefilter("ignore")
                return fit(model, X, y, options, distributed=self)
        except BaseException as error:
            if self.size == 1:
                raise
            self.abort(error)
            raise  # not reached

    def abort(self, error: BaseException) -> None:
        """Print ``error`` with this process's rank, then end every process."""
        text = "".join(traceback.format_exception(error))
        sys.stderr.write(
            f"[nnscratch.distributed] process {self.rank} of {self.size} failed; "
            f"stopping all processes:\n{text}"
        )
        sys.stderr.flush()
        sys.stdout.flush()
        time.sleep(FORWARD_SECONDS)
        self.comm.Abort(1)
        # MPICH's Abort may return before the launcher ends this process:
        # nothing more may run (or print the error a second time).
        os._exit(1)

    def check_batches(self, data: Any, batch_size: int) -> None:
        """Every process needs at least one row of every global batch."""
        from nnscratch.engine.data import ArrayData

        smallest = batch_size
        if isinstance(data, ArrayData):
            smallest = min(batch_size, data.n_samples % batch_size or batch_size)
        if smallest < self.size:
            raise ValueError(
                f"batch_size: expected global batches of at least {self.size} "
                f"samples, one per process. Received batch_size={batch_size}, "
                f"which gives a batch of {smallest}"
            )

    def begin(self, model: Any, run: Any) -> None:
        """Process 0's weights, buffers and generator to every process; the
        shard to the layers, the run and the model."""
        flat = model.flat_parameters()
        buffers = [buffer for _, buffer in named_arrays(model.layers, "buffers")]
        shapes = [flat.params.size] + [buffer.shape for buffer in buffers]
        if any(other != shapes for other in self.comm.allgather(shapes)):
            raise ValueError(
                "DataParallel: expected the same network on every process. "
                f"Received parameter and buffer sizes {self.comm.allgather(shapes)}"
            )
        self.comm.Bcast(flat.params, root=0)
        for buffer in buffers:
            received = np.ascontiguousarray(buffer)
            self.comm.Bcast(received, root=0)
            buffer[...] = received
        model.rng.bit_generator.state = self.comm.bcast(
            model.rng.bit_generator.state, root=0
        )
        for _, layer in walk(model.layers):
            layer.batch_shard = self.shard
        run.shard, run.distributed = self.shard, self
        self._local_stop = run.interrupts.pressed
        self.stop_requested = False
        model.distributed = self

    def end(self, model: Any, run: Any) -> None:
        """Undo :meth:`begin` (the model trains alone again)."""
        for _, layer in walk(model.layers):
            layer.__dict__.pop("batch_shard", None)
        model.__dict__.pop("distributed", None)
        self._local_stop = lambda: False

    # ---------------------------------------------------------- each step
    def reduce_step(
        self, model: Any, loss: float, output: np.ndarray, y: np.ndarray
    ) -> float:
        """Sum the gradients, the loss and the accuracy over the processes
        in one allreduce; return the global batch's loss.

        Each process's values are scaled by its share ``n_r / N`` first, so
        the sums are means over the global batch (penalty terms, equal on
        every process, come out once).
        """
        buffer = model.flat_parameters().reduce_buffer
        buffer[-3] = loss
        buffer[-2] = accuracy(y, output) if model.reports_accuracy else 0.0
        buffer[-1] = 1.0 if self._local_stop() else 0.0
        buffer *= self.shard.weight
        start = time.perf_counter()
        self._allreduce(buffer)
        self.allreduce_seconds += time.perf_counter() - start
        self.stop_requested = bool(buffer[-1] > 0)
        self.batch_accuracy = float(buffer[-2])
        return float(buffer[-3])

    def score(self, model: Any, data: Any, batch_size: int = 256) -> dict:
        """``model.score(data)`` over every process's share of ``data``."""
        sums = np.zeros(3)  # samples, loss sum, correct
        for x_batch, y_batch in data.batches(batch_size, shard=self.shard):
            if len(x_batch) == 0:  # a batch of fewer rows than processes
                continue
            data_loss, output, _ = model._loss_and_output(x_batch, y_batch, False)
            sums += (
                len(output),
                data_loss * len(output),
                accuracy(y_batch, output) * len(output)
                if model.reports_accuracy
                else 0.0,
            )
        self._allreduce(sums)
        samples, loss_sum, correct = sums
        if samples == 0:
            raise ValueError("X_val: expected at least one batch. Received none")
        scores = {"loss": loss_sum / samples + model.regularization_loss()}
        if model.reports_accuracy:
            scores["accuracy"] = correct / samples
        return scores
