"""GRU: the gated recurrent unit, batch first, gates in torch's order."""

from __future__ import annotations

import numpy as np

from nnscratch.layers.recurrent import RecurrentLayer, stacked_t


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
        self._inputs: np.ndarray | None = None
        self._states: np.ndarray | None = None

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
        # [x_t; 1].T (T, F + 1, N) and [h_{t-1}; 1].T (T + 1, H + 1, N), with
        # the stacked weights [W_ih; b_ih] and [W_hh; b_hh]; the per-step
        # arrays are transposed, see RecurrentLayer
        inputs = self._stacked_inputs(x, hidden_rows=False)
        T, _, N = inputs.shape
        dtype = inputs.dtype
        states = self._scratch("states", (T + 1, H + 1, N), dtype)
        states[0, :H] = 0.0  # h_{-1} = 0
        states[:, H] = 1.0  # the bias row
        hidden = states[1:, :H]  # h_t.T (T, H, N), written by step t
        # u_t.T for every step at once, (3H, F + 1) @ (T, F + 1, N)
        u_all = np.matmul(
            np.vstack([p["W_ih"], p["b_ih"]]).T,
            inputs,
            out=self._scratch("u", (T, 3 * H, N), dtype),
        )
        weight_t = stacked_t([p["W_hh"], p["b_hh"]])  # (3H, H + 1)
        gates = self._scratch("gates_by_step", (T, 3, H, N), dtype)  # [r, z, n].T
        v_all = self._scratch("v", (T, 3 * H, N), dtype)  # v_t.T
        for t in range(T):
            u, v, h = u_all[t], v_all[t], states[t, :H]  # (3H, N), (3H, N), (H, N)
            np.matmul(weight_t, states[t], out=v)
            r, z, n = gates[t]
            rz = gates[t, :2].reshape(2 * H, N)
            np.add(u[: 2 * H], v[: 2 * H], out=rz)
            # sigmoid(a) = (1 + tanh(a / 2)) / 2: one tanh, no exp and where.
            rz *= 0.5
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            np.multiply(r, v[2 * H :], out=n)
            n += u[2 * H :]
            np.tanh(n, out=n)
            # h_t = (1 - z) * n + z * h_{t-1} = n + z * (h_{t-1} - n)
            h_new = hidden[t]
            np.subtract(h, n, out=h_new)
            h_new *= z
            h_new += n
        self._gates, self._hidden_new = gates, v_all[:, 2 * H :]  # v_n.T, for da_r
        self._inputs, self._states = inputs, states
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
        gates = self._cached("_gates")  # (T, 3, H, N)
        states, v_new = self._states, self._hidden_new
        T, _, H, N = gates.shape
        hidden = states[1:, :H]  # h_t.T (T, H, N)
        previous = states[:T, :H]  # h_{t-1}.T: the zero state, then h_0 .. h_{T-2}
        d_hidden = self._upstream(grad, hidden.shape)
        r, z, n = gates.transpose(1, 0, 2, 3)  # (T, H, N) views
        # The factors that do not depend on dh, for all steps at once:
        # da_n = dh * to_n, da_z = dh * to_z, da_r = da_n * to_r.
        to_n = (1.0 - z) * (1.0 - n * n)
        to_z = (previous - n) * z * (1.0 - z)
        to_r = v_new * r * (1.0 - r)
        W_hh = self.params["W_hh"]  # (H, 3H)
        # du.T and dv.T, (T, 3H, N) each
        shape, dtype = (T, 3 * H, N), gates.dtype
        d_input_side = self._scratch("d_input_side", shape, dtype)
        d_hidden_side = self._scratch("d_hidden_side", shape, dtype)
        dh = np.zeros_like(hidden[0])  # (H, N)
        for t in reversed(range(T)):
            dh += d_hidden[t]
            du, dv = d_input_side[t], d_hidden_side[t]  # (3H, N) views
            np.multiply(dh, to_n[t], out=du[2 * H :])
            np.multiply(dh, to_z[t], out=du[H : 2 * H])
            np.multiply(du[2 * H :], to_r[t], out=du[:H])
            dv[: 2 * H] = du[: 2 * H]
            np.multiply(du[2 * H :], r[t], out=dv[2 * H :])
            dh *= z[t]
            dh += W_hh @ dv
        du = self._by_feature("du_by_feature", d_input_side)  # (3H, T, N)
        dv = self._by_feature("dv_by_feature", d_hidden_side)
        self._fill_gradients(
            self._stacked_gradient(du, self._inputs, "inputs"),
            self._stacked_gradient(dv, states[:T], "states"),
        )
        return self._input_gradient(du)
