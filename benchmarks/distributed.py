"""Data-parallel training measured on this machine, then modelled for a cluster.

Usage::

    pip install -e '.[mpi,bench]'
    python benchmarks/distributed.py            # measure, model, print markdown

1. Workloads A (MLP) and B (CNN) of ``benchmarks/peers.py`` at 1 process x 2
   BLAS threads, 1 x 1 and 2 processes x 1 thread (``mpiexec -n 2``), in one
   run: seconds per epoch, and the allreduce's seconds per step and share.
2. The allreduce itself (``mpiexec -n 2``, 8 B to 16 MB): latency ``alpha``
   and seconds per byte ``beta``, fitted by least squares.
3. A ring-allreduce (alpha-beta) model of time per epoch and efficiency at
   4 to 64 nodes for A, B and a 10x wider MLP, with the measured single-
   process compute and, for the network, the measured shared-memory values
   and an assumed 25 Gb/s Ethernet; and the global batch from which
   communication takes less time than computing.

Assumptions of the model (see docs/distributed.md): compute per step scales
as the local batch (``t_sample * B / P``, which overstates small batches'
efficiency: BLAS is slower on thin matrices); one allreduce per step of the
flat float32 gradients, ring algorithm ``2 (P - 1) alpha + 2 (P - 1) / P * n
* beta``, not overlapped with compute; one process per node.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import WORKLOADS, MLPWorkload, NNScratch, Workload  # noqa: E402

EPOCHS = 3  # one warm-up, then the median of the others
ETHERNET_25G = (25e-6, 1 / 3.125e9)  # alpha 25 us, beta: 25 Gb/s = 3.125 GB/s
NODES = (1, 4, 8, 16, 32, 64)


def wide_mlp() -> MLPWorkload:
    return WORKLOADS["A"](hidden=[2560, 1280])


def workloads() -> dict[str, Workload]:
    return {"A": WORKLOADS["A"](), "B": WORKLOADS["B"](), "A10": wide_mlp()}


# ------------------------------------------------------------------ workers
def train_worker(name: str, distributed: bool) -> None:
    """Time EPOCHS epochs of one workload; print one JSON line (process 0)."""
    from nnscratch import Callback

    spec = workloads()[name]
    runner = NNScratch(spec)
    dp = None
    if distributed:
        from nnscratch.distributed import DataParallel

        dp = DataParallel()
    times: list[float] = []

    class Timer(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()
            if dp is not None:
                dp.allreduce_seconds = 0.0

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)
            if dp is not None:
                allreduce.append(dp.allreduce_seconds)

    allreduce: list[float] = []
    runner.model.train(
        runner.X,
        runner.y,
        epochs=EPOCHS,
        batch_size=spec.batch_size,
        verbose=0,
        callbacks=[Timer()],
        distributed=dp,
    )
    steps = -(-spec.n_samples // spec.batch_size)
    result = {
        "seconds": float(np.median(times[1:])),
        "allreduce_per_step": float(np.median(allreduce[1:])) / steps
        if allreduce
        else 0.0,
        "steps": steps,
        "parameters": int(runner.model.flat_parameters().params.size),
    }
    if dp is None or dp.is_main:
        print(json.dumps(result))


def allreduce_worker() -> None:
    """Time Allreduce of float32 buffers of 2 to 4M values; print JSON."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rows = []
    for size in [2**k for k in range(1, 23, 2)]:
        buffer = np.ones(size, dtype=np.float32)
        repeats = max(5, min(500, 2**22 // size))
        comm.Barrier()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(repeats):
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        rows.append((size * 4, (time.perf_counter() - start) / repeats))
    if comm.Get_rank() == 0:
        print(json.dumps(rows))


# ------------------------------------------------------------------ driver
def run(command: list[str], threads: int) -> dict | list:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=1800, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def fit_alpha_beta(rows: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares ``t = 2 (P-1) alpha + 2 (P-1)/P n beta`` at P = 2."""
    n = np.array([r[0] for r in rows], dtype=float)
    t = np.array([r[1] for r in rows])
    design = np.stack([np.full_like(n, 2.0), n], axis=1)  # P = 2: 2 alpha + n beta
    (alpha, beta), *_ = np.linalg.lstsq(design, t, rcond=None)
    return max(alpha, 1e-7), max(beta, 1e-12)


def ring_seconds(nodes: int, n_bytes: float, alpha: float, beta: float) -> float:
    if nodes == 1:
        return 0.0
    return 2 * (nodes - 1) * alpha + 2 * (nodes - 1) / nodes * n_bytes * beta


def model_rows(spec: Workload, single: dict, network: tuple[float, float]) -> list:
    """(nodes, s/epoch, efficiency) from one process's compute time."""
    alpha, beta = network
    per_step = single["seconds"] / single["steps"]
    n_bytes = 4 * single["parameters"]
    rows = []
    for nodes in NODES:
        step = per_step / nodes + ring_seconds(nodes, n_bytes, alpha, beta)
        epoch = single["steps"] * step
        rows.append((nodes, epoch, single["seconds"] / (nodes * epoch)))
    return rows


def break_even_batch(spec: Workload, single: dict, network, nodes: int) -> float:
    """The global batch from which computing takes longer than the allreduce."""
    per_sample = single["seconds"] / spec.n_samples
    alpha, beta = network
    return (
        nodes
        * ring_seconds(nodes, 4 * single["parameters"], alpha, beta)
        / (per_sample)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--workloads", default="A,B,A10")
    args = parser.parse_args()
    if args.worker:
        if args.worker[0] == "allreduce":
            allreduce_worker()
        else:
            train_worker(args.worker[0], args.worker[1] == "mpi")
        return
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        raise SystemExit("mpiexec not found: pip install -e '.[mpi]'")
    me = [sys.executable, __file__, "--worker"]
    specs = workloads()
    measured: dict[str, dict] = {}
    print(
        "| workload | 1 proc x 2 threads s/epoch | 1 x 1 | 2 procs x 1 | "
        "speed-up 2x1 vs 1x1 | allreduce ms/step | allreduce share |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.workloads.split(","):
        two_threads = run([*me, name, "single"], 2)
        one = run([*me, name, "single"], 1)
        two = run([mpiexec, "-n", "2", *me, name, "mpi"], 1)
        measured[name] = one
        share = two["allreduce_per_step"] * two["steps"] / two["seconds"]
        print(
            f"| {name} ({specs[name].description}; {one['parameters']:,} params) "
            f"| {two_threads['seconds']:.3f} | {one['seconds']:.3f} | "
            f"{two['seconds']:.3f} | {one['seconds'] / two['seconds']:.2f} | "
            f"{1e3 * two['allreduce_per_step']:.3f} | {100 * share:.0f}% |",
            flush=True,
        )
    rows = run([mpiexec, "-n", "2", *me, "allreduce"], 1)
    shm = fit_alpha_beta(rows)
    print(
        f"\nAllreduce, 2 processes, shared memory: alpha = {1e6 * shm[0]:.1f} us, "
        f"beta = {1e9 * shm[1]:.3f} ns/byte ({1e-9 / shm[1]:.1f} GB/s)"
    )
    for label, network in (
        ("measured shared memory", shm),
        ("assumed 25 Gb/s Ethernet, alpha 25 us", ETHERNET_25G),
    ):
        print(f"\nModel, {label}: s/epoch (efficiency)\n")
        print(
            "| workload | " + " | ".join(f"{n} nodes" for n in NODES) + " | "
            "batch where compute = allreduce, 16 nodes | 64 nodes |"
        )
        print("|---|" + "---|" * (len(NODES) + 2))
        for name, single in measured.items():
            cells = [
                f"{epoch:.3f} ({100 * eff:.0f}%)"
                for _, epoch, eff in model_rows(specs[name], single, network)
            ]
            b16 = break_even_batch(specs[name], single, network, 16)
            b64 = break_even_batch(specs[name], single, network, 64)
            print(f"| {name} | " + " | ".join(cells) + f" | {b16:,.0f} | {b64:,.0f} |")


if __name__ == "__main__":
    main()
