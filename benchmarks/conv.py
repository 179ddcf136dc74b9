"""Convolution workloads, nnscratch beside PyTorch (CPU), in one run.

Usage::

    python benchmarks/conv.py                  # cnn-wide and the sweep, both systems
    python benchmarks/conv.py --threads 1      # BLAS / torch threads for both
    python benchmarks/conv.py --profile        # also: where nnscratch's time goes
    python benchmarks/conv.py --plot conv_sweep.png   # the sweep as a figure

Workload ``cnn-wide``: 2,000 x 3 x 32 x 32 random images, 10 classes,
Conv2D(3->32, 3x3, padding 1) -> ReLU -> MaxPool 2 -> Conv2D(32->64, 3x3,
padding 1) -> ReLU -> MaxPool 2 -> Flatten -> Dense(4096->10), softmax
cross-entropy, Adam 1e-3, batch 64, float32.

The sweep: one Conv2D(C -> O, k x k, stride s, padding k // 2) -> ReLU ->
Flatten -> Dense(-> 10) network per shape, 1,024 random images per epoch,
channels 8 to 128, 8x8 to 32x32 images, 3x3 and 5x5 kernels, stride 1 and 2,
batch 32 to 128.

Each (system, workload) pair runs in its own subprocess, so its peak memory
(``ru_maxrss``) is its own; "train MB" is that peak minus the resident size
just before the model is built (for torch that leaves out what importing
torch costs). Time per epoch is the best of 3 epochs after one warm-up; the
pairs run in rounds (``--rounds``, default 2), alternating the systems, and
each keeps its best round, which evens out a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EPOCHS = 3  # timed, after one warm-up epoch


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass(frozen=True)
class ConvShape:
    """One sweep point: a Conv2D -> ReLU -> Flatten -> Dense(10) network."""

    c_in: int
    c_out: int
    size: int
    kernel: int
    stride: int
    batch: int
    samples: int = 1024

    @property
    def name(self) -> str:
        return (
            f"{self.c_in}->{self.c_out} {self.size}x{self.size} k{self.kernel} "
            f"s{self.stride} b{self.batch}"
        )

    @property
    def out_size(self) -> int:
        pad = self.kernel // 2
        return (self.size + 2 * pad - self.kernel) // self.stride + 1


SWEEP = [
    ConvShape(3, 32, 32, 3, 1, 64),  # cnn-wide's first layer
    ConvShape(32, 64, 16, 3, 1, 64),  # cnn-wide's second layer
    ConvShape(8, 8, 32, 3, 1, 32),
    ConvShape(16, 32, 32, 5, 1, 64),
    ConvShape(32, 32, 32, 3, 2, 128),
    ConvShape(64, 64, 16, 3, 2, 128),
    ConvShape(128, 128, 8, 3, 1, 64),
    ConvShape(64, 128, 8, 5, 1, 32),
    ConvShape(128, 64, 16, 3, 1, 32),
    ConvShape(16, 16, 8, 5, 2, 128),
]


def workload(name: str) -> tuple[str, ConvShape | None]:
    if name == "cnn-wide":
        return name, None
    return name, SWEEP[int(name.split("-")[1])]


def data(shape: ConvShape | None) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(0)
    if shape is None:
        X = rng.random((2000, 3, 32, 32), dtype=np.float32)
        return X, rng.integers(0, 10, 2000), 64
    X = rng.random((shape.samples, shape.c_in, shape.size, shape.size), np.float32)
    return X, rng.integers(0, 10, shape.samples), shape.batch


# ------------------------------------------------------------------ nnscratch
def nnscratch_layers(shape: ConvShape | None) -> list:
    from nnscratch import Activation, Dense
    from nnscratch.layers.conv2d import Conv2D
    from nnscratch.layers.flatten import Flatten
    from nnscratch.layers.pooling import MaxPool2D

    if shape is None:
        return [
            Conv2D(3, 32, 3, padding=1),
            Activation("relu"),
            MaxPool2D(2),
            Conv2D(32, 64, 3, padding=1),
            Activation("relu"),
            MaxPool2D(2),
            Flatten(),
            Dense(64 * 8 * 8, 10),
        ]
    s = shape
    return [
        Conv2D(s.c_in, s.c_out, s.kernel, stride=s.stride, padding=s.kernel // 2),
        Activation("relu"),
        Flatten(),
        Dense(s.c_out * s.out_size**2, 10),
    ]


def nnscratch_model(shape: ConvShape | None):
    from nnscratch import Activation, Adam, NeuralNetwork

    model = NeuralNetwork(loss_name="cce", optimizer=Adam(1e-3), seed=0)
    for layer in [*nnscratch_layers(shape), Activation("softmax")]:
        model.add(layer)
    return model


def nnscratch_epochs(model, X, y, batch: int, epochs: int) -> list[float]:
    from nnscratch import Callback

    times: list[float] = []

    class Timer(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.train(X, y, epochs=epochs, batch_size=batch, verbose=0, callbacks=[Timer()])
    return times


# -------------------------------------------------------------------- PyTorch
def torch_model(shape: ConvShape | None):
    from torch import nn

    if shape is None:
        return nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 8 * 8, 10),
        )
    s = shape
    return nn.Sequential(
        nn.Conv2d(s.c_in, s.c_out, s.kernel, stride=s.stride, padding=s.kernel // 2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(s.c_out * s.out_size**2, 10),
    )


def torch_epochs(model, X, y, batch: int, epochs: int) -> list[float]:
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(X_t))
        for i in range(0, len(order), batch):
            rows = order[i : i + batch]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(X_t[rows]), y_t[rows])
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def run_worker(system: str, name: str) -> None:
    """Child process: train, time, and print one JSON line of results."""
    _, shape = workload(name)
    X, y, batch = data(shape)
    if system == "pytorch":
        import torch

        torch.manual_seed(0)
        threads = os.environ.get("OMP_NUM_THREADS")
        if threads:
            torch.set_num_threads(int(threads))
    before = current_rss_mb()
    if system == "pytorch":
        times = torch_epochs(torch_model(shape), X, y, batch, EPOCHS + 1)
    else:
        times = nnscratch_epochs(nnscratch_model(shape), X, y, batch, EPOCHS + 1)
    peak = peak_rss_mb()
    result = {
        "seconds": min(times[1:]),
        "median_seconds": statistics.median(times[1:]),
        "peak_rss_mb": peak,
        "train_mb": peak - before,
    }
    print(json.dumps(result))


def measure(system: str, name: str) -> dict:
    command = [sys.executable, __file__, "--worker", system, name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": reason[:120]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def best_of(name: str, rounds: int) -> tuple[dict, dict]:
    """Each system's fastest of ``rounds`` runs, the systems alternating."""
    best: dict[str, dict] = {}
    for _ in range(rounds):
        for system in ("nnscratch", "pytorch"):
            result = measure(system, name)
            kept = best.get(system)
            if (
                kept is None
                or "error" in kept
                or ("error" not in result and result["seconds"] < kept["seconds"])
            ):
                best[system] = result
    return best["nnscratch"], best["pytorch"]


# ------------------------------------------------------------------- profile
def _timed(totals: dict, label: str, function):
    """``function``, adding its wall time to ``totals[label]`` (a plain
    function, so that it binds as a method when set on a class)."""

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - start

    return timed


class _TimedNumpy:
    """``np`` for the convolution module, with ``matmul`` timed (its GEMMs)."""

    def __init__(self, totals: dict) -> None:
        self.matmul = _timed(totals, "conv GEMMs", np.matmul)

    def __getattr__(self, name: str):
        return getattr(np, name)


def profile(shape: ConvShape | None = None) -> dict[str, float]:
    """Seconds per epoch of nnscratch's cnn-wide, split by part (one epoch
    after a warm-up; nested parts are subtracted from their callers)."""
    import nnscratch.layers.conv2d as conv2d
    from nnscratch import Activation, Dense
    from nnscratch.layers.flatten import Flatten
    from nnscratch.layers.pooling import MaxPool2D

    X, y, batch = data(shape)
    model = nnscratch_model(shape)
    nnscratch_epochs(model, X, y, batch, 1)  # warm-up
    totals: dict[str, float] = defaultdict(float)
    patched = []

    def patch(owner, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)
        patched.append((owner, attribute, original))
        setattr(owner, attribute, _timed(totals, label, original))

    for attribute, label in (("im2col", "im2col"), ("add_windows", "col2im")):
        patch(conv2d, attribute, label)
    patched.append((conv2d, "np", conv2d.np))
    conv2d.np = _TimedNumpy(totals)
    for owner, label in (
        (conv2d.Conv2D, "conv (rest: bias, layout, checks)"),
        (MaxPool2D, "max pooling"),
        (Activation, "activations (ReLU, softmax)"),
        (Flatten, "flatten (layout change)"),
        (Dense, "dense"),
    ):
        for method in ("forward", "backward"):
            patch(owner, method, label)
    patch(model.optimizer, "step", "optimizer (Adam)")
    start = time.perf_counter()
    nnscratch_epochs(model, X, y, batch, 1)
    total = time.perf_counter() - start
    for owner, attribute, original in reversed(patched):
        setattr(owner, attribute, original)
    rest = totals.pop("conv (rest: bias, layout, checks)")
    rest -= sum(totals[k] for k in ("im2col", "col2im", "conv GEMMs"))
    parts = dict(totals)
    parts["conv (rest: bias, layout, checks)"] = rest
    parts["loss, batching, checks, Python"] = total - sum(parts.values())
    parts["total"] = total
    return parts


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["name"] for row in rows]
    ours = [row["nnscratch"] for row in rows]
    theirs = [row["pytorch"] for row in rows]
    positions = np.arange(len(rows))
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    top.bar(positions - 0.2, ours, 0.4, label="nnscratch")
    top.bar(positions + 0.2, theirs, 0.4, label="PyTorch (CPU)")
    top.set_yscale("log")
    top.set_ylabel("seconds per epoch (log)")
    top.set_title("Conv2D -> ReLU -> Dense, 1,024 images per epoch, float32")
    top.legend()
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    colours = ["tab:green" if r <= 1.0 else "tab:red" for r in ratios]
    bottom.bar(positions, ratios, 0.6, color=colours)
    bottom.axhline(1.0, color="black", linewidth=0.8)
    bottom.axhline(1.5, color="grey", linewidth=0.8, linestyle="--")
    bottom.set_ylabel("nnscratch / PyTorch")
    bottom.set_xticks(positions, names, rotation=35, ha="right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="save the results")
    args = parser.parse_args()
    if args.threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.threads)
    if args.worker:
        run_worker(*args.worker)
        return
    print(f"threads: {os.environ.get('OMP_NUM_THREADS', 'default')}\n")
    names = ["cnn-wide"] + (
        [] if args.no_sweep else [f"sweep-{i}" for i in range(len(SWEEP))]
    )
    rows = []
    print(
        "| workload | nnscratch s/epoch | PyTorch s/epoch | x PyTorch "
        "| peak RSS MB (ours / torch) | train MB (ours / torch) |"
    )
    print("|---|---|---|---|---|---|")
    for name in names:
        ours, theirs = best_of(name, args.rounds)
        label = name if name == "cnn-wide" else workload(name)[1].name
        if "error" in ours or "error" in theirs:
            errors = f"{ours.get('error', '')} | {theirs.get('error', '')}"
            print(f"| {label} | {errors} | | | |")
            continue
        ratio = ours["seconds"] / theirs["seconds"]
        print(
            f"| {label} | {ours['seconds']:.3f} | {theirs['seconds']:.3f} | "
            f"{ratio:.2f} | {ours['peak_rss_mb']:.0f} / {theirs['peak_rss_mb']:.0f} | "
            f"{ours['train_mb']:.0f} / {theirs['train_mb']:.0f} |",
            flush=True,
        )
        rows.append(
            {
                "name": label,
                "nnscratch": ours["seconds"],
                "pytorch": theirs["seconds"],
                "ours": ours,
                "theirs": theirs,
            }
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.plot and len(rows) > 1:
        plot(rows[1:], args.plot)
    if args.profile:
        parts = profile()
        total = parts.pop("total")
        print(f"\nnnscratch cnn-wide, one epoch: {total:.3f} s")
        print("| part | s/epoch | share |\n|---|---|---|")
        for part, seconds in sorted(parts.items(), key=lambda item: -item[1]):
            print(f"| {part} | {seconds:.3f} | {100 * seconds / total:.0f}% |")


if __name__ == "__main__":
    main()
