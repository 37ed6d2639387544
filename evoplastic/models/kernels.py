"""Compiled inner loops (numba) for the hot path, with numpy fallbacks of the same maths.

numba is a dependency because the SPEC 3 rank-4 Dec update is the evaluator's bottleneck and
numpy's stacked matmul is slow for an inner dimension of 4 (measured: 72% of a DecPRNN step).
The kernel walks each lifetime's weights once, in place, in float32, without ``fastmath`` (no
reassociation), so it computes the same sums as the numpy path up to float32 rounding.
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
        v0 = np.empty(nx, np.float32)
        v2 = np.empty(nx, np.float32)
        matvec = z_out.shape[0] > 0
        for k in range(nb):
            for j in range(nx):
                v0[j] = ax[k, j] * pre[k, j]
                v2[j] = cx[k, j] * pre[k, j]
            bxk, dxk, wk = bx[k], dx[k], w[k]
            for i in range(ny):
                row = wk[i]
                acc = np.float32(0.0)
                for blk in range(2):
                    s = scale[k, blk]
                    j0 = 0 if blk == 0 else split
                    j1 = split if blk == 0 else nx
                    if s != 0:
                        p = post[k, i]
                        a = s * (ay[k, blk, i] * p)
                        b = s * (by[k, blk, i] * p)
                        c = s * cy[k, blk, i]
                        d = s * dy[k, blk, i]
                        if matvec:  # one pass: update the row and take next step's pre-activation
                            xk = x_now[k]
                            for j in range(j0, j1):
                                row[j] += ((a * v0[j] + b * bxk[j]) + c * v2[j]) + d * dxk[j]
                                acc += row[j] * xk[j]
                        else:
                            for j in range(j0, j1):
                                row[j] += ((a * v0[j] + b * bxk[j]) + c * v2[j]) + d * dxk[j]
                    elif matvec:
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
