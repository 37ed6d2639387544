"""One lifetime's step of the Dec models (method §3), as compiled kernels over flat buffers.

Both engines call these: the lock-step path row by row through :func:`decrnn_rows` /
:func:`decpdnn_rows`, the fused engine (:mod:`evoplastic.fused`) lifetime by lifetime. So a
lifetime computes the same floats whatever its batch-mates (see :mod:`.kernels`).

Parameters arrive as one flat float32 vector per genome, ``g``, packed by :func:`pack` in the
order of ``DECRNN_NAMES`` / ``DECPDNN_NAMES``; ``lay`` (int64) holds each tensor's offset in
``g`` (-1: absent, e.g. the modulator of an unmodulated model or the mask of an unmasked one).

State of a DecPRNN lifetime: ``WT`` (H + 15, H) the transposed plastic matrix ``[W_h | W_x]^T``
(row j holds the weights of input j, so the weight pass vectorises over units), ``h`` (H,),
and the pending update of the previous step (``pp`` post (H,), ``pr`` pre (H + 15,), ``ps``
scales (2,)): it is applied in the same pass over ``WT`` that computes this step's
pre-activation, ``W_{t-1} = W_{t-2} + 0.2 m_{t-1} Dec_{t-1}``, then ``z_t = W_{t-1} [h_{t-1}; x_t]``.
A scale of 0 (first step, finished lifetime) leaves the weights exactly as they are.
"""

from __future__ import annotations

import numpy as np

from evoplastic.models import kernels as K
from evoplastic.models.base import N_IN, N_OUT
from evoplastic.models.kernels import sigmoid32_np, tanh32_np

F32 = np.float32
_DEC = ("Ay", "Ax", "By", "Bx", "Cy", "Cx", "Dy", "Dx")
DECRNN_NAMES = (("W_o", "b_o", "b") + tuple(f"h.{v}" for v in _DEC) + tuple(f"x.{v}" for v in _DEC)
                + ("m.W", "m.b", "m_in.W", "m_in.b", "m_h.W", "m_h.b", "mask"))
DECPDNN_NAMES = (("W_o", "b_o", "b1", "b2") + tuple(f"l1.{v}" for v in _DEC) + tuple(f"l2.{v}" for v in _DEC)
                 + ("m1.W", "m1.b", "m2.W", "m2.b"))
MOD_CODES = {"none": 0, "pre": 1, "post": 2}
_POINT2 = F32(0.2)


def pack(p: dict[str, np.ndarray], names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Flat parameters (B, N') float32 and offsets ``lay`` (len(names),) int64 (-1: absent)."""
    present = [n for n in names if n in p]
    b = len(p[present[0]])
    parts = [np.asarray(p[n], F32).reshape(b, -1) for n in present]
    sizes = dict(zip(present, (q.shape[1] for q in parts)))
    lay, at = [], 0
    for n in names:
        lay.append(at if n in sizes else -1)
        at += sizes.get(n, 0)
    return np.ascontiguousarray(np.concatenate(parts, axis=1)), np.array(lay, np.int64)


def with_packed(q: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``q`` with the flat parameters ``_g`` (B, N') of its tensors named in ``names`` and their
    offsets ``_lay`` (B, len(names)): the same row repeated, so that the lock-step evaluator can
    index (and compact) every entry by lifetime. The kernels read ``_lay[0]``."""
    q["_g"], lay = pack(q, names)
    q["_lay"] = np.broadcast_to(lay, (len(q["_g"]), len(lay)))
    return q


if K.HAVE_NUMBA:
    njit, njit_inline, fma = K.njit, K.njit_inline, K.fma

    @njit_inline
    def _block_coef(g, lay, at, post, s, coef, blk):  # pragma: no cover - compiled
        """Coefficients of one block whose 8 Dec vectors start at lay[at] (Ay, Ax, By, ...)."""
        K.dec_coefficients(g, lay[at], lay[at + 2], lay[at + 4], lay[at + 6], post, s, coef, blk)

    @njit
    def _plastic_pass(wt, j0, j1, g, lay, at, pre_pend, s, coef, blk, v, z, dots, pv):  # pragma: no cover
        """Rows j0..j1 of ``wt`` (one block, input columns of the plastic matrix): add the
        pending Dec update when s != 0, and if ``dots`` accumulate ``z += W_new[:, j] v[j]``.

        The update of entry (j, i) is ``Dec = a_i p0 + b_i p1 + c_i p2 + d_i p3``, summed first
        and then added to the weight (method §3: W += 0.2 m Dec), with coefficients ``coef[blk]``
        (:func:`_block_coef`) and pre-side factors (Ax pre_j, Bx_j, Cx pre_j, Dx_j) from the
        vectors at lay[at + 1, 3, 5, 7] (indexed from j0), gathered first into the scratch ``pv``
        (>= j1 - j0, 5) with the inputs ``v``. ``z[i]`` takes its terms in the order
        of ``j``. Columns go four at a time through the loop over units (vectorised over ``i``):
        ``z`` is then loaded and stored once per four columns instead of once per column (a
        store-to-load chain that otherwise bounds the loop), with the same order of operations.
        """
        n, nb = wt.shape[1], j1 - j0
        j = j0
        if s != 0:
            # the pre-side factors of every column first, in one vectorised sweep: pv[jj] =
            # (Ax pre, Bx, Cx pre, Dx, v) of column j0 + jj (per-column scalar work would
            # otherwise cost as much as the column's vector work at H = 64)
            a0, a1, a2, a3 = lay[at + 1], lay[at + 3], lay[at + 5], lay[at + 7]
            ax, bx, cx, dx = g[a0:a0 + nb], g[a1:a1 + nb], g[a2:a2 + nb], g[a3:a3 + nb]
            pre, vb = pre_pend[j0:j1], v[j0:j1]
            for jj in range(nb):
                pv[jj, 0] = ax[jj] * pre[jj]
                pv[jj, 1] = bx[jj]
                pv[jj, 2] = cx[jj] * pre[jj]
                pv[jj, 3] = dx[jj]
                pv[jj, 4] = vb[jj]
            while j + 4 <= j1:
                k = j - j0
                e00, e01, e02, e03, x0 = pv[k, 0], pv[k, 1], pv[k, 2], pv[k, 3], pv[k, 4]
                e10, e11, e12, e13, x1 = pv[k + 1, 0], pv[k + 1, 1], pv[k + 1, 2], pv[k + 1, 3], pv[k + 1, 4]
                e20, e21, e22, e23, x2 = pv[k + 2, 0], pv[k + 2, 1], pv[k + 2, 2], pv[k + 2, 3], pv[k + 2, 4]
                e30, e31, e32, e33, x3 = pv[k + 3, 0], pv[k + 3, 1], pv[k + 3, 2], pv[k + 3, 3], pv[k + 3, 4]
                for i in range(n):
                    ca, cb, cc, cd = coef[blk, 0, i], coef[blk, 1, i], coef[blk, 2, i], coef[blk, 3, i]
                    w0 = wt[j, i] + fma(cd, e03, fma(cc, e02, fma(cb, e01, ca * e00)))
                    w1 = wt[j + 1, i] + fma(cd, e13, fma(cc, e12, fma(cb, e11, ca * e10)))
                    w2 = wt[j + 2, i] + fma(cd, e23, fma(cc, e22, fma(cb, e21, ca * e20)))
                    w3 = wt[j + 3, i] + fma(cd, e33, fma(cc, e32, fma(cb, e31, ca * e30)))
                    wt[j, i], wt[j + 1, i], wt[j + 2, i], wt[j + 3, i] = w0, w1, w2, w3
                    if dots:
                        z[i] = fma(w3, x3, fma(w2, x2, fma(w1, x1, fma(w0, x0, z[i]))))
                j += 4
            while j < j1:
                k = j - j0
                e00, e01, e02, e03, x0 = pv[k, 0], pv[k, 1], pv[k, 2], pv[k, 3], pv[k, 4]
                for i in range(n):
                    w0 = wt[j, i] + fma(coef[blk, 3, i], e03, fma(coef[blk, 2, i], e02,
                                        fma(coef[blk, 1, i], e01, coef[blk, 0, i] * e00)))
                    wt[j, i] = w0
                    if dots:
                        z[i] = fma(w0, x0, z[i])
                j += 1
        elif dots:
            _dots_cols(wt, j0, j1, v, z)

    @njit_inline
    def _dots_cols(wt, j0, j1, v, z):  # pragma: no cover - compiled
        """``z[i] += sum_{j0 <= j < j1} wt[j, i] v[j]``, terms in the order of ``j``, four
        columns per pass over ``z`` (see :func:`_plastic_pass`)."""
        n = wt.shape[1]
        j = j0
        while j + 4 <= j1:
            x0, x1, x2, x3 = v[j], v[j + 1], v[j + 2], v[j + 3]
            for i in range(n):
                z[i] = fma(wt[j + 3, i], x3, fma(wt[j + 2, i], x2, fma(wt[j + 1, i], x1, fma(wt[j, i], x0, z[i]))))
            j += 4
        while j < j1:
            x0 = v[j]
            for i in range(n):
                z[i] = fma(wt[j, i], x0, z[i])
            j += 1

    @njit_inline
    def _matvec(w, v, pv, z):  # pragma: no cover - compiled
        """``z = W^T v`` for ``w`` = W^T (n_in, n_out), through :func:`_dots_cols`."""
        for i in range(w.shape[1]):
            z[i] = 0
        _dots_cols(w, 0, w.shape[0], v, z)

    @njit
    def decrnn_row(g, lay, mod, wt, h, pp, pr, ps, x, live, y, pre, z, hn, coef, t, pv):  # pragma: no cover
        """One DecPRNN step of one lifetime (method §3): outputs into ``y`` (5,), state in place.

        Scratch: pre (H+15,), z (H,), hn (H,), coef (2, 4, H), t (4,), pv (H+15, 5) float32.
        """
        n_h = h.shape[0]
        n_x = n_h + N_IN
        for i in range(n_h):
            pre[i] = h[i]
        for k in range(N_IN):
            pre[n_h + k] = x[k]
        s0, s1 = ps[0], ps[1]
        if s0 != 0:
            _block_coef(g, lay, 3, pp, s0, coef, 0)
        if s1 != 0:
            _block_coef(g, lay, 11, pp, s1, coef, 1)
        for i in range(n_h):
            z[i] = 0
        _plastic_pass(wt, 0, n_h, g, lay, 3, pr, s0, coef, 0, pre, z, True, pv)
        _plastic_pass(wt, n_h, n_x, g, lay, 11, pr, s1, coef, 1, pre, z, True, pv)
        b, mask = g[lay[2]:lay[2] + n_h], lay[25]
        for i in range(n_h):
            hn[i] = K.tanh32(z[i] + b[i])
        if mask >= 0:
            for i in range(n_h):
                if not g[mask + i] > 0:  # structure mask: the unit is off
                    hn[i] = 0
        K.affine(g, lay[0], lay[1], N_OUT, hn, y, 0)  # y_t from h_t (pre-update weights)
        if not live:
            ps[0], ps[1] = 0, 0
        elif mod == 2:  # PostDN: m = sigmoid(W_m h_t + b_m)
            K.affine(g, lay[19], lay[20], 2, hn, t, 0)
            ps[0], ps[1] = _POINT2 * K.sigmoid32(t[0]), _POINT2 * K.sigmoid32(t[1])
        elif mod == 1:  # PreDN: m = sigmoid(W_in x_t + b_in) + sigmoid(W_mh h_{t-1} + b_mh)
            K.affine(g, lay[21], lay[22], 2, x, t, 0)
            K.affine(g, lay[23], lay[24], 2, h, t, 2)
            ps[0] = _POINT2 * (K.sigmoid32(t[0]) + K.sigmoid32(t[2]))
            ps[1] = _POINT2 * (K.sigmoid32(t[1]) + K.sigmoid32(t[3]))
        else:
            ps[0], ps[1] = 1, 1
        for i in range(n_h):
            pp[i] = hn[i]
        for j in range(n_x):
            pr[j] = pre[j]
        if live:
            for i in range(n_h):
                h[i] = hn[i]

    @njit
    def decrnn_flush(g, lay, wt, pp, pr, ps, coef, pv):  # pragma: no cover - compiled
        """Apply the pending update (same arithmetic as in :func:`decrnn_row`) and clear it."""
        n_h = pp.shape[0]
        if ps[0] != 0:
            _block_coef(g, lay, 3, pp, ps[0], coef, 0)
        if ps[1] != 0:
            _block_coef(g, lay, 11, pp, ps[1], coef, 1)
        _plastic_pass(wt, 0, n_h, g, lay, 3, pr, ps[0], coef, 0, pr, pp, False, pv)
        _plastic_pass(wt, n_h, n_h + N_IN, g, lay, 11, pr, ps[1], coef, 1, pr, pp, False, pv)
        ps[0], ps[1] = 0, 0

    @njit
    def decpdnn_row(g, lay, mod, w1t, w2t, x, live, y, h1, h2, coef, t, pv):  # pragma: no cover
        """One DecPDNN step of one lifetime (method §3). Scratch: h1, h2 (H,), coef (2, 4, H), t (2,),
        pv (>= max(H, 15), 5)."""
        n_h = h1.shape[0]
        _matvec(w1t, x, pv, h1)
        b1, b2 = g[lay[2]:lay[2] + n_h], g[lay[3]:lay[3] + n_h]
        for i in range(n_h):
            h1[i] = K.tanh32(h1[i] + b1[i])
        _matvec(w2t, h1, pv, h2)
        for i in range(n_h):
            h2[i] = K.tanh32(h2[i] + b2[i])
        K.affine(g, lay[0], lay[1], N_OUT, h2, y, 0)
        s1, s2 = F32(1), F32(1)
        if not live:
            s1, s2 = F32(0), F32(0)
        elif mod == 1:  # PreDN: m1 from x, m2 from h1
            K.affine(g, lay[20], lay[21], 1, x, t, 0)
            K.affine(g, lay[22], lay[23], 1, h1, t, 1)
            s1, s2 = _POINT2 * K.sigmoid32(t[0]), _POINT2 * K.sigmoid32(t[1])
        elif mod == 2:  # PostDN: m1 from h1, m2 from h2
            K.affine(g, lay[20], lay[21], 1, h1, t, 0)
            K.affine(g, lay[22], lay[23], 1, h2, t, 1)
            s1, s2 = _POINT2 * K.sigmoid32(t[0]), _POINT2 * K.sigmoid32(t[1])
        if s1 != 0:
            _block_coef(g, lay, 4, h1, s1, coef, 0)
            _plastic_pass(w1t, 0, N_IN, g, lay, 4, x, s1, coef, 0, x, h1, False, pv)
        if s2 != 0:
            _block_coef(g, lay, 12, h2, s2, coef, 0)
            _plastic_pass(w2t, 0, n_h, g, lay, 12, h1, s2, coef, 0, h1, h2, False, pv)

    @njit
    def decrnn_rows(gs, lay, mod, wt, h, pp, pr, ps, x, live, y):  # pragma: no cover - compiled
        """Lock-step batch: :func:`decrnn_row` for each row (gs (B, N'), state (B, ...))."""
        n_h = h.shape[1]
        pre, z, hn = np.empty(n_h + N_IN, F32), np.empty(n_h, F32), np.empty(n_h, F32)
        coef, t, pv = np.empty((2, 4, n_h), F32), np.empty(4, F32), np.empty((n_h + N_IN, 5), F32)
        for k in range(gs.shape[0]):
            decrnn_row(gs[k], lay, mod, wt[k], h[k], pp[k], pr[k], ps[k], x[k], live[k], y[k],
                       pre, z, hn, coef, t, pv)

    @njit
    def decrnn_flush_rows(gs, lay, wt, pp, pr, ps):  # pragma: no cover - compiled
        coef, pv = np.empty((2, 4, pp.shape[1]), F32), np.empty((pp.shape[1] + N_IN, 5), F32)
        for k in range(gs.shape[0]):
            decrnn_flush(gs[k], lay, wt[k], pp[k], pr[k], ps[k], coef, pv)

    @njit
    def decpdnn_rows(gs, lay, mod, w1t, w2t, x, live, y):  # pragma: no cover - compiled
        n_h = w2t.shape[1]
        h1, h2, coef, t = np.empty(n_h, F32), np.empty(n_h, F32), np.empty((2, 4, n_h), F32), np.empty(2, F32)
        pv = np.empty((max(n_h, N_IN), 5), F32)
        for k in range(gs.shape[0]):
            decpdnn_row(gs[k], lay, mod, w1t[k], w2t[k], x[k], live[k], y[k], h1, h2, coef, t, pv)


# -- numpy fallbacks (EVOPLASTIC_NO_NUMBA=1): the same formulas, batched, multiply-adds unfused --

def _vec(gs: np.ndarray, lay: np.ndarray, at: int, n: int) -> np.ndarray:
    return gs[:, lay[at]:lay[at] + n]


def _affine_np(gs, lay, w_at, b_at, n_out, v):
    n = v.shape[1]
    w = gs[:, lay[w_at]:lay[w_at] + n_out * n].reshape(len(v), n_out, n)
    return (np.matmul(w, v[:, :, None])[:, :, 0] + gs[:, lay[b_at]:lay[b_at] + n_out]).astype(F32)


def _dec_block_np(wt, gs, lay, at, post, pre, s):
    """wt (B, X_blk, Y) += s Dec(post, pre) where s != 0 (rows with s == 0 untouched)."""
    n_y, n_x = post.shape[1], pre.shape[1]
    a, b, c, d = (s[:, None] * (_vec(gs, lay, at + k, n_y) * (post if k < 4 else 1)) for k in (0, 2, 4, 6))
    p0, p1 = _vec(gs, lay, at + 1, n_x) * pre, _vec(gs, lay, at + 3, n_x)
    p2, p3 = _vec(gs, lay, at + 5, n_x) * pre, _vec(gs, lay, at + 7, n_x)
    dec = ((a[:, None, :] * p0[:, :, None] + b[:, None, :] * p1[:, :, None]) + c[:, None, :] * p2[:, :, None]
           + d[:, None, :] * p3[:, :, None])
    on = s != 0
    wt[on] = wt[on] + dec[on]


def decrnn_rows_np(gs, lay, mod, wt, h, pp, pr, ps, x, live, y) -> None:
    """numpy :func:`decrnn_rows`."""
    n_h = h.shape[1]
    pre = np.concatenate([h, x], axis=1)
    _dec_block_np(wt[:, :n_h], gs, lay, 3, pp, pr[:, :n_h], ps[:, 0])
    _dec_block_np(wt[:, n_h:], gs, lay, 11, pp, pr[:, n_h:], ps[:, 1])
    z = np.matmul(pre[:, None, :], wt)[:, 0] + _vec(gs, lay, 2, n_h)
    hn = tanh32_np(z)
    if lay[25] >= 0:
        hn = np.where(_vec(gs, lay, 25, n_h) > 0, hn, F32(0))
    y[:] = _affine_np(gs, lay, 0, 1, N_OUT, hn)
    if mod == 2:
        s = _POINT2 * sigmoid32_np(_affine_np(gs, lay, 19, 20, 2, hn))
    elif mod == 1:
        s = _POINT2 * (sigmoid32_np(_affine_np(gs, lay, 21, 22, 2, x)) + sigmoid32_np(_affine_np(gs, lay, 23, 24, 2, h)))
    else:
        s = np.ones((len(x), 2), F32)
    ps[:] = np.where(live[:, None], s, F32(0))
    pp[:], pr[:] = hn, pre
    h[live] = hn[live]


def decrnn_flush_rows_np(gs, lay, wt, pp, pr, ps) -> None:
    n_h = pp.shape[1]
    _dec_block_np(wt[:, :n_h], gs, lay, 3, pp, pr[:, :n_h], ps[:, 0])
    _dec_block_np(wt[:, n_h:], gs, lay, 11, pp, pr[:, n_h:], ps[:, 1])
    ps[:] = 0


def decpdnn_rows_np(gs, lay, mod, w1t, w2t, x, live, y) -> None:
    """numpy :func:`decpdnn_rows`."""
    n_h = w2t.shape[2]
    h1 = tanh32_np(np.matmul(x[:, None, :], w1t)[:, 0] + _vec(gs, lay, 2, n_h))
    h2 = tanh32_np(np.matmul(h1[:, None, :], w2t)[:, 0] + _vec(gs, lay, 3, n_h))
    y[:] = _affine_np(gs, lay, 0, 1, N_OUT, h2)
    if mod == 0:
        s1 = s2 = np.ones(len(x), F32)
    else:
        s1 = _POINT2 * sigmoid32_np(_affine_np(gs, lay, 20, 21, 1, x if mod == 1 else h1))[:, 0]
        s2 = _POINT2 * sigmoid32_np(_affine_np(gs, lay, 22, 23, 1, h1 if mod == 1 else h2))[:, 0]
    s1, s2 = np.where(live, s1, F32(0)), np.where(live, s2, F32(0))
    _dec_block_np(w1t, gs, lay, 4, h1, x, s1)
    _dec_block_np(w2t, gs, lay, 12, h2, h1, s2)
