"""LSTM: long short-term memory, batch first, gates in torch's order."""

from __future__ import annotations

import numpy as np

from nnscratch.layers.recurrent import RecurrentLayer


class LSTM(RecurrentLayer):
    r"""One-layer LSTM, as ``torch.nn.LSTM(batch_first=True)``.

    Parameters
    ----------
    input_size : int
        Features per time step ``F``.
    hidden_size : int
        Width ``H`` of the hidden and cell states.
    return_sequences : bool, default False
        Output every hidden state ``(N, T, H)``, or only the last ``(N, H)``.

    Notes
    -----
    The four gate blocks of ``W_ih`` ``(F, 4H)``, ``W_hh`` ``(H, 4H)``,
    ``b_ih``, ``b_hh`` ``(4H,)`` are in torch's order ``(i, f, g, o)``. With
    ``h_{-1} = c_{-1} = 0``:

    - ``a_t = x_t @ W_ih + b_ih + h_{t-1} @ W_hh + b_hh = [a_i, a_f, a_g, a_o]``
    - ``i = sigmoid(a_i)``, ``f = sigmoid(a_f)``, ``g = tanh(a_g)``,
      ``o = sigmoid(a_o)``
    - ``c_t = f * c_{t-1} + i * g``,  ``h_t = o * tanh(c_t)``

    Backward, with ``dh = dL/dh_t`` (output plus step ``t+1``) and ``dc``
    arriving from step ``t+1``:

    - ``do = dh * tanh(c_t)``,  ``dc += dh * o * (1 - tanh(c_t)**2)``
    - ``di = dc * g``,  ``df = dc * c_{t-1}``,  ``dg = dc * i``,
      ``dc_{t-1} = dc * f``
    - ``da_i = di * i (1 - i)``, ``da_f = df * f (1 - f)``,
      ``da_g = dg * (1 - g**2)``, ``da_o = do * o (1 - o)`` (from the outputs)
    - ``dh_{t-1} = da_t @ W_hh.T``;  ``dW_ih = sum_t x_t.T @ da_t``,
      ``dW_hh = sum_t h_{t-1}.T @ da_t``, ``db_ih = db_hh = sum da_t``,
      ``dx_t = da_t @ W_ih.T``

    Examples
    --------
    >>> import numpy as np
    >>> layer = LSTM(3, 4)
    >>> layer.forward(np.ones((2, 6, 3))).shape  # the last hidden state
    (2, 4)
    >>> layer.backward(np.ones((2, 4))).shape
    (2, 6, 3)
    """

    gates = 4

    def __init__(
        self, input_size: int, hidden_size: int, return_sequences: bool = False
    ) -> None:
        super().__init__(input_size, hidden_size, return_sequences)
        self._gates: np.ndarray | None = None
        self._cell: np.ndarray | None = None
        self._tanh_cell: np.ndarray | None = None
        self._stacked: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run the LSTM over all time steps.

        Parameters
        ----------
        x : ndarray of shape (N, T, input_size)
        training : bool
            Unused.

        Returns
        -------
        ndarray of shape (N, T, H) with ``return_sequences``, else (N, H)
        """
        H = self.hidden_size
        # sigmoid(a) = (1 + tanh(a / 2)) / 2: halving the i, f, o columns of
        # the weights and biases lets one tanh serve all four gates.
        scale = np.full(4 * H, 0.5, dtype=x.dtype)
        scale[2 * H : 3 * H] = 1.0  # g = tanh(a_g) itself
        # z_t.T = [h_{t-1}; x_t; 1].T (T + 1, H + F + 1, N), and the stacked,
        # scaled weight [W_hh; W_ih; b_ih + b_hh].T (4H, H + F + 1): one
        # product per step is a_t.T, scaled.
        stacked = self._stacked_inputs(x)
        weight_t = self._stacked_weight_t(scale)
        N, T = x.shape[:2]
        dtype = stacked.dtype
        # gates[t] = [i, f, g, o].T, four contiguous (H, N) blocks; all the
        # per-step arrays are transposed, see RecurrentLayer.
        gates = self._scratch("gates_by_step", (T, 4, H, N), dtype)
        cell = self._scratch("cell", (T, H, N), dtype)  # c_t.T
        tanh_cell = self._scratch("tanh_cell", cell.shape, dtype)
        hidden = stacked[1:, :H]  # h_t.T (T, H, N), written by step t
        c = np.zeros_like(cell[0])  # (H, N)
        for t in range(T):
            a = gates[t].reshape(4 * H, N)  # a_t.T, then its activations
            np.matmul(weight_t, stacked[t], out=a)
            np.tanh(a, out=a)  # one tanh for the four blocks
            for block in (gates[t, :2], gates[t, 3]):  # i and f, o
                block *= 0.5
                block += 0.5
            i, f, g, o = gates[t]
            c = np.multiply(f, c, out=cell[t])
            c += i * g
            np.multiply(o, np.tanh(c, out=tanh_cell[t]), out=hidden[t])
        self._gates, self._cell, self._stacked = gates, cell, stacked
        self._tanh_cell = tanh_cell  # (T, H, N), for do and dc in backward
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
        gates = self._cached("_gates")  # (T, 4, H, N): [i, f, g, o].T per step
        cell, tanh_cell, stacked = self._cell, self._tanh_cell, self._stacked
        T, _, H, N = gates.shape
        hidden = stacked[1:, :H]  # h_t.T (T, H, N)
        d_hidden = self._upstream(grad, hidden.shape)  # (T, H, N)
        # (dL/da_t).T as [da_i, da_f, da_g, da_o].T, (T, 4, H, N): torch's
        # gate order, and the layout of the GEMMs.
        d_pre = self._scratch("d_pre", gates.shape, gates.dtype)
        W_hh = self.params["W_hh"]  # (H, 4H)
        dh = np.zeros_like(hidden[0])  # (H, N), from step t+1
        dc = np.zeros_like(dh)
        through_cell = np.empty_like(dh)
        for t in reversed(range(T)):
            i, f, g, o = gates[t]  # (H, N) each
            da_i, da_f, da_g, da_o = d_pre[t]
            dh += d_hidden[t]
            tanh_slope(tanh_cell[t], o, out=through_cell)  # o (1 - tanh(c_t)**2)
            through_cell *= dh
            dc += through_cell
            sigmoid_slope(o, tanh_cell[t], out=da_o)  # tanh(c_t) o (1 - o)
            da_o *= dh
            sigmoid_slope(i, g, out=da_i)  # g i (1 - i)
            da_i *= dc
            if t:
                sigmoid_slope(f, cell[t - 1], out=da_f)  # c_{t-1} f (1 - f)
                da_f *= dc
            else:
                da_f[...] = 0.0  # c_{-1} = 0
            tanh_slope(g, i, out=da_g)  # i (1 - g**2)
            da_g *= dc
            dc *= f
            if t:  # dh_{-1} is not needed; (dh_{t-1}).T = W_hh @ (da_t).T
                np.matmul(W_hh, d_pre[t].reshape(4 * H, N), out=dh)
        d_pre = self._by_feature("d_pre_by_feature", d_pre.reshape(T, 4 * H, N))
        self._fill_gradients(self._stacked_gradient(d_pre, stacked[:T]))
        return self._input_gradient(d_pre)


def sigmoid_slope(s: np.ndarray, other: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``other * s (1 - s)`` into ``out``: a sigmoid's derivative from its output."""
    np.subtract(1.0, s, out=out)
    out *= s
    out *= other
    return out


def tanh_slope(s: np.ndarray, other: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``other * (1 - s**2)`` into ``out``: tanh's derivative from its output."""
    np.multiply(s, s, out=out)
    np.subtract(1.0, out, out=out)
    out *= other
    return out
