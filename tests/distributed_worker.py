"""The script tests/test_distributed.py starts under ``mpiexec -n 2``.

``python tests/distributed_worker.py SCENARIO OUT_DIR``; the models are
also imported by the tests, which train them on one process to compare.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from pathlib import Path

import numpy as np

from nnscratch import (
    LSTM,
    Activation,
    Adam,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    MaxPool2D,
    NeuralNetwork,
    PositionalEmbedding,
    Residual,
    Sequential,
    TransformerBlock,
)
from nnscratch.engine.callbacks import Callback, CSVLogger, ModelCheckpoint

EPOCHS = 3


def mlp_dropout():
    model = NeuralNetwork("cce", Adam(0.01), seed=0, dtype="float64")
    model.add(Dense(6, 16))
    model.add(Activation("relu"))
    model.add(Dropout(0.3))
    model.add(Dense(16, 3))
    model.add(Activation("softmax"))
    rng = np.random.default_rng(1)
    X = rng.standard_normal((203, 6))  # 6 batches of 32, then 11: 5 + 6 rows
    return model, X, rng.integers(0, 3, 203), 32


def cnn_batchnorm():
    model = NeuralNetwork("cce", Adam(0.01), seed=0, dtype="float64")
    model.add(Conv2D(1, 4, 3, padding=1))
    # After the ReLU: a bias just before BatchNorm would get a gradient of
    # rounding noise only, which Adam scales up to steps of ~1e-11.
    model.add(Activation("relu"))
    model.add(BatchNorm(4))
    model.add(MaxPool2D(2))
    model.add(Flatten())
    model.add(Dense(4 * 4 * 4, 3))
    model.add(Activation("softmax"))
    rng = np.random.default_rng(2)
    X = rng.standard_normal((45, 1, 8, 8))  # batches of 16, 16, 13 (6 + 7)
    return model, X, rng.integers(0, 3, 45), 16


def residual():
    model = NeuralNetwork("mse", Adam(0.01), seed=0, dtype="float64")
    model.add(Dense(5, 8, l2_lambda=0.01))
    model.add(Residual(Sequential(BatchNorm(8), Dense(8, 8), Activation("tanh"))))
    model.add(Dense(8, 1))
    rng = np.random.default_rng(3)
    X = rng.standard_normal((62, 5))
    return model, X, rng.standard_normal((62, 1)), 20


def sequences():
    # Attention dropout draws a mask per (sample, head, query, key): its
    # global-batch draw is the one that must match; an LSTM after it.
    model = NeuralNetwork("cce", Adam(0.01), seed=0, dtype="float64")
    model.add(Embedding(7, 8))
    model.add(PositionalEmbedding(5, 8))
    model.add(TransformerBlock(8, 2, mlp_ratio=2, dropout=0.2))
    model.add(LSTM(8, 6, return_sequences=True))
    model.add(Dense(6, 7))
    model.add(Activation("softmax"))
    rng = np.random.default_rng(4)
    X = rng.integers(0, 7, (39, 5))
    return model, X, rng.integers(0, 7, (39, 5)), 12


def gpt_rounds(distributed=None):
    """The char-GPT demo's training loop on a tiny transformer: 3 rounds of
    2 steps, with all the time in the world."""
    from nnscratch import CharTokenizer
    from nnscratch.apps.gpt import build_char_gpt, train_for
    from nnscratch.utils.text import next_token_windows

    text = "def add(a, b):\n    return a + b\n\n" * 8
    tokenizer = CharTokenizer().fit(text)
    X, y = next_token_windows(tokenizer.encode(text), 8, stride=4)
    model = build_char_gpt(
        tokenizer.vocab_size, context=8, width=16, num_heads=2, num_blocks=1
    )
    history = train_for(
        model, (X, y), (X[:8], y[:8]), seconds=1e6, steps_per_round=2,
        batch_size=8, rounds=3, distributed=distributed,
    )  # fmt: skip
    return model, history


MODELS = {
    "mlp_dropout": mlp_dropout,
    "cnn_batchnorm": cnn_batchnorm,
    "residual": residual,
    "sequences": sequences,
}


def validation(X, y):
    return X[: len(X) // 3], y[: len(y) // 3]


def train(name, distributed=None, **options):
    model, X, y, batch_size = MODELS[name]()
    X_val, y_val = validation(X, y)
    history = model.train(
        X,
        y,
        epochs=EPOCHS,
        batch_size=batch_size,
        X_val=X_val,
        y_val=y_val,
        distributed=distributed,
        **options,
    )
    return model, history


def save(out: Path, name: str, rank: int, model, history) -> None:
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays |= {f"h_{key}": np.array(values) for key, values in history.items()}
    arrays["iterations"] = np.array(model.optimizer.iterations)
    np.savez(out / f"{name}.rank{rank}.npz", **arrays)


class RaiseOn(Callback):
    def __init__(self, rank, me):
        self.rank, self.me = rank, me

    def on_epoch_end(self, epoch, logs=None):
        if self.me == self.rank and epoch == 1:
            raise RuntimeError("a callback failed on purpose")


class SignalOn(Callback):
    def __init__(self, rank, me, signum, batch):
        self.rank, self.me, self.signum, self.batch = rank, me, signum, batch

    def on_batch_end(self, batch, logs=None):
        if self.me == self.rank and batch == self.batch:
            os.kill(os.getpid(), self.signum)


def main() -> None:
    from nnscratch.distributed import DataParallel

    scenario, out = sys.argv[1], Path(sys.argv[2])
    dp = DataParallel()
    rank = dp.rank
    if scenario == "equal":
        for name in MODELS:
            callbacks = [
                ModelCheckpoint(str(out / f"{name}.ckpt.rank{rank}.npz")),
                CSVLogger(str(out / f"{name}.log.rank{rank}.csv")),
            ]
            model, history = train(name, dp, verbose=2, callbacks=callbacks)
            save(out, name, rank, model, history)
    elif scenario == "resume":
        name = "mlp_dropout"
        path = out / "run.npz"
        model, X, y, batch_size = MODELS[name]()
        model.train(
            X,
            y,
            epochs=2,
            batch_size=batch_size,
            verbose=0,
            callbacks=[ModelCheckpoint(str(path))],
            distributed=dp,
        )
        dp.comm.Barrier()  # process 0's checkpoint is on disk
        model, X, y, batch_size = MODELS[name]()
        history = model.train(
            X,
            y,
            epochs=EPOCHS,
            batch_size=batch_size,
            verbose=0,
            resume_from=str(path),
            distributed=dp,
        )
        save(out, "resumed", rank, model, history)
    elif scenario == "bad_input":
        model, X, y, batch_size = MODELS["mlp_dropout"]()
        if rank == 1:
            X = X.copy()
            X[7, 2] = np.nan
        model.train(
            X, y, epochs=EPOCHS, batch_size=batch_size, verbose=0, distributed=dp
        )
    elif scenario == "small_stream":
        model, X, y, _ = MODELS["mlp_dropout"]()
        # Streamed batches of 16, 16 and then 1: one row for two processes.
        batches = [(X[:16], y[:16]), (X[16:32], y[16:32]), (X[32:33], y[32:33])]
        model.train(lambda: iter(batches), epochs=EPOCHS, verbose=0, distributed=dp)
    elif scenario == "outside_train":
        if rank == 0:
            raise RuntimeError("the script failed before train")
        train("mlp_dropout", dp, verbose=0)
    elif scenario == "callback_error":
        train("mlp_dropout", dp, verbose=0, callbacks=[RaiseOn(1, rank)])
    elif scenario == "killed":
        train(
            "mlp_dropout",
            dp,
            verbose=0,
            callbacks=[SignalOn(1, rank, signal.SIGKILL, 3)],
        )
    elif scenario == "ctrl_c":
        model, history = train(
            "mlp_dropout",
            dp,
            verbose=0,
            callbacks=[SignalOn(1, rank, signal.SIGINT, 2)],
        )
        save(out, "ctrl_c", rank, model, history)
    elif scenario == "early_stopping":
        model, history = train("mlp_dropout", dp, verbose=0, early_stopping_patience=1)
        save(out, "early", rank, model, history)
    elif scenario == "gpt_rounds":
        import time

        if rank == 1:
            # Process 1's clock jumps 1e7 s ahead once the run has started:
            # the time is up after its first round. Process 0's clock, which
            # decides, gives all 3 rounds.
            clock, calls = time.perf_counter, itertools.count()
            time.perf_counter = lambda: clock() + 1e7 * (next(calls) > 0)
        model, history = gpt_rounds(dp)
        save(out, "gpt_rounds", rank, model, history)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main()
