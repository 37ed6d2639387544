"""Compiled per-lifetime arithmetic (numba), shared by the lock-step and the fused engines.

Why one set of kernels: a lifetime's floats must not depend on how it is run (lock-step batch of
any size, fused engine, any worker). Each kernel here computes ONE lifetime's step with a fixed
sequence of float32 operations:

- no ``fastmath``: LLVM may not reassociate, so a sum is always taken in the written order,
  whatever the calling context (inlined into the fused loop or called row by row);
- fused multiply-adds are explicit (:func:`fma`, the ``llvm.fma`` intrinsic), never left to the
  compiler's contraction, so the same expression rounds the same way everywhere;
- reductions are written so that the vector lanes run over *independent* sums: the weight
  matrices are stored transposed, ``WT`` (inputs, units), and ``z[i] += WT[j, i] x[j]`` walks
  ``j`` in order for every unit ``i`` while ``i`` fills the SIMD lanes (checked in the generated
  code: ``evoplastic bench lifetime --asm``);
- one ``tanh`` (:func:`tanh32`, a rational approximation accurate to a few float32 ulp, written
  in plain float32 operations so that numpy computes the same numbers) and one sigmoid.

The numpy fallbacks (``EVOPLASTIC_NO_NUMBA=1``) compute the same formulas in the same order but
without fused multiply-adds, so they agree with the compiled kernels to float32 rounding, not
bit for bit.
"""

from __future__ import annotations

import os

import numpy as np

try:
    if os.environ.get("EVOPLASTIC_NO_NUMBA"):
        raise ImportError("disabled by EVOPLASTIC_NO_NUMBA")
    import numba
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - exercised with EVOPLASTIC_NO_NUMBA=1
    numba = None

HAVE_NUMBA = numba is not None
F32 = np.float32
# numba's on-disk cache of a function is invalidated only by changes to the file that defines it,
# not to the kernels it calls from other files: a stale fused engine would run old arithmetic.
# These modules' cached code is therefore dropped whenever any of them changes.
_CACHED_MODULES = ("evoplastic/models/kernels.py", "evoplastic/models/dec_kernels.py",
                   "evoplastic/models/meta_kernels.py", "evoplastic/models/abcd_kernels.py",
                   "evoplastic/models/nm_kernels.py",
                   "evoplastic/fused.py")


def _cache_dir(src, custom: str | None):
    """Where numba caches the functions of source file ``src``: ``__pycache__`` beside it, or under
    ``NUMBA_CACHE_DIR`` (``custom``) the sub-directory numba's own locator names (numba 0.68:
    ``<parent>_<sha1 of the parent's path>``, not a mirror of the path)."""
    from pathlib import Path

    if not custom:
        return Path(src).parent / "__pycache__"
    from numba.core.caching import UserProvidedCacheLocator

    return Path(custom) / UserProvidedCacheLocator.get_suitable_cache_subpath(str(src))


def _drop_stale_cache() -> None:
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for rel in _CACHED_MODULES:
        path = root / rel
        digest.update(path.read_bytes() if path.exists() else b"")
    stamp_value = digest.hexdigest()
    custom = os.environ.get("NUMBA_CACHE_DIR")
    for rel in _CACHED_MODULES:
        src = root / rel
        cache_dir = _cache_dir(src, custom)
        stamp = cache_dir / f"{src.stem}.kernels-stamp"
        try:
            if stamp.exists() and stamp.read_text() == stamp_value:
                continue
            for f in list(cache_dir.glob(f"{src.stem}.*.nbi")) + list(cache_dir.glob(f"{src.stem}.*.nbc")):
                f.unlink(missing_ok=True)
            cache_dir.mkdir(parents=True, exist_ok=True)
            stamp.write_text(stamp_value)
        except OSError:  # a read-only install: numba then compiles in memory
            pass

# tanh32: Eigen's rational approximation of tanh on float32 (generic_fast_tanh_float, the one
# XLA's CPU backend uses): odd degree-13 numerator over even degree-6 denominator on [-c, c].
_TANH_CLAMP = F32(7.90531110763549805)
_TANH_TINY = F32(0.0004)
_TANH_A = tuple(F32(v) for v in (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
                                5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
                                -2.76076847742355e-16))
_TANH_B = tuple(F32(v) for v in (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
                                1.19825839466702e-06))
_A1, _A3, _A5, _A7, _A9, _A11, _A13 = _TANH_A
_B0, _B2, _B4, _B6 = _TANH_B
_ONE = F32(1.0)
_ZERO = F32(0.0)


def tanh32_np(x: np.ndarray) -> np.ndarray:
    """numpy :func:`tanh32` (float32 in, float32 out; multiply-adds unfused)."""
    x = np.asarray(x, F32)
    c = np.clip(x, -_TANH_CLAMP, _TANH_CLAMP)
    x2 = c * c
    p = x2 * _A13 + _A11
    for a in (_A9, _A7, _A5, _A3, _A1):
        p = x2 * p + a
    p = c * p
    q = x2 * _B6 + _B4
    for b in (_B2, _B0):
        q = x2 * q + b
    return np.where(np.abs(x) < _TANH_TINY, x, p / q).astype(F32)


def sigmoid32_np(z: np.ndarray) -> np.ndarray:
    """numpy float32 logistic function ``1 / (1 + exp(-z))``."""
    return (_ONE / (_ONE + np.exp(-np.asarray(z, F32)))).astype(F32)


if HAVE_NUMBA:
    _drop_stale_cache()
    njit = numba.njit(cache=True, nogil=True, error_model="numpy")
    # Kernels called in an inner loop are inlined (numba IR level): a call passes every array
    # as a struct and updates its reference count, which costs more than a column of work.
    njit_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")

    @intrinsic
    def fma(typingctx, a, b, c):  # pragma: no cover - compiled
        """``a * b + c`` rounded once (``llvm.fma``); all three of one float type."""
        if not (isinstance(a, numba.types.Float) and a == b == c):
            return None

        def codegen(context, builder, signature, args):
            return builder.fma(*args)

        return a(a, b, c), codegen

    @njit_inline
    def tanh32(x):  # pragma: no cover - compiled
        """float32 tanh (see the module docstring); |error| within a few ulp."""
        c = x if x < _TANH_CLAMP else _TANH_CLAMP  # selects (min/max branch on NaN)
        c = c if c > -_TANH_CLAMP else -_TANH_CLAMP
        x2 = c * c
        p = fma(x2, _A13, _A11)
        p = fma(x2, p, _A9)
        p = fma(x2, p, _A7)
        p = fma(x2, p, _A5)
        p = fma(x2, p, _A3)
        p = fma(x2, p, _A1)
        p = c * p
        q = fma(x2, _B6, _B4)
        q = fma(x2, q, _B2)
        q = fma(x2, q, _B0)
        r = p / q
        return x if abs(x) < _TANH_TINY else r  # a select, not a branch: the loop vectorises

    @njit_inline
    def sigmoid32(z):  # pragma: no cover - compiled
        """float32 logistic function."""
        return _ONE / (_ONE + np.float32(np.exp(-z)))

    @njit
    def tanh_into(z, out):  # pragma: no cover - compiled
        for i in range(z.shape[0]):
            out[i] = tanh32(z[i])

    # The kernels below index flat parameter vectors and whole arrays by offset instead of taking
    # slices: a slice is a new array object whose reference count numba maintains with calls that
    # would sit in the innermost loops.

    @njit_inline
    def affine(g, w_at, b_at, n_out, v, out, o0):  # pragma: no cover - compiled
        """``out[o0 + o] = sum_i W[o, i] v[i] + b[o]`` for W (n_out, n) row-major at ``g[w_at:]``
        and b at ``g[b_at:]``. Fixed order: four partial sums over ``i mod 4`` (so that four
        multiply-add chains run side by side), combined as ``(s0 + s1) + (s2 + s3)``."""
        n = v.shape[0]
        n4 = n - n % 4
        for o in range(n_out):
            w = g[w_at + o * n:w_at + (o + 1) * n]
            s0, s1, s2, s3 = _ZERO, _ZERO, _ZERO, _ZERO
            for i in range(0, n4, 4):
                s0 = fma(w[i], v[i], s0)
                s1 = fma(w[i + 1], v[i + 1], s1)
                s2 = fma(w[i + 2], v[i + 2], s2)
                s3 = fma(w[i + 3], v[i + 3], s3)
            for i in range(n4, n):
                s0 = fma(w[i], v[i], s0)
            out[o0 + o] = ((s0 + s1) + (s2 + s3)) + g[b_at + o]

    @njit_inline
    def dec_coefficients(g, ay, by, cy, dy, post, s, coef, blk):  # pragma: no cover - compiled
        """Post-side factors of one block's rank-4 Dec update, scaled (method §3):
        ``coef[blk] = (s Ay post, s By post, s Cy, s Dy)`` (4, Y); the vectors at ``g[ay:]``..."""
        n = post.shape[0]
        # Slices, not g[ay + i]: an index that may be negative gets a wrap-around select that
        # keeps the loop from vectorising; one output row per loop keeps the alias checks few.
        gay, gby, gcy, gdy = g[ay:ay + n], g[by:by + n], g[cy:cy + n], g[dy:dy + n]
        for i in range(n):
            coef[blk, 0, i] = s * (gay[i] * post[i])
        for i in range(n):
            coef[blk, 1, i] = s * (gby[i] * post[i])
        for i in range(n):
            coef[blk, 2, i] = s * gcy[i]
        for i in range(n):
            coef[blk, 3, i] = s * gdy[i]
