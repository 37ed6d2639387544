"""The compiled Dec update equals its numpy reference and the plain SPEC 3 formula."""

import numpy as np
import pytest

from evoplastic.models import kernels


def _args(rng, b=3, y=6, x=9):
    a = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return a(b, y, x), [a(b, y), a(b, x)] + [a(b, 2, y) for _ in range(4)] + [a(b, x) for _ in range(4)]


@pytest.mark.parametrize("split", [0, 4, 9])
def test_dec_update_matches_the_formula(split: int) -> None:
    rng = np.random.default_rng(1)
    w, (post, pre, ay, by, cy, dy, ax, bx, cx, dx) = _args(rng)
    scale = np.array([[0.2, 0.5], [1.0, 0.0], [0.0, 0.3]], np.float32)
    expected = w.astype(np.float64)
    for k in range(3):
        for blk, cols in ((0, range(0, split)), (1, range(split, 9))):
            for i in range(6):
                for j in cols:  # SPEC 3: (A_y post)(A_x pre) + (B_y post) B_x + C_y (C_x pre) + D_y D_x
                    dec = (ay[k, blk, i] * post[k, i] * ax[k, j] * pre[k, j] + by[k, blk, i] * post[k, i] * bx[k, j]
                           + cy[k, blk, i] * cx[k, j] * pre[k, j] + dy[k, blk, i] * dx[k, j])
                    expected[k, i, j] += scale[k, blk] * dec
    x_now = rng.standard_normal((3, 9)).astype(np.float32)
    for use_numba in [False] + ([True] if kernels.HAVE_NUMBA else []):
        got, z = w.copy(), np.empty((3, 6), np.float32)
        kernels.HAVE_NUMBA, saved = use_numba, kernels.HAVE_NUMBA
        try:
            kernels.dec_update(got, post, pre, ay, by, cy, dy, ax, bx, cx, dx, scale, split, x_now, z)
        finally:
            kernels.HAVE_NUMBA = saved
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        # the same pass also gives the next pre-activation: updated weights times x_now
        np.testing.assert_allclose(z, np.einsum("kij,kj->ki", expected, x_now), rtol=1e-4, atol=1e-4)
        assert np.array_equal(got[1, :, split:], w[1, :, split:])  # scale 0: block untouched exactly


@pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba not installed")
def test_numba_and_numpy_paths_agree_to_rounding() -> None:
    rng = np.random.default_rng(2)
    w, args = _args(rng, b=8, y=64, x=79)
    scale = np.abs(rng.standard_normal((8, 2))).astype(np.float32)
    w1, w2 = w.copy(), w.copy()
    kernels._dec_update_nb(w1, *args, scale, 64, kernels._NO_DOTS, kernels._NO_DOTS)
    kernels._dec_update_py(w2, *args, scale, 64)
    assert np.abs(w1 - w2).max() <= 1e-6 * np.abs(w2 - w).max()
