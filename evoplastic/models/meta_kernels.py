"""One lifetime's step of Meta-RNN and Meta-LSTM (method §3), compiled, shared by both engines.

As for the Dec models (:mod:`.dec_kernels`): the input weights are used transposed, ``WT``
(15 + H, n_units) (``prepare`` transposes the genome's ``W`` once per batch, the fused engine
once per lifetime), so that ``z = W [x; h] + b`` is summed over inputs in order while the units
fill the vector lanes; one ``tanh`` and one sigmoid (:mod:`.kernels`).

Parameters: ``g`` flat per genome with offsets ``lay`` in the order of ``META_NAMES``
(``W`` is not read from ``g``: ``wt`` carries it); state ``h`` (H,) and, for the LSTM, ``c`` (H,).
"""

from __future__ import annotations

import numpy as np

from evoplastic.models import kernels as K
from evoplastic.models.base import N_IN, N_OUT

F32 = np.float32
META_NAMES = ("W", "b", "W_o", "b_o", "mask")
KIND_RNN, KIND_LSTM = 0, 1


def transpose_w(p: dict[str, np.ndarray]) -> np.ndarray:
    """(B, 15 + H, units) float32: the genome's ``W`` (B, units, 15 + H), transposed (exact)."""
    return np.ascontiguousarray(np.asarray(p["W"], F32).transpose(0, 2, 1))


if K.HAVE_NUMBA:
    from evoplastic.models.dec_kernels import _dots_cols

    njit = K.njit

    @njit
    def meta_row(g, lay, lstm, wt, h, c, x, live, y, v, z, t):  # pragma: no cover - compiled
        """One Meta-RNN (``lstm`` False) or Meta-LSTM step of one lifetime; ``y`` (5,) out.

        Scratch: v (15 + H,), z (units,), t (4,) float32. Meta-RNN: ``h = tanh(W [x; h] + b)``;
        Meta-LSTM: ``z`` split as (g, i, f, o), ``c = s(f) c + s(i) tanh(g)``, ``h = s(o) tanh(c)``.
        A structure mask gates ``h`` (RNN) or ``c`` (LSTM) of the units whose gene is <= 0.
        """
        n_h = h.shape[0]
        for k in range(N_IN):
            v[k] = x[k]
        for i in range(n_h):
            v[N_IN + i] = h[i]
        n_u = z.shape[0]
        for i in range(n_u):
            z[i] = 0
        _dots_cols(wt, 0, N_IN + n_h, v, z)
        b = g[lay[1]:lay[1] + n_u]
        for i in range(n_u):
            z[i] = z[i] + b[i]
        mask = lay[4]
        if not lstm:
            for i in range(n_h):
                z[i] = K.tanh32(z[i])
        else:
            for i in range(n_h):
                gi = K.tanh32(z[i])
                ii = K.sigmoid32(z[n_h + i])
                fi = K.sigmoid32(z[2 * n_h + i])
                ci = fi * c[i] + ii * gi
                if mask >= 0 and not g[mask + i] > 0:
                    ci = F32(0)
                z[n_h + i] = ci  # the new cell state, kept beside the new h
                z[i] = K.sigmoid32(z[3 * n_h + i]) * K.tanh32(ci)
        if mask >= 0 and not lstm:
            for i in range(n_h):
                if not g[mask + i] > 0:
                    z[i] = 0
        K.affine(g, lay[2], lay[3], N_OUT, z[:n_h], y, 0)
        if live:
            for i in range(n_h):
                h[i] = z[i]
            if lstm:
                for i in range(n_h):
                    c[i] = z[n_h + i]

    @njit
    def meta_rows(gs, lay, lstm, wt, h, c, x, live, y):  # pragma: no cover - compiled
        """Lock-step batch: :func:`meta_row` for each row."""
        n_h, n_u = h.shape[1], wt.shape[2]
        v, z, t = np.empty(N_IN + n_h, F32), np.empty(n_u, F32), np.empty(4, F32)
        for k in range(gs.shape[0]):
            meta_row(gs[k], lay, lstm, wt[k], h[k], c[k], x[k], live[k], y[k], v, z, t)
