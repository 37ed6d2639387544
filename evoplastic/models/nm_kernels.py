"""One lifetime's step of NM-RNN / LR-RNN (:mod:`.nm`), compiled, shared by both engines.

Same arithmetic as the numpy step, in a fixed order: every sum over its inputs in index order
(with fused multiply-adds), one ``tanh`` and one sigmoid (:mod:`.kernels`). Parameters: ``g``
flat per genome with offsets ``lay`` in the order of ``NM_NAMES``; state ``xs`` (N,) and ``zs``
(M,) (LR-RNN: M = 0).
"""

from __future__ import annotations

import numpy as np

from evoplastic.models import kernels as K
from evoplastic.models.base import N_IN, N_OUT

F32 = np.float32
NM_NAMES = ("a", "L", "R", "B", "b", "W_o", "b_o", "a_z", "W_z", "B_z", "b_z", "A", "c", "mask")
_ONE = F32(1)

if K.HAVE_NUMBA:
    njit, fma = K.njit, K.fma

    @njit
    def _input_drive(g, w_at, b_at, u, o):  # pragma: no cover - compiled
        """``W[o] . u + b[o]`` for W (., 15) at ``g[w_at:]``, terms in order."""
        s = F32(0)
        for j in range(N_IN):
            s = fma(g[w_at + o * N_IN + j], u[j], s)
        return s + g[b_at + o]

    @njit
    def nm_row(g, lay, rank, xs, zs, u, live, y, tx, proj, zn, hn):  # pragma: no cover - compiled
        """One NM-RNN (M = zs.shape[0] > 0) or LR-RNN step of one lifetime; ``y`` (5,) out.

        Scratch: tx, hn (N,), proj (K,), zn (M,) float32.
        """
        n, m = xs.shape[0], zs.shape[0]
        for i in range(n):
            tx[i] = K.tanh32(xs[i])
        for k in range(rank):  # r_k . tanh(x_{t-1})
            proj[k] = 0
        for i in range(n):
            for k in range(rank):
                proj[k] = fma(g[lay[2] + i * rank + k], tx[i], proj[k])
        if m > 0:
            a_z = K.sigmoid32(g[lay[7]])
            for q in range(m):
                rec = F32(0)
                for j in range(m):
                    rec = fma(g[lay[8] + q * m + j], zs[j], rec)
                drive = K.tanh32(rec + _input_drive(g, lay[9], lay[10], u, q))
                zn[q] = (_ONE - a_z) * zs[q] + a_z * drive
            for k in range(rank):  # s_t = sigmoid(A z_t + c) scales the rank-one components
                s = F32(0)
                for q in range(m):
                    s = fma(g[lay[11] + k * m + q], zn[q], s)
                proj[k] = proj[k] * K.sigmoid32(s + g[lay[12] + k])
        a = K.sigmoid32(g[lay[0]])
        mask = lay[13]
        for i in range(n):
            rec = F32(0)
            for k in range(rank):
                rec = fma(g[lay[1] + i * rank + k], proj[k], rec)
            hn[i] = (_ONE - a) * xs[i] + a * (rec + _input_drive(g, lay[3], lay[4], u, i))
            if mask >= 0 and not g[mask + i] > 0:
                hn[i] = 0
        for i in range(n):
            tx[i] = K.tanh32(hn[i])
        K.affine(g, lay[5], lay[6], N_OUT, tx, y, 0)
        if live:
            for i in range(n):
                xs[i] = hn[i]
            for q in range(m):
                zs[q] = zn[q]

    @njit
    def nm_rows(gs, lay, rank, xs, zs, u, live, y):  # pragma: no cover - compiled
        """Lock-step batch: :func:`nm_row` for each row."""
        n, m = xs.shape[1], zs.shape[1]
        tx, hn, proj, zn = np.empty(n, F32), np.empty(n, F32), np.empty(rank, F32), np.empty(m, F32)
        for k in range(gs.shape[0]):
            nm_row(gs[k], lay, rank, xs[k], zs[k], u[k], live[k], y[k], tx, proj, zn, hn)
