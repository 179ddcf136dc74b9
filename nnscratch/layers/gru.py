"""GRU: the gated recurrent unit, batch first, gates in torch's order."""

from __future__ import annotations

import numpy as np

from nnscratch.layers.recurrent import RecurrentLayer


class GRU(RecurrentLayer):
    r"""One-layer GRU, as ``torch.nn.GRU(batch_first=True)``.

    Parameters
    ----------
    input_size : int
        Features per time step ``F``.
    hidden_size : int
        Width ``H`` of the hidden state.
    return_sequences : bool, default False
        Output every hidden state ``(N, T, H)``, or only the last ``(N, H)``.

    Notes
    -----
    Gate blocks in torch's order ``(r, z, n)``; ``u_t = x_t @ W_ih + b_ih`` and
    ``v_t = h_{t-1} @ W_hh + b_hh`` (both ``(N, 3H)``), ``h_{-1} = 0``:

    - ``r = sigmoid(u_r + v_r)``,  ``z = sigmoid(u_z + v_z)``
    - ``n = tanh(u_n + r * v_n)`` (the reset gate scales ``v_n``, bias included)
    - ``h_t = (1 - z) * n + z * h_{t-1}``

    Backward, with ``dh = dL/dh_t`` (output plus step ``t+1``):

    - ``da_n = dh * (1 - z) * (1 - n**2)``,
      ``da_z = dh * (h_{t-1} - n) * z (1 - z)``,
      ``da_r = da_n * v_n * r (1 - r)``
    - ``du = [da_r, da_z, da_n]``,  ``dv = [da_r, da_z, da_n * r]``
    - ``dh_{t-1} = dh * z + dv @ W_hh.T``;  ``dW_ih = sum_t x_t.T @ du_t``,
      ``dW_hh = sum_t h_{t-1}.T @ dv_t``, ``db_ih = sum du``, ``db_hh = sum dv``,
      ``dx_t = du_t @ W_ih.T``

    Examples
    --------
    >>> import numpy as np
    >>> layer = GRU(3, 4, return_sequences=True)
    >>> layer.forward(np.ones((2, 6, 3))).shape
    (2, 6, 4)
    >>> layer.backward(np.ones((2, 6, 4))).shape
    (2, 6, 3)
    """

    gates = 3

    def __init__(
        self, input_size: int, hidden_size: int, return_sequences: bool = False
    ) -> None:
        super().__init__(input_size, hidden_size, return_sequences)
        self._gates: np.ndarray | None = None
        self._hidden_new: np.ndarray | None = None
        self._hidden: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run the GRU over all time steps.

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
        p = self.params
        # u: (T, N, 3H), time-major; becomes [r, z, n] in place
        gates = self._input_projection(x, p["W_ih"], p["b_ih"])
        W_hh, b_hh = p["W_hh"], p["b_hh"]
        T, N = gates.shape[:2]
        hidden = np.empty((T, N, H), dtype=gates.dtype)
        v_new = np.empty_like(hidden)  # v_n = h_{t-1} @ W_hn + b_hn, for da_r
        h = np.zeros((N, H), dtype=gates.dtype)
        for t in range(T):
            u = gates[t]  # (N, 3H) view
            v = h @ W_hh
            v += b_hh  # (N, 3H)
            rz = u[:, : 2 * H]
            rz += v[:, : 2 * H]
            # sigmoid(a) = (1 + tanh(a / 2)) / 2: one tanh, no exp and where.
            rz *= 0.5
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            r, z, n = u[:, :H], u[:, H : 2 * H], u[:, 2 * H :]
            v_new[t] = v[:, 2 * H :]
            n += r * v[:, 2 * H :]
            np.tanh(n, out=n)
            # h_t = (1 - z) * n + z * h_{t-1} = n + z * (h_{t-1} - n)
            h_new = hidden[t]
            np.subtract(h, n, out=h_new)
            h_new *= z
            h_new += n
            h = h_new
        self._gates, self._hidden_new, self._hidden = gates, v_new, hidden
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
        gates = self._cached("_gates")
        hidden, v_new = self._hidden, self._hidden_new
        H = self.hidden_size
        d_hidden = self._upstream(grad, hidden.shape)
        # h_{t-1} (T, N, H): the zero state, then h_0 .. h_{T-2}
        previous = np.concatenate([np.zeros_like(hidden[:1]), hidden[:-1]])
        r, z, n = np.split(gates, 3, axis=-1)  # (T, N, H) views
        # The factors that do not depend on dh, for all steps at once:
        # da_n = dh * to_n, da_z = dh * to_z, da_r = da_n * to_r.
        to_n = (1.0 - z) * (1.0 - n * n)
        to_z = (previous - n) * z * (1.0 - z)
        to_r = v_new * r * (1.0 - r)
        W_hh_T = self._hidden_weights_transposed()  # (G*H, H)
        d_input_side = np.empty_like(gates)  # du, (T, N, 3H)
        d_hidden_side = np.empty_like(gates)  # dv, (T, N, 3H)
        dh = np.zeros_like(hidden[0])  # (N, H)
        for t in reversed(range(gates.shape[0])):
            dh += d_hidden[t]
            du, dv = d_input_side[t], d_hidden_side[t]  # (N, 3H) views
            np.multiply(dh, to_n[t], out=du[:, 2 * H :])
            np.multiply(dh, to_z[t], out=du[:, H : 2 * H])
            np.multiply(du[:, 2 * H :], to_r[t], out=du[:, :H])
            dv[:, : 2 * H] = du[:, : 2 * H]
            np.multiply(du[:, 2 * H :], r[t], out=dv[:, 2 * H :])
            dh *= z[t]
            dh += dv @ W_hh_T
        return self._parameter_gradients(d_input_side, d_hidden_side, hidden)
