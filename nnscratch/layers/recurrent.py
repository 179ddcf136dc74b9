"""What RNN, LSTM and GRU share: arguments, weights, input checks, BPTT plumbing.

Each recurrent layer has ``G`` gate blocks of width ``H`` (RNN 1, GRU 3,
LSTM 4) and four params in the project's ``x @ W`` layout, the transposes of
torch's ``weight_ih_l0`` / ``weight_hh_l0``:

- ``W_ih`` ``(input_size, G*H)``, ``W_hh`` ``(H, G*H)``, ``b_ih``, ``b_hh`` ``(G*H,)``

all drawn from ``U(-1/sqrt(H), 1/sqrt(H))`` as torch does. Each time step
is one product of the stacked weight ``[W_hh; W_ih; b]`` with the stacked
column ``[h_{t-1}; x_t; 1]``; the parameter gradients are one GEMM after
the reverse time loop, so the only Python loop is over time steps. The GRU,
whose reset gate scales ``h_{t-1} @ W_hh + b_hh`` alone, stacks ``[x_t; 1]``
and ``[h_{t-1}; 1]`` apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.layer import Layer
from nnscratch.core.validation import check_positive_int


class RecurrentLayer(Layer):
    """Base of the batch-first recurrent layers (zero initial state).

    Subclasses set ``gates`` (the number of ``H``-wide blocks) and implement
    ``forward`` / ``backward`` with the helpers below.
    """

    gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, return_sequences: bool = False
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        if not isinstance(return_sequences, bool | np.bool_):
            raise ValueError(
                f"return_sequences: expected True or False. Received "
                f"{return_sequences!r}"
            )
        self.return_sequences = bool(return_sequences)
        self._arrays: dict[str, np.ndarray] = {}  # see _scratch

    # ------------------------------------------------------------ building
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        width = self.gates * self.hidden_size
        return {
            "W_ih": (self.input_size, width),
            "W_hh": (self.hidden_size, width),
            "b_ih": (width,),
            "b_hh": (width,),
        }

    def create_state(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Every param from ``U(-1/sqrt(H), 1/sqrt(H))``, as ``torch.nn.RNN``."""
        bound = 1.0 / np.sqrt(self.hidden_size)
        self.params = {
            name: rng.uniform(-bound, bound, size=shape).astype(dtype)
            for name, shape in self.state_shapes().items()
        }

    def get_config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "return_sequences": self.return_sequences,
        }

    # ------------------------------------------------------------- helpers
    def _scratch(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised array, kept for the next call with the same shape.

        Every training step needs the same few ``(T, N, G*H)`` work arrays.
        Fresh ones cost a page fault per 4 KB page touched (glibc returns
        blocks this large to the system when they are freed), as long as the
        arithmetic on them. No array returned to a caller lives here.
        """
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype)
        return array

    # Inside the layers every per-step array is feature-major, (T, ..., N):
    # step t holds the transposes of torch's (N, H) states, h_t.T (H, N), and
    # the step's product is W.T @ z_t with the stacked column
    # z_t = [h_{t-1}; x_t; 1] (the "W . [h_{t-1}, x_t] + b" of the LSTM
    # literature). Then
    # - every gate block of a step is a contiguous (H, N) slice, on which the
    #   elementwise ufuncs of the time loop run several times faster than on
    #   a strided column block;
    # - one product per step gives x_t @ W_ih + h_{t-1} @ W_hh + b, with no
    #   pass to add a separately projected input (which, read from a big
    #   array step by step, misses the TLB), and OpenBLAS runs this
    #   orientation, (G*H, K) @ (K, N), ~20% faster than torch's
    #   (N, K) @ (K, G*H) at these sizes (float32 LSTM, N = 64, H = 128);
    # - after the time loop, one GEMM over the stacked columns of all steps
    #   gives dW_hh, dW_ih and the bias gradient at once.
    def _stacked_inputs(self, x: np.ndarray, hidden_rows: bool = True) -> np.ndarray:
        """Check ``x`` and return ``z_t = [h_{t-1}; x_t; 1]`` for every step.

        ``x`` ``(N, T, F)``. Returns ``(T + 1, H + F + 1, N)``: the rows of
        ``h_{t-1}`` are 0 at step 0 and left for the layer to write (step
        ``t`` writes ``h_t.T`` into ``[t + 1, :H]``, so the last slot holds
        only ``h_{T-1}``). Without ``hidden_rows``: ``[x_t; 1]``, ``(T, F + 1, N)``.
        """
        name = type(self).__name__
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"{name}: expected input of shape (N, T, {self.input_size}) "
                f"(batch, time steps, features). Received shape {x.shape}"
            )
        if x.shape[1] == 0:
            raise ValueError(f"{name}: expected at least one time step. Received 0")
        N, T, F = x.shape
        H = self.hidden_size if hidden_rows else 0
        dtype = np.result_type(x, self.params["W_ih"])
        slots = T + 1 if hidden_rows else T
        key = "stacked" if hidden_rows else "stacked_inputs"
        stacked = self._scratch(key, (slots, H + F + 1, N), dtype)
        stacked[0, :H] = 0.0  # h_{-1} = 0
        stacked[:T, H : H + F] = x.transpose(1, 2, 0)  # (N, T, F) -> (T, F, N)
        stacked[T:, H:] = 0.0  # the last slot's x_T does not exist
        stacked[:, -1] = 1.0  # the bias row
        return stacked

    def _stacked_weight_t(self, scale: np.ndarray | None = None) -> np.ndarray:
        """``[W_hh; W_ih; b_ih + b_hh].T`` ``(G*H, H + F + 1)``: the weight of
        ``z_t`` from :meth:`_stacked_inputs`, its columns in the same order,
        each row times ``scale`` ``(G*H,)`` if given (see :func:`stacked_t`)."""
        p = self.params
        return stacked_t([p["W_hh"], p["W_ih"], p["b_ih"] + p["b_hh"]], scale)

    def _output(self, hidden: np.ndarray) -> np.ndarray:
        """All states ``(N, T, H)`` or the last ``(N, H)``, from ``(T, H, N)``.

        A copy: ``hidden`` is overwritten by the next call.
        """
        if self.return_sequences:
            return np.ascontiguousarray(hidden.transpose(2, 0, 1))
        return np.ascontiguousarray(hidden[-1].T)

    def _upstream(self, grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``(dL/dh_t).T`` for every step, feature-major ``shape`` ``(T, H, N)``.

        Without ``return_sequences`` only the last step reached the loss, so
        the other steps start at 0 (they receive gradient through time).
        """
        full = self._scratch("upstream", shape, grad.dtype)
        if self.return_sequences:
            full[...] = grad.transpose(1, 2, 0)  # (N, T, H) -> (T, H, N)
        else:
            full[:-1] = 0.0
            full[-1] = grad.T  # (N, H) -> the last step of (T, H, N)
        return full

    def _by_feature(self, name: str, steps: np.ndarray) -> np.ndarray:
        """``steps`` ``(T, K, N)`` copied to a kept ``(K, T, N)``.

        Rows of ``N`` move whole, so this is ~10x faster than a transpose
        that moves single elements.
        """
        T, K, N = steps.shape
        array = self._scratch(name, (K, T, N), steps.dtype)
        array[...] = steps.transpose(1, 0, 2)
        return array

    def _stacked_gradient(
        self, d_pre: np.ndarray, stacked: np.ndarray, name: str = "stacked"
    ) -> np.ndarray:
        """``sum_t z_t @ da_t``: the gradient of the stacked weight ``(K, G*H)``.

        ``d_pre`` ``(G*H, T, N)`` is ``(dL/da_t).T`` by feature and
        ``stacked`` the ``z_t.T`` ``(T, K, N)`` that multiplied the stacked
        weight. The sum over time and batch is one GEMM's inner dimension,
        ``(K, T*N) @ (T*N, G*H)``. ``name`` keeps the copy by feature.
        """
        width = d_pre.shape[0]
        inputs = self._by_feature(f"{name}_by_feature", stacked)
        return inputs.reshape(len(inputs), -1) @ d_pre.reshape(width, -1).T

    def _input_gradient(self, d_pre: np.ndarray) -> np.ndarray | None:
        """``dL/dx`` ``(N, T, F)`` from ``(dL/da_t).T`` by feature ``(G*H, T, N)``.

        ``None`` for a first layer inside a model's training step.
        """
        if not self.input_gradient_needed:
            return None
        width, T, N = d_pre.shape
        # (F, G*H) @ (G*H, T*N) -> (F, T, N) -> (N, T, F)
        dx = self.params["W_ih"] @ d_pre.reshape(width, T * N)
        return dx.reshape(self.input_size, T, N).transpose(2, 1, 0)

    def _fill_gradients(
        self, input_side: np.ndarray, hidden_side: np.ndarray | None = None
    ) -> None:
        """Copy ``[dW_hh; dW_ih; db]`` rows into the four grads.

        ``input_side`` is the stacked gradient of ``[h; x; 1]``, shape
        ``(H + F + 1, G*H)``, where both biases share one gradient; or, with
        ``hidden_side`` ``(H + 1, G*H)`` for ``[h; 1]``, that of ``[x; 1]``.
        """
        grads = self.grads
        if hidden_side is None:
            H = self.hidden_size
            grads["W_hh"][...] = input_side[:H]
            grads["W_ih"][...] = input_side[H:-1]
            grads["b_ih"][...] = input_side[-1]
            grads["b_hh"][...] = input_side[-1]
        else:
            grads["W_ih"][...] = input_side[:-1]
            grads["b_ih"][...] = input_side[-1]
            grads["W_hh"][...] = hidden_side[:-1]
            grads["b_hh"][...] = hidden_side[-1]


def stacked_t(rows: list[np.ndarray], scale: np.ndarray | None = None) -> np.ndarray:
    """``vstack(rows).T``, contiguous, each of its rows times ``scale``.

    ``rows`` ``(K_i, G*H)`` or ``(G*H,)`` -> ``(G*H, sum K_i)``: the weight a
    step multiplies its stacked column by. A copy: OpenBLAS multiplies by a
    transposed view more slowly, and the product runs at every time step.
    """
    stacked = np.vstack(rows)
    if scale is not None:
        # Not in place: with ``stacked *= scale`` the LSTM layer ran 3-4%
        # slower over seven alternating process pairs; the only difference
        # is where the allocator then puts the transposed copy.
        stacked = stacked * scale
    return np.ascontiguousarray(stacked.T)
