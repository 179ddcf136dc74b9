"""The workloads and, for each system, a runner that trains them.

A runner is built from a workload and offers ``timed_epochs(n)`` (seconds of
each of ``n`` shuffled passes), ``predict()`` (inference on the whole
training set) and ``loss()`` (the last epoch's loss, to show it trained).
``scale`` > 1 marks a runner that times a fraction of an epoch (numpy-ml's
convolution, which would take minutes per epoch) and multiplies up.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field

import numpy as np

PREDICT_BATCH = 256  # nnscratch.predict's default


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux: ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


FLUSH_FLOAT32 = float(np.finfo(np.float32).tiny) * 2.0**25  # see flush_subnormals


@dataclass
class Workload:
    name: str
    description: str
    n_samples: int
    batch_size: int
    n_classes: int = 10
    hidden: list[int] = field(default_factory=list)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """MNIST-shaped random inputs in [0, 1) and labels, the same each run."""
        rng = np.random.default_rng(0)
        X = rng.random((self.n_samples, *self.input_shape), dtype=np.float32)
        return X, rng.integers(0, self.n_classes, self.n_samples)


@dataclass
class MLPWorkload(Workload):
    input_shape: tuple[int, ...] = (784,)

    @property
    def sizes(self) -> list[int]:
        return [784, *self.hidden, self.n_classes]

    @property
    def flops_per_epoch(self) -> float:
        # Forward 2*N*in*out per layer; backward dW the same, dx the same for
        # every layer but the first (its input needs no gradient).
        products = [a * b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True)]
        return 2 * self.n_samples * (3 * sum(products) - products[0])


@dataclass
class CNNWorkload(Workload):
    input_shape: tuple[int, ...] = (1, 28, 28)
    channels: int = 8

    @property
    def flops_per_epoch(self) -> float:
        conv = 2 * self.n_samples * 26 * 26 * self.channels * 9  # forward; dW same
        dense = 2 * self.n_samples * 13 * 13 * self.channels * self.n_classes
        return 2 * conv + 3 * dense


def workload_a(
    n_samples: int = 20_000, batch_size: int = 128, hidden: list[int] | None = None
) -> MLPWorkload:
    hidden = hidden or [256, 128]
    return MLPWorkload(
        "A",
        f"MLP 784-{'-'.join(map(str, hidden))}-10, {n_samples} samples, "
        f"batch {batch_size}",
        n_samples,
        batch_size,
        hidden=hidden,
    )


def workload_b() -> CNNWorkload:
    return CNNWorkload(
        "B",
        "CNN conv(1->8, 3x3)-relu-maxpool-dense(1352->10), 4000 samples, batch 64",
        4000,
        64,
    )


WORKLOADS = {"A": workload_a, "B": workload_b}


class Runner:
    workloads = ("A", "B")
    scale = 1

    def __init__(self, spec: Workload) -> None:
        self.spec = spec
        self.X, self.y = spec.data()
        self.last_loss = float("nan")
        self.peak_rss: list[float] = []  # after each epoch

    def loss(self) -> float:
        return self.last_loss

    def timed_epochs(self, n: int) -> list[float]:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            self.epoch()
            times.append(time.perf_counter() - start)
            self.peak_rss.append(peak_rss_mb())
        return times


class NNScratch(Runner):
    def __init__(self, spec: Workload) -> None:
        super().__init__(spec)
        from nnscratch import Activation, Adam, Dense, NeuralNetwork

        self.model = NeuralNetwork(loss_name="cce", optimizer=Adam(1e-3), seed=0)
        if isinstance(spec, MLPWorkload):
            for i, (n_in, n_out) in enumerate(
                zip(spec.sizes[:-1], spec.sizes[1:], strict=True)
            ):
                self.model.add(Dense(n_in, n_out))
                if i < len(spec.sizes) - 2:
                    self.model.add(Activation("relu"))
        else:
            from nnscratch.layers.conv2d import Conv2D
            from nnscratch.layers.flatten import Flatten
            from nnscratch.layers.pooling import MaxPool2D

            for layer in (
                Conv2D(1, spec.channels, 3),
                Activation("relu"),
                MaxPool2D(2),
                Flatten(),
                Dense(13 * 13 * spec.channels, 10),
            ):
                self.model.add(layer)
        self.model.add(Activation("softmax"))

    def timed_epochs(self, n: int) -> list[float]:
        """One ``train`` call of ``n`` epochs (as a user runs it), timed per
        epoch by a callback; the one-time input checks fall outside."""
        from nnscratch import Callback

        times, peak_rss = [], self.peak_rss

        class Timer(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.start)
                peak_rss.append(peak_rss_mb())

        history = self.model.train(
            self.X,
            self.y,
            epochs=n,
            batch_size=self.spec.batch_size,
            verbose=0,
            callbacks=[Timer()],
        )
        self.last_loss = history["loss"][-1]
        return times

    def predict(self) -> None:
        self.model.predict(self.X, batch_size=PREDICT_BATCH)


class PyTorch(Runner):
    def __init__(self, spec: Workload) -> None:
        super().__init__(spec)
        import torch
        from torch import nn

        self.torch = torch
        torch.manual_seed(0)
        if isinstance(spec, MLPWorkload):
            layers = []
            for n_in, n_out in zip(spec.sizes[:-1], spec.sizes[1:], strict=True):
                layers += [nn.Linear(n_in, n_out), nn.ReLU()]
            self.model = nn.Sequential(*layers[:-1])
        else:
            self.model = nn.Sequential(
                nn.Conv2d(1, spec.channels, 3),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(13 * 13 * spec.channels, 10),
            )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.X_t = torch.from_numpy(self.X)
        self.y_t = torch.from_numpy(self.y)

    def epoch(self) -> None:
        torch, batch = self.torch, self.spec.batch_size
        order = torch.randperm(len(self.X_t))
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            self.optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                self.model(self.X_t[rows]), self.y_t[rows]
            )
            loss.backward()
            self.optimizer.step()
        self.last_loss = loss.item()

    def predict(self) -> None:
        with self.torch.no_grad():
            for start in range(0, len(self.X_t), PREDICT_BATCH):
                self.model(self.X_t[start : start + PREDICT_BATCH])


class NumpyLoop(Runner):
    """The floor: the same maths written as one tight NumPy loop, no layers.

    The weights are views into one flat buffer and the gradients are written
    into views of another, so that Adam runs over each flat buffer once per
    operation (as nnscratch's fused optimizer does).
    """

    workloads = ("A",)

    def __init__(self, spec: MLPWorkload) -> None:
        super().__init__(spec)
        rng = np.random.default_rng(0)
        pairs = list(zip(spec.sizes[:-1], spec.sizes[1:], strict=True))
        shapes = [shape for n_in, n_out in pairs for shape in ((n_in, n_out), (n_out,))]
        total = sum(int(np.prod(shape)) for shape in shapes)
        self.flat = np.zeros(total, np.float32)
        self.flat_grad = np.zeros(total, np.float32)
        self.params, self.grads, offset = [], [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            self.params.append(self.flat[offset : offset + size].reshape(shape))
            self.grads.append(self.flat_grad[offset : offset + size].reshape(shape))
            offset += size
        for W, (n_in, _) in zip(self.params[::2], pairs, strict=True):
            W[...] = rng.standard_normal(W.shape) * np.sqrt(2 / n_in)
        self.m, self.v = np.zeros_like(self.flat), np.zeros_like(self.flat)
        self.work = np.empty_like(self.flat)
        self.t = 0
        self.rng = rng

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        activations = [x]
        for i in range(0, len(self.params), 2):
            z = activations[-1] @ self.params[i]
            z += self.params[i + 1]
            if i < len(self.params) - 2:
                np.maximum(z, 0, out=z)
            activations.append(z)
        return activations

    def epoch(self) -> None:
        order = self.rng.permutation(len(self.X))
        for start in range(0, len(order), self.spec.batch_size):
            rows = np.sort(order[start : start + self.spec.batch_size])
            acts = self.forward(self.X[rows])
            logits = acts[-1]
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            labels = self.y[rows]
            self.last_loss = float(-np.log(p[np.arange(len(rows)), labels]).mean())
            p[np.arange(len(rows)), labels] -= 1
            grad = p / len(rows)
            for i in range(len(self.params) - 2, -1, -2):
                np.matmul(acts[i // 2].T, grad, out=self.grads[i])
                np.sum(grad, axis=0, out=self.grads[i + 1])
                if i:
                    grad = grad @ self.params[i].T
                    grad *= acts[i // 2] > 0
            self.adam()

    def adam(self) -> None:
        self.t += 1
        step = 1e-3 / (1 - 0.9**self.t)
        correction = 1.0 / math.sqrt(1 - 0.999**self.t)  # a Python float: no up-cast
        g, m, v, work = self.flat_grad, self.m, self.v, self.work
        m *= 0.9
        np.multiply(g, 0.1, out=work)
        m += work
        v *= 0.999
        np.multiply(g, g, out=work)
        work *= 0.001
        v += work
        # As nnscratch (optimizers.optimizer.FLUSH_EVERY): moments of dead
        # units stuck at subnormal values make every later step ~3x slower
        # on Intel CPUs; (x + c) - c rounds them to 0, every 8th step.
        if self.t % 8 == 0:
            for moment in (m, v):
                moment += FLUSH_FLOAT32
                moment -= FLUSH_FLOAT32
        np.sqrt(v, out=work)
        work *= correction
        work += 1e-8
        np.divide(m, work, out=work)
        work *= step
        self.flat -= work

    def predict(self) -> None:
        for start in range(0, len(self.X), PREDICT_BATCH):
            self.forward(self.X[start : start + PREDICT_BATCH])


class ScikitLearn(Runner):
    workloads = ("A",)

    def __init__(self, spec: MLPWorkload) -> None:
        super().__init__(spec)
        from sklearn.neural_network import MLPClassifier

        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(spec.hidden),
            batch_size=spec.batch_size,
            learning_rate_init=1e-3,
            shuffle=True,
            random_state=0,
        )

    def epoch(self) -> None:
        self.model.partial_fit(self.X, self.y, classes=np.arange(10))
        self.last_loss = float(self.model.loss_)

    def predict(self) -> None:
        self.model.predict_proba(self.X)


class NumpyML(Runner):
    """numpy-ml 0.1.2 (ddbourgin/numpy-ml), the best-known NumPy reference."""

    def __init__(self, spec: Workload) -> None:
        import collections
        import collections.abc

        # numpy-ml 0.1.2 predates Python 3.10 and imports these from the old place.
        for name in ("Hashable", "Iterable", "Mapping", "Sequence"):
            setattr(collections, name, getattr(collections.abc, name))
        import warnings

        warnings.simplefilter("ignore")  # its optional-dependency warnings
        from numpy_ml.neural_nets import layers, losses, optimizers

        super().__init__(spec)
        adam = lambda: optimizers.Adam(lr=1e-3)  # noqa: E731
        if isinstance(spec, MLPWorkload):
            self.layers = [
                layers.FullyConnected(n, act_fn="ReLU", optimizer=adam())
                for n in spec.hidden
            ]
            self.layers.append(layers.FullyConnected(10, optimizer=adam()))
        else:
            # numpy-ml is channels-last: (N, H, W, C).
            self.X = np.ascontiguousarray(self.X.transpose(0, 2, 3, 1))
            self.layers = [
                layers.Conv2D(spec.channels, (3, 3), act_fn="ReLU", optimizer=adam()),
                layers.Pool2D((2, 2), stride=2, mode="max"),
                layers.Flatten(),
                layers.FullyConnected(10, optimizer=adam()),
            ]
            self.scale = 8  # time an eighth of each epoch: a full one takes minutes
        self.softmax = layers.Softmax()
        self.cross_entropy = losses.CrossEntropy()
        self.one_hot = np.eye(10, dtype=np.float32)[self.y]
        self.rng = np.random.default_rng(0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return self.softmax.forward(x)

    def epoch(self) -> None:
        order = self.rng.permutation(len(self.X))[: len(self.X) // self.scale]
        for start in range(0, len(order), self.spec.batch_size):
            rows = np.sort(order[start : start + self.spec.batch_size])
            p = self.forward(self.X[rows])
            self.last_loss = float(self.cross_entropy(self.one_hot[rows], p))
            grad = self.cross_entropy.grad(self.one_hot[rows], p)
            for layer in reversed(self.layers):
                grad = layer.backward(grad)
            for layer in self.layers:
                layer.update()

    def predict(self) -> None:
        for start in range(0, len(self.X) // self.scale, PREDICT_BATCH):
            self.forward(self.X[start : start + PREDICT_BATCH])


SYSTEMS = {
    "nnscratch": NNScratch,
    "numpy-loop": NumpyLoop,
    "pytorch": PyTorch,
    "scikit-learn": ScikitLearn,
    "numpy-ml": NumpyML,
}
