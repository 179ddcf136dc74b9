"""Shared test helpers: PyTorch parity and numerical gradient checks, in float64.

Every layer test goes through the same two checks:

- :func:`compare_layer_with_torch`: same inputs, same weights, a random upstream
  gradient; output, dL/dx and every dL/dparam must match torch to ~1e-6.
- :func:`check_layer_gradients`: the backward pass against central differences
  of ``L = sum(forward(x) * G)``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

# Central differences, tested on its own in nnscratch's doctests and in
# tests/test_gradient_check.py against a hand-derived gradient.
from nnscratch.engine.gradient_check import numerical_gradient

TOLERANCE = {"rtol": 1e-6, "atol": 1e-6}

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative_path: str, name: str) -> ModuleType:
    """A script of ``benchmarks/`` or ``experiments/`` (no package), imported
    as the module ``name`` from ``relative_path`` under the repository.

    It is in ``sys.modules`` while it runs (a dataclass looks its module up
    there as it is defined); afterwards ``sys.path`` is as it was and the
    modules it imported from its own folder (the benchmarks' ``peers``) are
    dropped again, so that each script's test sees its own.
    """
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
        for added in set(sys.modules) - saved_modules:
            file = getattr(sys.modules[added], "__file__", None)
            if file is not None and Path(file).resolve().parent == path.parent:
                del sys.modules[added]
    return module


def to_torch(array: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    """A float64 leaf tensor holding a copy of ``array``."""
    return torch.tensor(
        np.asarray(array, dtype=np.float64), requires_grad=requires_grad
    )


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy()


def compare_layer_with_torch(
    layer,
    torch_forward: Callable[..., torch.Tensor],
    x: np.ndarray,
    param_names: tuple[str, ...] = (),
    training: bool = False,
    rng: np.random.Generator | None = None,
    torch_penalty: Callable[..., torch.Tensor] | None = None,
) -> None:
    """Check forward, dL/dx and dL/dparams of ``layer`` against torch.

    ``torch_forward(x, *params)`` computes the same function in torch from
    tensors of ``x`` and of ``layer.params[name]`` for each of ``param_names``
    (copied in, so both start from the same weights). ``torch_penalty(*params)``,
    if given, is the layer's regularization term, whose gradient torch adds to
    the parameter gradients as the layer's backward must.
    """
    rng = rng or np.random.default_rng(0)
    x_t = to_torch(x, requires_grad=True)
    params_t = [
        to_torch(layer.params[name], requires_grad=True) for name in param_names
    ]
    y_t = torch_forward(x_t, *params_t)

    y = layer.forward(x, training=training)
    assert y.shape == tuple(y_t.shape)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, to_numpy(y_t), **TOLERANCE)

    upstream = rng.standard_normal(y.shape)
    objective_t = (y_t * to_torch(upstream)).sum()
    if torch_penalty is not None:
        objective_t = objective_t + torch_penalty(*params_t)
        assert layer.regularization_loss() == pytest.approx(
            float(torch_penalty(*params_t).detach()), rel=1e-12
        )
    objective_t.backward()
    dx = layer.backward(upstream)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, to_numpy(x_t.grad), **TOLERANCE)
    for name, param_t in zip(param_names, params_t, strict=True):
        assert layer.grads[name].shape == layer.params[name].shape
        np.testing.assert_allclose(
            layer.grads[name], to_numpy(param_t.grad), **TOLERANCE, err_msg=name
        )


def check_layer_gradients(
    layer,
    x: np.ndarray,
    training: bool = False,
    rng: np.random.Generator | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-7,
) -> None:
    """Compare ``layer.backward`` with central differences of ``sum(y * G) + R``.

    ``R`` is the layer's ``regularization_loss()``, whose gradient backward
    adds to the parameter gradients.

    With ``training=True`` the layer must be deterministic between calls
    (e.g. reseed Dropout's generator inside ``forward``).
    """
    rng = rng or np.random.default_rng(1)
    x = np.array(x, dtype=np.float64, order="C")
    upstream = rng.standard_normal(layer.forward(x, training=training).shape)

    def objective() -> float:
        output = layer.forward(x, training=training)
        return float(np.sum(output * upstream)) + layer.regularization_loss()

    layer.forward(x, training=training)
    dx = layer.backward(upstream)
    analytic = {name: layer.grads[name].copy() for name in layer.params}
    np.testing.assert_allclose(
        dx, numerical_gradient(objective, x), rtol=rtol, atol=atol, err_msg="dx"
    )
    for name, value in layer.params.items():
        np.testing.assert_allclose(
            analytic[name],
            numerical_gradient(objective, value),
            rtol=rtol,
            atol=atol,
            err_msg=name,
        )


@contextlib.contextmanager
def time_limit(seconds: int, what: str = "the test"):
    """Raise ``TimeoutError`` in the main thread if the block runs too long.

    A hang (in a fuzzed load, or a crash test waiting on a child) then fails
    the test instead of stalling the suite.
    """

    def expire(signum, frame):
        raise TimeoutError(f"{what} ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def optimizer_objective_t(params_t, target_t):
    """A smooth function with coupled parameters: sum((tanh(A @ B) - T)**2)."""
    a_t, b_t = params_t
    return ((torch.tanh(a_t @ b_t) - target_t) ** 2).sum()


def run_optimizer_against_torch(optimizer, make_torch, steps, clipnorm=None, seed=0):
    """``steps`` updates by our ``optimizer`` and by ``make_torch(params)``.

    Both start from the same parameters and see the gradients of the same
    function, each at its own current parameters, so a difference in any
    update shows in every later step. ``clipnorm`` clips torch's gradients
    as ``torch.nn.utils.clip_grad_norm_`` (ours clips inside ``step``).
    Returns (ours, torch's) final parameters.
    """
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]
    target_t = to_torch(rng.standard_normal((3, 2)))

    params_t = [to_torch(p, requires_grad=True) for p in start]
    optimizer_t = make_torch(params_t)
    ours = [p.copy() for p in start]
    for _ in range(steps):
        ours_t = [to_torch(p, requires_grad=True) for p in ours]
        optimizer_objective_t(ours_t, target_t).backward()
        optimizer.step(ours, [to_numpy(p.grad).copy() for p in ours_t])

        optimizer_t.zero_grad()
        optimizer_objective_t(params_t, target_t).backward()
        if clipnorm is not None:
            torch.nn.utils.clip_grad_norm_(params_t, clipnorm)
        optimizer_t.step()
    return ours, [to_numpy(p) for p in params_t]


def residual_classifier(optimizer=None, dtype="float64"):
    """A small classifier with every kind of part an optimizer step meets:
    Dense, BatchNorm (buffers), a Residual around a Sequential, softmax."""
    from nnscratch import Activation, Adam, BatchNorm, Dense, NeuralNetwork, Residual
    from nnscratch.layers import Sequential

    net = NeuralNetwork("cce", optimizer or Adam(0.01), seed=0, dtype=dtype)
    net.add(Dense(4, 8))
    net.add(BatchNorm(8))
    net.add(Activation("relu"))
    net.add(Residual(Sequential(Dense(8, 8), Activation("tanh"))))
    net.add(Dense(8, 3))
    net.add(Activation("softmax"))
    return net


def classification_data(n=64, seed=1):
    """``n`` samples of 4 features and their labels in 0..2."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)), rng.integers(0, 3, n)
