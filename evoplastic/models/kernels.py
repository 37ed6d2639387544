"""Compiled inner loops (numba) for the hot path, with numpy fallbacks of the same maths.

numba is a dependency because the SPEC 3 rank-4 Dec update is the evaluator's bottleneck and
numpy's stacked matmul is slow for an inner dimension of 4 (measured: 72% of a DecPRNN step).
The kernel walks each lifetime's weights once, in place, in float32 (``fastmath`` only for
reassociation and fused multiply-add, so that the loops vectorise; no NaN/inf assumptions), so it
computes the same sums as the numpy path up to float32 rounding.
Set ``EVOPLASTIC_NO_NUMBA=1`` to force the numpy path.
"""

from __future__ import annotations

import os

import numpy as np

try:
    if os.environ.get("EVOPLASTIC_NO_NUMBA"):
        raise ImportError("disabled by EVOPLASTIC_NO_NUMBA")
    import numba
except ImportError:  # pragma: no cover - exercised with EVOPLASTIC_NO_NUMBA=1
    numba = None

HAVE_NUMBA = numba is not None


def _dec_update_py(w, post, pre, ay, by, cy, dy, ax, bx, cx, dx, scale, split):
    """numpy reference of :func:`dec_update`: two column blocks, each a rank-4 product."""
    for blk, cols in enumerate((slice(0, split), slice(split, w.shape[2]))):
        if cols.start == cols.stop:
            continue
        u = np.stack([ay[:, blk] * post, by[:, blk] * post, cy[:, blk], dy[:, blk]], axis=2)
        u *= scale[:, blk, None, None]
        v = np.stack([ax[:, cols] * pre[:, cols], bx[:, cols], cx[:, cols] * pre[:, cols], dx[:, cols]], axis=1)
        w[:, :, cols] += np.matmul(u, v)


if HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def _dec_update_nb(w, post, pre, ay, by, cy, dy, ax, bx, cx, dx, scale, split, x_now, z_out):  # pragma: no cover
        nb, ny, nx = w.shape
        pv = np.empty((4, nx), np.float32)  # the pre-side vectors of the 4 rank-1 terms
        matvec = z_out.shape[0] > 0
        for k in range(nb):
            for j in range(nx):
                pv[0, j] = ax[k, j] * pre[k, j]
                pv[1, j] = bx[k, j]
                pv[2, j] = cx[k, j] * pre[k, j]
                pv[3, j] = dx[k, j]
            s0, s1 = scale[k, 0], scale[k, 1]
            for i in range(ny):
                row = w[k, i]
                p = post[k, i]
                if s0 != 0 and s1 != 0:
                    # Both blocks learn (every live lifetime): one uniform pass per block; the
                    # running dot product gives next step's pre-activation from the new weights.
                    a0, b0, c0, d0 = s0 * (ay[k, 0, i] * p), s0 * (by[k, 0, i] * p), s0 * cy[k, 0, i], s0 * dy[k, 0, i]
                    a1, b1, c1, d1 = s1 * (ay[k, 1, i] * p), s1 * (by[k, 1, i] * p), s1 * cy[k, 1, i], s1 * dy[k, 1, i]
                    acc = np.float32(0.0)
                    if matvec:
                        xk = x_now[k]
                        for j in range(split):
                            r = row[j] + (((a0 * pv[0, j] + b0 * pv[1, j]) + c0 * pv[2, j]) + d0 * pv[3, j])
                            row[j] = r
                            acc += r * xk[j]
                        for j in range(split, nx):
                            r = row[j] + (((a1 * pv[0, j] + b1 * pv[1, j]) + c1 * pv[2, j]) + d1 * pv[3, j])
                            row[j] = r
                            acc += r * xk[j]
                        z_out[k, i] = acc
                    else:
                        for j in range(split):
                            row[j] += ((a0 * pv[0, j] + b0 * pv[1, j]) + c0 * pv[2, j]) + d0 * pv[3, j]
                        for j in range(split, nx):
                            row[j] += ((a1 * pv[0, j] + b1 * pv[1, j]) + c1 * pv[2, j]) + d1 * pv[3, j]
                else:
                    # A block with scale 0 (finished lifetime, or DecPDNN's unused block) is
                    # left exactly as it is, not even + 0.0.
                    acc = np.float32(0.0)
                    for blk in range(2):
                        s = scale[k, blk]
                        j0 = 0 if blk == 0 else split
                        j1 = split if blk == 0 else nx
                        if s != 0:
                            a, b = s * (ay[k, blk, i] * p), s * (by[k, blk, i] * p)
                            c, d = s * cy[k, blk, i], s * dy[k, blk, i]
                            for j in range(j0, j1):
                                row[j] += ((a * pv[0, j] + b * pv[1, j]) + c * pv[2, j]) + d * pv[3, j]
                        if matvec:
                            xk = x_now[k]
                            for j in range(j0, j1):
                                acc += row[j] * xk[j]
                    if matvec:
                        z_out[k, i] = acc


_NO_DOTS = np.zeros((0, 0), np.float32)


def dec_update(w: np.ndarray, post: np.ndarray, pre: np.ndarray, ay: np.ndarray, by: np.ndarray,
               cy: np.ndarray, dy: np.ndarray, ax: np.ndarray, bx: np.ndarray, cx: np.ndarray,
               dx: np.ndarray, scale: np.ndarray, split: int, x_now: np.ndarray | None = None,
               z_out: np.ndarray | None = None) -> None:
    """SPEC 3 Dec update of a weight matrix made of two column blocks, in place.

    Columns ``< split`` form block 0, the rest block 1; each block has its own post-synaptic
    vectors and scale: ``w[:, :, block] += scale[:, b] * Dec_b(post, pre[:, block])``.
    With ``x_now``/``z_out``, also compute ``z_out = w_new @ x_now`` in the same pass over ``w``
    (DecPRNN applies step t's update while computing step t+1's pre-activation).

    Args:
        w: (B, Y, X) float32, C-contiguous.
        post: (B, Y); pre: (B, X) (pre-synaptic values of both blocks side by side).
        ay, by, cy, dy: (B, 2, Y) post-side vectors of block 0 and block 1.
        ax, bx, cx, dx: (B, X) pre-side vectors.
        scale: (B, 2) float32 (0.2 m modulated, 1 unmodulated, 0: no update).
        x_now: (B, X), z_out: (B, Y) float32, optional.
    """
    if HAVE_NUMBA and w.flags.c_contiguous:
        if z_out is None:
            x_now = z_out = _NO_DOTS
        _dec_update_nb(w, post, pre, ay, by, cy, dy, ax, bx, cx, dx, scale, split, x_now, z_out)
    else:
        _dec_update_py(w, post, pre, ay, by, cy, dy, ax, bx, cx, dx, scale, split)
        if z_out is not None:
            z_out[:] = np.matmul(w, x_now[:, :, None])[:, :, 0]
