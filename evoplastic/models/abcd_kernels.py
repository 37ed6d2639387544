"""One lifetime's step of the PRNN with alpha-ABCD rules (method §3), compiled, for both engines.

As for the Dec models (:mod:`.dec_kernels`), the plastic matrix is stored transposed, ``WT``
(H + 15, H), and so are the four rule matrices, ``rT`` (4, H + 15, H) = (A, B, C, D)^T; the
forward pass sums inputs in order with the units in the vector lanes, and the update of entry
(j, i), ``Delta = A (post_i s pre_j) + B (post_i s) + C (s pre_j) + D s`` with the column scale
``s = 0.05 m`` (m[0] on the W_h columns, m[1] on the W_x columns; m = 1 unmodulated), is summed
in that order with fused multiply-adds and then added to the weight. The update is applied at
the end of the step (the output uses the weights before it). A scale of 0 (a finished lifetime)
leaves the weights exactly as they are.
"""

from __future__ import annotations

import numpy as np

from evoplastic.models import kernels as K
from evoplastic.models.base import N_IN, N_OUT

F32 = np.float32
PRNN_NAMES = ("W_o", "b_o", "b", "h.A", "h.B", "h.C", "h.D", "x.A", "x.B", "x.C", "x.D",
              "m.W", "m.b", "m_in.W", "m_in.b", "m_h.W", "m_h.b", "mask")
_ALPHA = F32(0.05)


def transpose_rules(p: dict[str, np.ndarray]) -> np.ndarray:
    """(B, 4, H + 15, H) float32: the rule matrices A..D (B, H, H + 15) of ``p``, transposed."""
    return np.ascontiguousarray(np.stack([p[r] for r in "ABCD"], axis=1).transpose(0, 1, 3, 2))


if K.HAVE_NUMBA:
    from evoplastic.models.dec_kernels import _dots_cols

    njit, fma = K.njit, K.fma

    @njit
    def _abcd_update(wt, rt, post, pre, s0, s1, n_h):  # pragma: no cover - compiled
        """``WT[j, i] += A (post_i s pre_j) + B (post_i s) + C (s pre_j) + D s`` for s != 0."""
        n_x, n = wt.shape
        for j in range(n_x):
            s = s0 if j < n_h else s1
            if s == 0:
                continue
            sp = s * pre[j]
            for i in range(n):
                pi = post[i]
                d = rt[0, j, i] * (pi * sp)
                d = fma(rt[1, j, i], pi * s, d)
                d = fma(rt[2, j, i], sp, d)
                d = fma(rt[3, j, i], s, d)
                wt[j, i] = wt[j, i] + d

    @njit
    def prnn_row(g, lay, mod, rt, wt, h, x, live, y, pre, z, hn, t):  # pragma: no cover - compiled
        """One PRNN step of one lifetime: ``h_t = tanh(W [h_{t-1}; x_t] + b)``, ``y = W_o h_t +
        b_o``, then the ABCD update. Scratch: pre (H+15,), z, hn (H,), t (4,) float32."""
        n_h = h.shape[0]
        for i in range(n_h):
            pre[i] = h[i]
        for k in range(N_IN):
            pre[n_h + k] = x[k]
        for i in range(n_h):
            z[i] = 0
        _dots_cols(wt, 0, n_h + N_IN, pre, z)
        b, mask = g[lay[2]:lay[2] + n_h], lay[17]
        for i in range(n_h):
            hn[i] = K.tanh32(z[i] + b[i])
        if mask >= 0:
            for i in range(n_h):
                if not g[mask + i] > 0:
                    hn[i] = 0
        K.affine(g, lay[0], lay[1], N_OUT, hn, y, 0)
        if mod == 2:  # PostDN: m = sigmoid(W_m h_t + b_m)
            K.affine(g, lay[11], lay[12], 2, hn, t, 0)
            m0, m1 = K.sigmoid32(t[0]), K.sigmoid32(t[1])
        elif mod == 1:  # PreDN: m = sigmoid(W_in x_t + b_in) + sigmoid(W_mh h_{t-1} + b_mh)
            K.affine(g, lay[13], lay[14], 2, x, t, 0)
            K.affine(g, lay[15], lay[16], 2, h, t, 2)
            m0, m1 = K.sigmoid32(t[0]) + K.sigmoid32(t[2]), K.sigmoid32(t[1]) + K.sigmoid32(t[3])
        else:
            m0, m1 = F32(1), F32(1)
        if live:
            _abcd_update(wt, rt, hn, pre, _ALPHA * m0, _ALPHA * m1, n_h)
            for i in range(n_h):
                h[i] = hn[i]

    @njit
    def prnn_rows(gs, lay, mod, rt, wt, h, x, live, y):  # pragma: no cover - compiled
        """Lock-step batch: :func:`prnn_row` for each row."""
        n_h = h.shape[1]
        pre, z, hn, t = np.empty(n_h + N_IN, F32), np.empty(n_h, F32), np.empty(n_h, F32), np.empty(4, F32)
        for k in range(gs.shape[0]):
            prnn_row(gs[k], lay, mod, rt[k], wt[k], h[k], x[k], live[k], y[k], pre, z, hn, t)
