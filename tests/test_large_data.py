"""Training on data much larger than the memory the process uses.

A 320 MB float32 file is trained on for one epoch, memory-mapped
(``np.load(path, mmap_mode='r')``) and then read by a batch generator, in a
fresh subprocess that samples its own memory after every batch.

What is measured is ``RssAnon`` from ``/proc/self/status``: the anonymous
memory the process has allocated (NumPy arrays, Python objects). Not the
resident set (``VmRSS``) nor its peak (``VmHWM``): those also count every
page of the file that the mapping brings in, which is page cache that the
kernel holds and can drop at any time, file-backed (``RssFile``) and not
allocated by the process. After one pass over a mapped file VmRSS has grown
by about the file's size however little the process allocates; RssAnon grows
only by what training really holds (a batch, its activations, the shuffled
order of the rows). Where this was written, RssAnon grew by 8.6 MiB (the
array, 8 MiB of it the shuffled order) and 0.3 MiB (the generator) while
VmRSS grew by 318 and 309 MiB, for a file of 305 MiB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROWS, FEATURES = 1_000_000, 80  # 320 MB of float32
CHUNK_ROWS = 50_000

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(),
    reason="needs /proc/self/status (Linux) to read RssAnon",
)

TRAIN_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import numpy as np

    from nnscratch import SGD, Activation, Callback, Dense, NeuralNetwork


    def memory_kb():
        # (RssAnon, VmRSS) in kB, from lines such as 'RssAnon:   1234 kB'.
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return tuple(int(fields[key].split()[0]) for key in ("RssAnon", "VmRSS"))


    class SampleMemory(Callback):
        def on_train_begin(self, logs=None):
            self.anon, self.rss = [], []

        def on_batch_end(self, batch, logs=None):
            anon, rss = memory_kb()
            self.anon.append(anon)
            self.rss.append(rss)


    def measure(X, y, features):
        model = NeuralNetwork(loss_name="bce", optimizer=SGD(0.05), seed=0)
        for layer in (Dense(features, 32), Activation("relu"), Dense(32, 1),
                      Activation("sigmoid")):
            model.add(layer)
        sampler = SampleMemory()
        anon_before, rss_before = memory_kb()
        history = model.train(X, y, epochs=1, batch_size=256, verbose=0,
                              callbacks=[sampler])
        return {
            "batches": len(sampler.anon),
            "loss": history["loss"][0],
            "anon_growth_mb": (max(sampler.anon) - anon_before) / 1024,
            "rss_growth_mb": (max(sampler.rss) - rss_before) / 1024,
        }  # in MiB


    X = np.load(sys.argv[1], mmap_mode="r")
    y = np.load(sys.argv[2], mmap_mode="r")
    results = {"array": measure(X, y, X.shape[1])}
    del X, y  # unmapped: the generator maps the file afresh


    def batches():
        X = np.load(sys.argv[1], mmap_mode="r")
        y = np.load(sys.argv[2], mmap_mode="r")
        for start in range(0, len(X), 256):
            yield X[start : start + 256], y[start : start + 256]


    results["stream"] = measure(batches, None, int(sys.argv[3]))
    print(json.dumps(results))
    """
)


def write_data(X_path: Path, y_path: Path) -> None:
    """X: ROWS x FEATURES float32 written a chunk at a time; y: a column."""
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(X_path, "w+", np.float32, (ROWS, FEATURES))
    y = np.lib.format.open_memmap(y_path, "w+", np.float32, (ROWS, 1))
    for start in range(0, ROWS, CHUNK_ROWS):
        chunk = rng.random((CHUNK_ROWS, FEATURES), dtype=np.float32) - 0.5
        X[start : start + CHUNK_ROWS] = chunk
        # A label the network can learn: the sign of two features' sum.
        y[start : start + CHUNK_ROWS, 0] = chunk[:, 0] + chunk[:, 1] > 0
    X.flush()
    y.flush()


def test_training_on_a_memory_mapped_file_allocates_far_less_than_the_file(
    tmp_path,
):
    X_path, y_path = tmp_path / "X.npy", tmp_path / "y.npy"
    try:
        write_data(X_path, y_path)
        file_mb = X_path.stat().st_size / 2**20  # 305 MiB
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                TRAIN_SCRIPT,
                str(X_path),
                str(y_path),
                str(FEATURES),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        # pytest keeps the last few tmp_paths: not with 320 MB in them.
        X_path.unlink(missing_ok=True)
        y_path.unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    for mode in ("array", "stream"):
        figures = results[mode]
        assert figures["batches"] == -(-ROWS // 256)
        assert np.isfinite(figures["loss"])
        # Shown with -rA: RssAnon's peak growth against the file size.
        print(
            f"{mode}: RssAnon peak growth {figures['anon_growth_mb']:.1f} MiB, "
            f"VmRSS peak growth {figures['rss_growth_mb']:.1f} MiB, "
            f"file {file_mb:.0f} MiB"
        )
        assert figures["anon_growth_mb"] < file_mb / 4, figures
