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
        self._hidden: np.ndarray | None = None

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
        p = self.params
        # (T, N, 4H): x_t @ W_ih + b_ih + b_hh for every step, scaled.
        projected = self._input_projection(
            x, p["W_ih"] * scale, (p["b_ih"] + p["b_hh"]) * scale
        )
        W_hh = p["W_hh"] * scale  # (H, 4H), scaled copy
        T, N = projected.shape[:2]
        dtype = projected.dtype
        # gates[t] = [i, f, g, o], four contiguous (N, H) blocks: the
        # elementwise work runs on whole arrays, not on strided column blocks.
        gates = self._scratch("gates_by_step", (T, 4, N, H), dtype)
        cell = self._scratch("cell", (T, N, H), dtype)  # c_t
        tanh_cell = self._scratch("tanh_cell", cell.shape, dtype)
        hidden = self._scratch("hidden", cell.shape, dtype)
        a = np.empty_like(projected[0])  # (N, 4H): a_t, reused
        c = np.zeros_like(cell[0])  # (N, H)
        for t in range(T):
            if t:
                np.add(projected[t], np.matmul(hidden[t - 1], W_hh, out=a), out=a)
            else:  # h_{-1} = 0 adds nothing
                a[...] = projected[0]
            # (N, 4H) -> (N, 4, H) -> (4, N, H): one tanh for the four blocks.
            np.tanh(a.reshape(N, 4, H).transpose(1, 0, 2), out=gates[t])
            for block in (gates[t, :2], gates[t, 3]):  # i and f, o
                block *= 0.5
                block += 0.5
            i, f, g, o = gates[t]
            c = np.multiply(f, c, out=cell[t])
            c += i * g
            np.multiply(o, np.tanh(c, out=tanh_cell[t]), out=hidden[t])
        self._gates, self._cell, self._hidden = gates, cell, hidden
        self._tanh_cell = tanh_cell  # (T, N, H), for do and dc in backward
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
        gates = self._cached("_gates")  # (T, 4, N, H): [i, f, g, o] per step
        cell, tanh_cell, hidden = self._cell, self._tanh_cell, self._hidden
        T, _, N, H = gates.shape
        d_hidden = self._upstream(grad, hidden.shape)  # (T, N, H)
        # dL/da_t, (T, N, 4H): the layout of the GEMMs, torch's column order.
        d_pre = self._scratch("d_pre", (T, N, 4 * H), gates.dtype)
        da = np.empty_like(gates[0])  # [da_i, da_f, da_g, da_o] of one step
        da_i, da_f, da_g, da_o = da
        W_hh_T = self._hidden_weights_transposed()  # (G*H, H)
        dh = np.zeros_like(hidden[0])  # (N, H), from step t+1
        dc = np.zeros_like(dh)
        through_cell = np.empty_like(dh)
        for t in reversed(range(T)):
            i, f, g, o = gates[t]  # (N, H) each
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
            # (4, N, H) -> (N, 4, H) = (N, 4H)
            d_pre[t].reshape(N, 4, H)[...] = da.transpose(1, 0, 2)
            if t:  # dh_{-1} is not needed
                np.matmul(d_pre[t], W_hh_T, out=dh)
        return self._parameter_gradients(d_pre, d_pre, hidden)


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
