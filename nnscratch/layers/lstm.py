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
        # (T, N, 4H): x_t @ W_ih + b_ih + b_hh, scaled; activated in place.
        gates = self._input_projection(
            x, p["W_ih"] * scale, (p["b_ih"] + p["b_hh"]) * scale
        )
        W_hh = p["W_hh"] * scale  # (H, 4H), scaled copy
        T, N = gates.shape[:2]
        cell = self._scratch("cell", (T, N, H), gates.dtype)  # c_t
        tanh_cell = self._scratch("tanh_cell", cell.shape, gates.dtype)
        hidden = self._scratch("hidden", cell.shape, gates.dtype)
        product = np.empty_like(gates[0])  # h_{t-1} @ W_hh, (N, 4H), reused
        c = np.zeros_like(cell[0])
        for t in range(T):
            a = gates[t]  # (N, 4H) view, overwritten with [i, f, g, o]
            if t:  # h_{-1} = 0 adds nothing
                a += np.matmul(hidden[t - 1], W_hh, out=product)
            np.tanh(a, out=a)
            for block in (a[:, : 2 * H], a[:, 3 * H :]):  # i, f and o
                block *= 0.5
                block += 0.5
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
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
        gates = self._cached("_gates")  # (T, N, 4H), [i, f, g, o]
        cell, tanh_cell, hidden = self._cell, self._tanh_cell, self._hidden
        H = self.hidden_size
        T, N = gates.shape[:2]
        d_hidden = self._upstream(grad, hidden.shape)  # (T, N, H)
        i, f, g, o = np.split(gates, 4, axis=-1)  # (T, N, H) views
        # Everything that does not depend on dh, dc is computed for all steps
        # at once: da_t = [dc, dc, dc, dh] * coefficient_t (the equations above).
        coefficient = self._scratch("coefficient", gates.shape, gates.dtype)
        to_i, to_f, to_g, to_o = np.split(coefficient, 4, axis=-1)  # views
        sigmoid_slope(i, g, out=to_i)  # g * i (1 - i)
        to_f[0] = 0.0  # c_{-1} = 0
        sigmoid_slope(f[1:], cell[:-1], out=to_f[1:])  # c_{t-1} * f (1 - f)
        tanh_slope(g, i, out=to_g)  # i * (1 - g**2)
        sigmoid_slope(o, tanh_cell, out=to_o)  # tanh(c) * o (1 - o)
        # dc += dh * through_cell: o * (1 - tanh(c)**2)
        through_cell = self._scratch("through_cell", cell.shape, cell.dtype)
        tanh_slope(tanh_cell, o, out=through_cell)
        W_hh_T = self.params["W_hh"].T
        d_pre = self._scratch("d_pre", gates.shape, gates.dtype)  # dL/da_t
        dh = np.zeros_like(hidden[0])  # (N, H), from step t+1
        dc = np.zeros_like(dh)
        for t in reversed(range(T)):
            dh += d_hidden[t]
            dc += dh * through_cell[t]
            da = d_pre[t]  # (N, 4H) view
            # (N, 3H) -> (N, 3, H): dc scales the i, f, g blocks alike.
            np.multiply(
                coefficient[t, :, : 3 * H].reshape(N, 3, H),
                dc[:, None, :],
                out=da[:, : 3 * H].reshape(N, 3, H),
            )
            np.multiply(dh, coefficient[t, :, 3 * H :], out=da[:, 3 * H :])
            dc *= f[t]
            if t:  # dh_{-1} is not needed
                np.matmul(da, W_hh_T, out=dh)
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
