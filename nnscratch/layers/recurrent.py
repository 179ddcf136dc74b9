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
    def _input_projection(self, x: np.ndarray) -> np.ndarray:
        """Check ``x`` and return ``x @ W_ih + b_ih`` for every step at once.

        ``(N, T, F) @ (F, G*H) -> (N, T, G*H)``: one GEMM, not one per step.
        """
        name = type(self).__name__
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"{name}: expected input of shape (N, T, {self.input_size}) "
                f"(batch, time steps, features). Received shape {x.shape}"
            )
        if x.shape[1] == 0:
            raise ValueError(f"{name}: expected at least one time step. Received 0")
        self._input = x
        N, T, F = x.shape
        # (N*T, F) @ (F, G*H): one 2-D GEMM (a stacked 3-D matmul is slower).
        projected = x.reshape(N * T, F) @ self.params["W_ih"]
        projected += self.params["b_ih"]  # (G*H,) broadcast over the rows
        return projected.reshape(N, T, -1)  # (N*T, G*H) -> (N, T, G*H)

    def _output(self, hidden: np.ndarray) -> np.ndarray:
        """All hidden states ``(N, T, H)``, or the last one ``(N, H)``."""
        return hidden if self.return_sequences else hidden[:, -1]

    def _upstream(self, grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``dL/dh_t`` for every step ``(N, T, H)`` from the output's gradient.

        Without ``return_sequences`` only the last step reached the loss, so
        the other steps start at 0 (they receive gradient through time).
        """
        if self.return_sequences:
            return grad
        full = np.zeros(shape, dtype=grad.dtype)
        full[:, -1] = grad  # (N, H) -> the last step of (N, T, H)
        return full

    def _previous_states(self, hidden: np.ndarray) -> np.ndarray:
        """``h_{t-1}`` for every ``t``: the zero state, then ``h_0 .. h_{T-2}``."""
        previous = np.empty_like(hidden)
        previous[:, 0] = 0.0
        previous[:, 1:] = hidden[:, :-1]  # (N, T, H) shifted one step later
        return previous

    def _parameter_gradients(
        self,
        d_input_side: np.ndarray,
        d_hidden_side: np.ndarray,
        previous: np.ndarray,
    ) -> np.ndarray:
        """Fill all four grads in place and return ``dL/dx``.

        ``d_input_side`` / ``d_hidden_side`` ``(N, T, G*H)`` are the gradients of
        the pre-activations ``x_t @ W_ih + b_ih`` and ``h_{t-1} @ W_hh + b_hh``
        (equal except in the GRU); ``previous`` is ``h_{t-1}`` ``(N, T, H)``.
        """
        x = self._input
        width = d_input_side.shape[-1]
        flat_in = d_input_side.reshape(-1, width)  # (N, T, G*H) -> (N*T, G*H)
        flat_hid = d_hidden_side.reshape(-1, width)
        # (F, N*T) @ (N*T, G*H): the sums over batch and time are in the GEMM.
        np.matmul(x.reshape(-1, self.input_size).T, flat_in, out=self.grads["W_ih"])
        np.matmul(
            previous.reshape(-1, self.hidden_size).T, flat_hid, out=self.grads["W_hh"]
        )
        np.sum(flat_in, axis=0, out=self.grads["b_ih"])  # (N*T, G*H) -> (G*H,)
        np.sum(flat_hid, axis=0, out=self.grads["b_hh"])
        if not self.input_gradient_needed:
            return None  # a first layer inside a model's training step
        # (N*T, G*H) @ (G*H, F) -> (N*T, F) -> (N, T, F)
        return (flat_in @ self.params["W_ih"].T).reshape(x.shape)
