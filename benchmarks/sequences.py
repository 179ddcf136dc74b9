"""Sequence workloads, nnscratch beside PyTorch (CPU) in one run.

Usage::

    python benchmarks/sequences.py             # both workloads, both systems
    python benchmarks/sequences.py --threads 1 # BLAS / torch threads (default 2)
    python benchmarks/sequences.py --profile   # also: where nnscratch's time goes
    python benchmarks/sequences.py --processes 2   # also: nnscratch data-parallel,
                                                   # mpiexec -n 2, 1 thread each

Workload LSTM: 4,000 sequences of 28 steps x 28 features (the MNIST shape,
random data), LSTM(28 -> 128) -> Dense(128 -> 10), softmax cross-entropy,
Adam 1e-3, batch 64. Workload GPT: a character transformer, vocabulary 65,
context 64, width 128, 4 heads, 2 pre-norm blocks (MLP 4x, exact GELU),
final LayerNorm and Dense head, AdamW 1e-3, batch 32, 1,024 random windows.

Each (system, workload) pair runs in its own subprocess, so that its peak
memory (``ru_maxrss``) is its own; "train MB" is the peak minus the resident
size just before the model is built (for torch that leaves out the ~300 MB
that importing torch costs). Time per step is the median over the timed
epochs after one warm-up epoch; the pairs run in rounds, alternating the
systems, and each keeps its best round, which evens out a busy machine.

With ``--processes K`` (the ``mpi`` extra), nnscratch also runs as K
processes of one BLAS thread each under ``mpiexec -n K``, with
``train(..., distributed=DataParallel())``: the same global batch, the same
weights as one process (see docs/distributed.md), and NumPy's single-threaded
element-wise work on every core. Its peak memory is the sum over the
processes.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np

EPOCHS = 3  # timed, after one warm-up epoch
GPT = {"vocab": 65, "context": 64, "width": 128, "heads": 4, "blocks": 2}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lstm_data():
    rng = np.random.default_rng(0)
    X = rng.random((4000, 28, 28), dtype=np.float32)
    return X, rng.integers(0, 10, 4000), 64


def gpt_data():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, GPT["vocab"], (1024, GPT["context"] + 1))
    return ids[:, :-1], ids[:, 1:], 32


# ------------------------------------------------------------------ nnscratch
def nnscratch_model(workload: str):
    from nnscratch import Activation, Adam, AdamW, Dense, NeuralNetwork
    from nnscratch.layers.embedding import Embedding
    from nnscratch.layers.layernorm import LayerNorm
    from nnscratch.layers.lstm import LSTM
    from nnscratch.layers.positional_embedding import PositionalEmbedding
    from nnscratch.layers.transformer import TransformerBlock

    if workload == "lstm":
        model = NeuralNetwork(loss_name="cce", optimizer=Adam(1e-3), seed=0)
        layers = [LSTM(28, 128), Dense(128, 10), Activation("softmax")]
    else:
        V, T, D = GPT["vocab"], GPT["context"], GPT["width"]
        model = NeuralNetwork(loss_name="cce", optimizer=AdamW(1e-3), seed=0)
        blocks = [TransformerBlock(D, GPT["heads"]) for _ in range(GPT["blocks"])]
        layers = [Embedding(V, D), PositionalEmbedding(T, D), *blocks]
        layers += [LayerNorm(D), Dense(D, V), Activation("softmax")]
    for layer in layers:
        model.add(layer)
    return model


def nnscratch_epochs(workload: str, X, y, batch: int, distributed=None) -> list[float]:
    model = nnscratch_model(workload)
    steps = -(-len(X) // batch)
    times = []
    for _ in range(EPOCHS + 1):
        start = time.perf_counter()
        model.train(
            X, y, epochs=1, batch_size=batch, verbose=0, distributed=distributed
        )
        times.append((time.perf_counter() - start) / steps)
    return times[1:]


def data_parallel_epochs(workload: str, X, y, batch: int) -> list[float]:
    from nnscratch.distributed import DataParallel

    return nnscratch_epochs(workload, X, y, batch, distributed=DataParallel())


# ---------------------------------------------------------------------- torch
def torch_model(workload: str):
    import torch
    from torch import nn

    if workload == "lstm":

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(28, 128, batch_first=True)
                self.head = nn.Linear(128, 10)

            def forward(self, x):
                return self.head(self.lstm(x)[0][:, -1])

        model = Net()
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    V, T, D, H = GPT["vocab"], GPT["context"], GPT["width"], GPT["heads"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
            self.attention = nn.MultiheadAttention(D, H, batch_first=True)
            self.mlp = nn.Sequential(
                nn.Linear(D, 4 * D), nn.GELU(), nn.Linear(4 * D, D)
            )

        def forward(self, x, mask):
            h = self.ln1(x)
            x = x + self.attention(h, h, h, attn_mask=mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class GPTNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(V, D)
            self.position = nn.Parameter(0.02 * torch.randn(T, D))
            self.blocks = nn.ModuleList(Block() for _ in range(GPT["blocks"]))
            self.norm, self.head = nn.LayerNorm(D), nn.Linear(D, V)
            self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=bool), 1))

        def forward(self, ids):
            x = self.embedding(ids) + self.position[: ids.shape[1]]
            for block in self.blocks:
                x = block(x, self.mask)
            return self.head(self.norm(x))

    model = GPTNet()
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


def torch_epochs(workload: str, X, y, batch: int) -> list[float]:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    model, optimizer = torch_model(workload)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)
    times = []
    for _ in range(EPOCHS + 1):
        start = time.perf_counter()
        order = torch.randperm(len(X_t), generator=generator)
        for i in range(0, len(X_t), batch):
            rows = order[i : i + batch]
            optimizer.zero_grad()
            out = model(X_t[rows])
            loss = F.cross_entropy(
                out.reshape(-1, out.shape[-1]), y_t[rows].reshape(-1)
            )
            loss.backward()
            optimizer.step()
        times.append((time.perf_counter() - start) / -(-len(X_t) // batch))
    return times[1:]


# --------------------------------------------------------------------- driver
def worker(system: str, workload: str, threads: int) -> None:
    if system == "torch":
        import torch

        torch.set_num_threads(threads)
    from nnscratch.utils.threads import set_num_threads

    set_num_threads(threads)
    X, y, batch = lstm_data() if workload == "lstm" else gpt_data()
    before = peak_rss_mb()
    run = {
        "torch": torch_epochs,
        "nnscratch": nnscratch_epochs,
        "data-parallel": data_parallel_epochs,
    }[system]
    times = run(workload, X, y, batch)
    memory = [peak_rss_mb(), peak_rss_mb() - before]
    if system == "data-parallel":
        from mpi4py import MPI

        # Every process's memory counts; the step time is process 0's (the
        # allreduce makes every process wait for the slowest).
        memory = [MPI.COMM_WORLD.allreduce(value, op=MPI.SUM) for value in memory]
        if MPI.COMM_WORLD.Get_rank():
            return
    result = {
        "step_s": statistics.median(times),
        "peak_rss_mb": memory[0],
        "train_mb": memory[1],
    }
    print(json.dumps(result))


def measure(
    system: str, workload: str, threads: int, launcher: tuple[str, ...] = ()
) -> dict:
    command = [*launcher, sys.executable, __file__, "--worker", system, workload]
    command += ["--threads", str(threads)]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=1800
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


WORKLOADS = ("lstm", "gpt")


def best_of_rounds(
    run: Callable[..., dict], systems: dict[str, tuple], rounds: int
) -> dict[tuple[str, str], dict]:
    """Each (workload, system)'s fastest result over ``rounds`` rounds.

    ``systems`` maps a system to ``(launcher, threads, label)``; every round
    runs each workload once per system, in turn, with
    ``run(system, workload, threads, launcher)``, so that a busy minute
    slows every system alike.
    """
    best: dict[tuple[str, str], dict] = {}
    for _ in range(rounds):
        for workload in WORKLOADS:
            for system, (launcher, threads, _) in systems.items():
                result = run(system, workload, threads, launcher)
                key = (workload, system)
                if key not in best or result["step_s"] < best[key]["step_s"]:
                    best[key] = result
    return best


def table(best: dict[tuple[str, str], dict], systems: dict[str, tuple]) -> str:
    """The markdown table of :func:`best_of_rounds`' results, each time also
    as a ratio to torch's on the same workload."""
    rows = [
        "| workload | system | ms / step | x PyTorch | peak RSS MB | train MB |",
        "|---|---|---|---|---|---|",
    ]
    for workload in WORKLOADS:
        reference = best[(workload, "torch")]["step_s"]
        for system, (_, _, label) in systems.items():
            r = best[(workload, system)]
            rows.append(
                f"| {workload} | {label} | {1e3 * r['step_s']:.1f} | "
                f"{r['step_s'] / reference:.2f} | {r['peak_rss_mb']:.0f} | "
                f"{r['train_mb']:.0f} |"
            )
    return "\n".join(rows)


def profile(workload: str, steps: int = 10) -> dict[str, float]:
    """Wall seconds per step in each leaf layer type's forward and backward."""
    from nnscratch.core.tree import leaves
    from nnscratch.layers.attention import MultiHeadAttention

    model = nnscratch_model(workload)
    X, y, batch = lstm_data() if workload == "lstm" else gpt_data()
    totals: dict[str, float] = defaultdict(float)
    wrapped = set()

    def timed(function, label):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            totals[label] += time.perf_counter() - start
            return result

        return wrapper

    for _, layer in leaves(model.layers):
        kind = type(layer).__name__
        if kind == "Activation":
            kind = f"Activation({layer.name})"
        for method in ("forward", "backward"):
            if (id(layer), method) not in wrapped:
                setattr(
                    layer, method, timed(getattr(layer, method), f"{kind}.{method}")
                )
                wrapped.add((id(layer), method))
    for name in ("_attend", "_heads", "_merge"):  # inside attention's forward
        original = getattr(MultiHeadAttention, name)
        setattr(MultiHeadAttention, name, timed(original, f"  attention.{name}"))
    model.optimizer.step = timed(model.optimizer.step, "optimizer.step")
    x, t = X[:batch], y[:batch]
    model.train_step(x, t)
    totals.clear()
    start = time.perf_counter()
    for _ in range(steps):
        model.train_step(x, t)
    totals["total step"] = time.perf_counter() - start
    return {key: value / steps for key, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="also run nnscratch data-parallel on this many processes",
    )
    parser.add_argument("--worker", nargs=2, metavar=("SYSTEM", "WORKLOAD"))
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.threads)
        return
    # system -> (how measure() starts it, its BLAS threads, its row label)
    systems = {
        "nnscratch": ((), args.threads, "nnscratch"),
        "torch": ((), args.threads, "torch"),
    }
    if args.processes:
        mpiexec = shutil.which("mpiexec")
        if mpiexec is None:
            raise SystemExit("mpiexec not found: pip install -e '.[mpi]'")
        launcher = (mpiexec, "-n", str(args.processes))
        label = f"nnscratch, {args.processes} processes x 1 thread"
        systems["data-parallel"] = (launcher, 1, label)
    best = best_of_rounds(measure, systems, args.rounds)
    import torch

    print(f"threads: {args.threads}; torch {torch.__version__}; numpy {np.__version__}")
    print(table(best, systems))
    if args.profile:
        from nnscratch.utils.threads import set_num_threads

        set_num_threads(args.threads)
        for workload in WORKLOADS:
            print(f"\nnnscratch {workload}: ms per training step")
            for key, value in sorted(profile(workload).items(), key=lambda kv: -kv[1]):
                print(f"  {key:34s} {1e3 * value:8.1f}")


if __name__ == "__main__":
    main()
