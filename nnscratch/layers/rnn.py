"""RNN: the Elman recurrent layer, batch first."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.core.validation import check_choice
from nnscratch.layers.activation_functions import relu
from nnscratch.layers.recurrent import RecurrentLayer

NONLINEARITIES = ("tanh", "relu")


class RNN(RecurrentLayer):
    r"""One-layer Elman RNN, as ``torch.nn.RNN(batch_first=True)``.

    Parameters
    ----------
    input_size : int
        Features per time step ``F``.
    hidden_size : int
        Width ``H`` of the hidden state.
    nonlinearity : {'tanh', 'relu'}, default 'tanh'
    return_sequences : bool, default False
        Output every hidden state ``(N, T, H)``, or only the last ``(N, H)``.

    Notes
    -----
    With ``h_{-1} = 0``, ``phi`` the nonlinearity and ``g_t = dL/dh_t`` (from
    the output plus from step ``t+1``):

    - forward: ``a_t = x_t @ W_ih + b_ih + h_{t-1} @ W_hh + b_hh``,
      ``h_t = phi(a_t)``
    - backward: ``da_t = g_t * phi'(a_t)`` with ``tanh' = 1 - h_t**2`` and
      ``relu' = [h_t > 0]`` (both from the output);
      ``g_{t-1} += da_t @ W_hh.T``; ``dW_ih = sum_t x_t.T @ da_t``,
      ``dW_hh = sum_t h_{t-1}.T @ da_t``, ``db_ih = db_hh = sum_t,n da_t``,
      ``dx_t = da_t @ W_ih.T``

    Examples
    --------
    >>> import numpy as np
    >>> layer = RNN(2, 3, return_sequences=True)
    >>> layer.forward(np.ones((4, 5, 2))).shape
    (4, 5, 3)
    >>> layer.backward(np.ones((4, 5, 3))).shape
    (4, 5, 2)
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        nonlinearity: str = "tanh",
        return_sequences: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, return_sequences)
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        self._stacked: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run the recurrence over all time steps.

        Parameters
        ----------
        x : ndarray of shape (N, T, input_size)
        training : bool
            Unused.

        Returns
        -------
        ndarray of shape (N, T, H) with ``return_sequences``, else (N, H)
        """
        # z_t.T = [h_{t-1}; x_t; 1].T (T + 1, H + F + 1, N), and the stacked
        # weight [W_hh; W_ih; b_ih + b_hh].T (H, H + F + 1); the per-step
        # arrays are transposed, see RecurrentLayer.
        stacked = self._stacked_inputs(x)
        weight_t = self._stacked_weight_t()
        hidden = stacked[1:, : self.hidden_size]  # h_t.T (T, H, N)
        for t in range(len(hidden)):
            h = np.matmul(weight_t, stacked[t], out=hidden[t])  # a_t.T, then h_t.T
            if self.nonlinearity == "tanh":
                np.tanh(h, out=h)
            else:
                h[...] = relu(h)
        self._stacked = stacked
        return self._output(hidden)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Backpropagate through time; fill all four grads.

        Parameters
        ----------
        grad : ndarray of shape (N, T, H) or (N, H)
            dLoss/dOutput, shaped like the output.

        Returns
        -------
        ndarray of shape (N, T, input_size)
            dLoss/dInput.
        """
        stacked = self._cached("_stacked")
        hidden = stacked[1:, : self.hidden_size]  # h_t.T (T, H, N)
        T = len(hidden)
        d_hidden = self._upstream(grad, hidden.shape)
        if self.nonlinearity == "tanh":
            slope = 1.0 - hidden * hidden  # tanh'(a) = 1 - h**2, from the output
        else:
            slope = hidden > 0  # relu'(a) = [a > 0] = [h > 0]; 0 at a = 0, as torch
        W_hh = self.params["W_hh"]  # (H, H)
        d_pre = self._scratch("d_pre", hidden.shape, hidden.dtype)  # (dL/da_t).T
        carry = np.zeros_like(hidden[0])  # (dL/dh_t).T arriving from step t+1
        for t in reversed(range(T)):
            np.add(d_hidden[t], carry, out=d_pre[t])
            d_pre[t] *= slope[t]
            np.matmul(W_hh, d_pre[t], out=carry)
        d_pre = self._by_feature("d_pre_by_feature", d_pre)  # (H, T, N)
        self._fill_gradients(self._stacked_gradient(d_pre, stacked[:T]))
        return self._input_gradient(d_pre)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["nonlinearity"] = self.nonlinearity
        return config
