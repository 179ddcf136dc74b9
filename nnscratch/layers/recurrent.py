"""What RNN, LSTM and GRU share: arguments, weights, input checks, BPTT plumbing.

Each recurrent layer has ``G`` gate blocks of width ``H`` (RNN 1, GRU 3,
LSTM 4) and four params in the project's ``x @ W`` layout, the transposes of
torch's ``weight_ih_l0`` / ``weight_hh_l0``:

- ``W_ih`` ``(input_size, G*H)``, ``W_hh`` ``(H, G*H)``, ``b_ih``, ``b_hh`` ``(G*H,)``

all drawn from ``U(-1/sqrt(H), 1/sqrt(H))`` as torch does. The input-side
products of every time step are one GEMM before the time loop; the
parameter gradients are one GEMM each after the reverse time loop, so the
only Python loop is over time steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.functional import column_sums
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
        self._input: np.ndarray | None = None
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

    # Inside the layers every per-step array is time-major, (T, N, ...): the
    # slice of step t is then one contiguous (N, ...) block, which the
    # elementwise ufuncs of the time loop run on about twice as fast as on
    # a strided batch-first slice ``[:, t]``.
    def _input_projection(
        self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray
    ) -> np.ndarray:
        """Check ``x``, keep it time-major and return ``x_t @ weight + bias``.

        ``x`` ``(N, T, F)``; ``weight`` ``(F, G*H)`` and ``bias`` ``(G*H,)``
        are ``W_ih`` and a bias, as the layer prepares them. Returns
        ``(T, N, G*H)``: one GEMM for every step at once.
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
        # (N, T, F) -> (T, N, F), copied: kept for dW_ih.
        self._input = self._scratch("input", (T, N, F), x.dtype)
        self._input[...] = x.transpose(1, 0, 2)
        dtype = np.result_type(x, weight)
        projected = self._scratch("gates", (T, N, weight.shape[1]), dtype)
        # (T*N, F) @ (F, G*H): one 2-D GEMM (a stacked 3-D matmul is slower).
        np.matmul(
            self._input.reshape(T * N, F), weight, out=projected.reshape(T * N, -1)
        )
        projected += bias  # (G*H,) broadcast over the rows
        return projected

    def _output(self, hidden: np.ndarray) -> np.ndarray:
        """All states ``(N, T, H)`` or the last ``(N, H)``, from ``(T, N, H)``.

        A copy: ``hidden`` is overwritten by the next call.
        """
        if self.return_sequences:
            return np.ascontiguousarray(hidden.transpose(1, 0, 2))
        return hidden[-1].copy()

    def _hidden_weights_transposed(self) -> np.ndarray:
        """``W_hh.T`` ``(G*H, H)`` for backward's ``da_t @ W_hh.T`` at every step.

        A contiguous copy: OpenBLAS multiplies by a transposed view ~20%
        slower at these sizes (64 x 512 x 128), and the product runs T times.
        """
        return np.ascontiguousarray(self.params["W_hh"].T)

    def _upstream(self, grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``dL/dh_t`` for every step, time-major ``shape`` ``(T, N, H)``.

        Without ``return_sequences`` only the last step reached the loss, so
        the other steps start at 0 (they receive gradient through time).
        """
        if self.return_sequences:
            return grad.transpose(1, 0, 2)  # (N, T, H) -> (T, N, H) view
        full = self._scratch("upstream", shape, grad.dtype)
        full[:-1] = 0.0
        full[-1] = grad  # (N, H) -> the last step of (T, N, H)
        return full

    def _parameter_gradients(
        self, d_input_side: np.ndarray, d_hidden_side: np.ndarray, hidden: np.ndarray
    ) -> np.ndarray:
        """Fill all four grads in place and return ``dL/dx`` ``(N, T, F)``.

        ``d_input_side`` / ``d_hidden_side`` ``(T, N, G*H)`` are the gradients of
        the pre-activations ``x_t @ W_ih + b_ih`` and ``h_{t-1} @ W_hh + b_hh``
        (equal except in the GRU); ``hidden`` is ``h_t`` ``(T, N, H)``.
        """
        T, N, width = d_input_side.shape
        flat_in = d_input_side.reshape(T * N, width)  # (T, N, G*H) -> (T*N, G*H)
        # (F, T*N) @ (T*N, G*H): the sums over batch and time are in the GEMM.
        x = self._input.reshape(T * N, self.input_size)
        np.matmul(x.T, flat_in, out=self.grads["W_ih"])
        # h_{-1} = 0 adds nothing to dW_hh: pair h_0 .. h_{T-2} with steps 1 ..
        # T-1, two contiguous slices, (H, (T-1)*N) @ ((T-1)*N, G*H).
        np.matmul(
            hidden[:-1].reshape(-1, self.hidden_size).T,
            d_hidden_side[1:].reshape(-1, width),
            out=self.grads["W_hh"],
        )
        column_sums(flat_in, out=self.grads["b_ih"])  # (T*N, G*H) -> (G*H,)
        if d_hidden_side is d_input_side:
            self.grads["b_hh"][...] = self.grads["b_ih"]
        else:
            column_sums(d_hidden_side.reshape(T * N, width), out=self.grads["b_hh"])
        if not self.input_gradient_needed:
            return None  # a first layer inside a model's training step
        # (T*N, G*H) @ (G*H, F) -> (T, N, F) -> (N, T, F)
        dx = (flat_in @ self.params["W_ih"].T).reshape(T, N, self.input_size)
        return dx.transpose(1, 0, 2)
