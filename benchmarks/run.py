"""nnscratch against its peers, side by side, in one run.

Each (system, workload) pair runs in a fresh subprocess, so its peak memory
(``ru_maxrss``) is its own. Every run trains the same network on the same
random data for 1 warm-up epoch plus 3 timed epochs and reports the median
seconds per epoch. Usage::

    pip install -e '.[bench]'
    python benchmarks/run.py              # workloads A and B, all peers
    python benchmarks/run.py --scaling    # also: time vs batch size and width
    python benchmarks/run.py --alternate 8  # one process, epochs alternating

Workload A, an MLP: 20,000 x 784 inputs, 10 classes, 784-256-128-10 ReLU,
softmax + cross-entropy, Adam 1e-3, batch 128, shuffled every epoch.
Workload B, a small CNN: 4,000 x 1 x 28 x 28, Conv2D(1->8, 3x3) -> ReLU ->
MaxPool 2x2 -> Flatten -> Dense(1352->10), Adam 1e-3, batch 64.

Peers are optional (the ``bench`` extra); one that is missing is reported,
not fatal. Quote ratios from a single run on an otherwise idle machine.

On a machine whose speed drifts (a shared virtual machine: the same epoch
can take 30% longer a minute later), ``--alternate ROUNDS`` builds every
system in one process and alternates them, one epoch each per round, after
a warm-up epoch, each epoch after a 0.3 s rest: each system's best epoch
then comes from the same minutes as the others'. Peak memory is not reported
there (the systems share it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import SYSTEMS, WORKLOADS, Workload, peak_rss_mb  # noqa: E402


def gemm_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The float32 matrix-multiply rate this machine's BLAS reaches."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    seconds = (time.perf_counter() - start) / repeats
    return 2 * size**3 / seconds / 1e9


def run_worker(system: str, workload: str, options: dict) -> None:
    """Child process: train, time, and print one JSON line of results."""
    spec = WORKLOADS[workload](**options)
    runner = SYSTEMS[system](spec)
    # The first epoch warms up (first-call allocations, BLAS threads).
    times = [seconds * runner.scale for seconds in runner.timed_epochs(4)[1:]]
    runner.predict()  # warm-up, as for training
    predict_times = []
    for _ in range(3):
        start = time.perf_counter()
        runner.predict()
        predict_times.append((time.perf_counter() - start) * runner.scale)
    predict_seconds = statistics.median(predict_times)
    results = {
        "seconds": statistics.median(times),
        "predict_seconds": predict_seconds,
        "peak_rss_mb": peak_rss_mb(),
        # Peak memory after epoch 4 minus after epoch 2: 0 when nothing grows.
        "rss_growth_mb": runner.peak_rss[3] - runner.peak_rss[1],
        "final_loss": runner.loss(),
    }
    print(json.dumps(results))


def measure(system: str, workload: str, options: dict) -> dict:
    """Run one worker in its own process; a failure is reported, not raised."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        system,
        workload,
        json.dumps(options),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": reason[:100]}
    return json.loads(result.stdout.strip().splitlines()[-1])


REST_SECONDS = 0.3
"""The pause before each epoch of ``--alternate``: long enough for spinning
threads to go to sleep (see :func:`alternate`)."""


def alternate(workload_name: str, systems: list[str], rounds: int) -> str:
    """Every system in this process, one epoch each per round; a table of
    each one's best and median epoch, its best epoch's ratio to the others'
    and the median over rounds of its epoch's ratio to theirs."""
    spec = WORKLOADS[workload_name]()
    runners = {
        system: SYSTEMS[system](spec)
        for system in systems
        if workload_name in SYSTEMS[system].workloads
    }
    times: dict[str, list[float]] = {system: [] for system in runners}
    for runner in runners.values():
        runner.timed_epochs(1)  # warm-up
    order = list(runners)
    for _ in range(rounds):
        # A library's threads that keep spinning after its work (OpenBLAS's,
        # OpenMP's) slow whichever system comes next. Measured on workload
        # A: PyTorch's best epoch right after nnscratch's took 0.34-0.35 s,
        # after a 0.3 s rest 0.27-0.28 s; nnscratch's right after PyTorch's
        # was 3-6% slower than after a rest. The turning order alone does
        # not even that out (with three systems, one of them follows the
        # same one in two rounds of three), so every epoch starts after a
        # short rest; the order still turns.
        for system in order:
            time.sleep(REST_SECONDS)
            runner = runners[system]
            times[system] += [t * runner.scale for t in runner.timed_epochs(1)]
        order = order[1:] + order[:1]
    best = {system: min(values) for system, values in times.items()}

    def paired(system: str, other: str) -> float:
        # Round by round, the two epochs ran within seconds of each other:
        # the median of their ratios is not moved by the machine's speed
        # drifting between rounds, as the best epochs can be.
        pairs = zip(times[system], times[other], strict=True)
        return statistics.median(mine / theirs for mine, theirs in pairs)

    rows = [
        f"Workload {spec.name}, alternating in one process, {rounds} rounds",
        "| system | best s/epoch | median s/epoch | "
        + " | ".join(f"best x {other}" for other in runners)
        + " | "
        + " | ".join(f"per round x {other}" for other in runners)
        + " |",
        "|---|---|---|" + "---|" * (2 * len(runners)),
    ]
    for system, values in times.items():
        ratios = [best[system] / best[other] for other in runners]
        ratios += [paired(system, other) for other in runners]
        rows.append(
            f"| {system} | {best[system]:.4f} | {statistics.median(values):.4f} | "
            + " | ".join(f"{ratio:.3f}" for ratio in ratios)
            + " |"
        )
    return "\n".join(rows)


def table(workload: Workload, results: dict, peak: float) -> str:
    reference = results.get("pytorch", {}).get("seconds")
    rows = [
        f"Workload {workload.name}: {workload.description} "
        f"({workload.flops_per_epoch / 1e9:.1f} GFLOP per epoch)",
        "| system | s/epoch | x PyTorch | GFLOP/s | % GEMM peak | predict s "
        "| peak RSS MB | RSS growth epoch 2->4 MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for system, result in results.items():
        if "error" in result:
            rows.append(f"| {system} | not run: {result['error']} | | | | | | |")
            continue
        seconds = result["seconds"]
        gflops = workload.flops_per_epoch / seconds / 1e9
        ratio = f"{seconds / reference:.2f}" if reference else "-"
        rows.append(
            f"| {system} | {seconds:.3f} | {ratio} | {gflops:.0f} | "
            f"{100 * gflops / peak:.0f}% | {result['predict_seconds']:.3f} | "
            f"{result['peak_rss_mb']:.0f} | {result['rss_growth_mb']:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--workloads", default="A,B")
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also time nnscratch and PyTorch over batch sizes",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS / torch threads for every system (default: the libraries' "
        "own choice, all cores)",
    )
    parser.add_argument(
        "--alternate",
        type=int,
        metavar="ROUNDS",
        help="run the systems in one process, alternating epochs (see above)",
    )
    args = parser.parse_args()
    if args.threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.threads)
    if args.worker:
        system, workload, options = args.worker
        run_worker(system, workload, json.loads(options))
        return

    if args.alternate:
        for name in args.workloads.split(","):
            print(alternate(name, args.systems.split(","), args.alternate) + "\n")
        return
    peak = gemm_peak_gflops()
    print(
        f"float32 GEMM peak: {peak:.0f} GFLOP/s "
        f"(threads: {os.environ.get('OMP_NUM_THREADS', 'default')})\n"
    )
    for name in args.workloads.split(","):
        workload = WORKLOADS[name]()
        results = {
            system: measure(system, name, {})
            for system in args.systems.split(",")
            if name in SYSTEMS[system].workloads
        }
        print(table(workload, results, peak) + "\n", flush=True)
    if args.scaling:
        for options in scaling_options():
            workload = WORKLOADS["A"](**options)
            results = {s: measure(s, "A", options) for s in ("nnscratch", "pytorch")}
            print(table(workload, results, peak) + "\n", flush=True)


def scaling_options() -> list[dict]:
    """60,000 samples; batch 32 to 1024 at the base width, then wider layers."""
    options = [{"n_samples": 60_000, "batch_size": b} for b in (32, 128, 512, 1024)]
    options += [
        {"n_samples": 60_000, "batch_size": 128, "hidden": [1024, 512]},
        {"n_samples": 60_000, "batch_size": 128, "hidden": [2048, 1024]},
    ]
    return options


if __name__ == "__main__":
    main()
