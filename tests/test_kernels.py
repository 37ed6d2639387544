"""The compiled per-lifetime kernels: tanh32's accuracy, the Dec update against the plain method §3
formula, and the numpy fallback against the compiled path."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evoplastic.models import dec_kernels as DK
from evoplastic.models import get_model
from evoplastic.models import kernels as K

F32 = np.float32
ROOT = Path(__file__).resolve().parents[1]
needs_numba = pytest.mark.skipif(not K.HAVE_NUMBA, reason="numba not installed")


def ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    return np.abs(got.astype(np.float64) - exact) / np.spacing(np.abs(exact).astype(F32)).astype(np.float64)


def test_tanh32_numpy_is_within_6_ulp() -> None:
    x = np.linspace(-12, 12, 400_001).astype(F32)
    exact = np.tanh(x.astype(np.float64))
    assert ulps(K.tanh32_np(x), exact).max() <= 6.0  # unfused multiply-adds: measured 5.5
    tiny = np.array([0.0, -0.0, 1e-30], F32)
    np.testing.assert_array_equal(K.tanh32_np(tiny), tiny)  # tanh x = x below 4e-4


@needs_numba
def test_tanh32_compiled_is_within_5_ulp_and_odd() -> None:
    x = np.linspace(-12, 12, 400_001).astype(F32)
    out = np.empty_like(x)
    K.tanh_into(x, out)
    assert ulps(out, np.tanh(x.astype(np.float64))).max() <= 5.0  # measured: 4.6
    np.testing.assert_array_equal(out, -out[::-1])  # odd, exactly (the grid is symmetric)
    np.testing.assert_allclose(out, K.tanh32_np(x), rtol=0, atol=5e-7)  # numpy: unfused multiply-adds


def _state(rng, model, batch=3):
    """Prepared params and a lock-step state with a pending update of random scales."""
    g = (0.3 * rng.standard_normal((batch, model.n_gene))).astype(F32)
    p = model.prepare(model.unpack(g))
    mem = model.init_memory(batch)
    mem["WT"][:] = rng.standard_normal(mem["WT"].shape).astype(F32)
    mem["_pp"][:] = rng.standard_normal(mem["_pp"].shape).astype(F32)
    mem["_pr"][:] = rng.standard_normal(mem["_pr"].shape).astype(F32)
    mem["_ps"][:] = np.array([[0.2, 0.5], [1.0, 0.0], [0.0, 0.3]], F32)[:batch]
    return p, mem


@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=needs_numba)])
def test_dec_update_matches_the_formula(use_numba: bool, monkeypatch) -> None:
    """memory_state applies the pending update: W[i, j] += s_blk Dec[i, j] (method §3), entry by entry."""
    monkeypatch.setattr(K, "HAVE_NUMBA", use_numba)
    model = get_model("decprnn-postdn", 6)
    H = 6
    p, mem = _state(np.random.default_rng(1), model)
    named = model.unpack(model.pack({k: v for k, v in p.items() if not k.startswith("_")}))
    expected = mem["WT"].transpose(0, 2, 1).astype(np.float64)
    post, pre, s = mem["_pp"], mem["_pr"], mem["_ps"]
    for k in range(3):
        for i in range(H):
            for j in range(H + 15):
                blk, q, jj = (0, "h", j) if j < H else (1, "x", j - H)
                v = lambda name: named[f"{q}.{name}"][k]  # noqa: E731
                dec = (v("Ay")[i] * post[k, i] * v("Ax")[jj] * pre[k, j] + v("By")[i] * post[k, i] * v("Bx")[jj]
                       + v("Cy")[i] * v("Cx")[jj] * pre[k, j] + v("Dy")[i] * v("Dx")[jj])
                expected[k, i, j] += s[k, blk] * dec
    got = model.memory_state(p, mem)["W"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # scale 0: that block is left exactly as it was (not even + 0.0)
    np.testing.assert_array_equal(got[1, :, H:], mem["WT"][1, H:].T)
    np.testing.assert_array_equal(got[2, :, :H], mem["WT"][2, :H].T)


@needs_numba
@pytest.mark.parametrize("model_id", ["decprnn-postdn", "decprnn-predn+mask", "decpdnn-postdn", "decpdnn"])
def test_numpy_fallback_agrees_with_compiled_to_rounding(model_id: str, monkeypatch) -> None:
    model = get_model(model_id, 16)
    rng = np.random.default_rng(3)
    g = (0.3 * rng.standard_normal((4, model.n_gene))).astype(F32)
    p = model.prepare(model.unpack(g))
    mems = [model.init_memory(4), model.init_memory(4)]
    for t in range(20):
        x = rng.integers(-1, 2, (4, 15)).astype(F32)
        live = np.array([True, True, t < 10, True])
        ys = []
        for use_numba, mem in zip((True, False), mems):
            monkeypatch.setattr(K, "HAVE_NUMBA", use_numba)
            ys.append(model.step(p, mem, x, live))
        np.testing.assert_allclose(ys[0], ys[1], rtol=1e-4, atol=1e-5)
    for a, b in zip(model.memory_state(p, mems[0]).values(), model.memory_state(p, mems[1]).values()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_pack_layout_names_every_tensor_of_the_dec_models() -> None:
    for model_id, names in (("decprnn-predn+mask", DK.DECRNN_NAMES), ("decprnn-postdn", DK.DECRNN_NAMES),
                            ("decpdnn-predn", DK.DECPDNN_NAMES), ("decpdnn-postdn", DK.DECPDNN_NAMES)):
        model = get_model(model_id, 8)
        g = np.arange(model.n_gene, dtype=F32)[None]
        flat, lay = DK.pack(model.unpack(g), names)
        assert set(n for n, _ in model.param_shapes()) <= set(names)
        assert flat.shape == (1, model.n_gene)
        for name, shape in model.param_shapes():
            at = lay[names.index(name)]
            np.testing.assert_array_equal(flat[0, at:at + int(np.prod(shape))], model.unpack(g)[name].reshape(-1))


@pytest.mark.skipif(not K.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("custom", [False, True])
def test_stale_cache_is_dropped_where_numba_writes_it(tmp_path: Path, custom: bool) -> None:
    """The stamp that invalidates stale compiled kernels sits in the directory numba really caches
    them in, with or without NUMBA_CACHE_DIR (numba 0.68 names a hashed sub-directory there, not a
    mirror of the source path), and a cache entry from other sources is deleted on import."""
    import shutil

    root = tmp_path / "src"
    shutil.copytree(ROOT / "evoplastic", root / "evoplastic", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("NUMBA_CACHE_DIR", None)
    if custom:
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    code = ("import numpy as np; from evoplastic.models import kernels as K; "
            "out = np.empty(3, np.float32); K.tanh_into(np.ones(3, np.float32), out)")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300, cwd=tmp_path)
    (index,) = (tmp_path / ("cache" if custom else "src")).rglob("kernels.tanh_into-*.nbi")
    stamp = index.parent / "kernels.kernels-stamp"
    assert stamp.is_file()
    stale = index.parent / "kernels.stale_kernel-1.py311.nbi"  # as if written by older sources
    stale.write_bytes(b"x")
    stamp.write_text("an older digest")
    subprocess.run([sys.executable, "-c", "import evoplastic.models.kernels"], env=env, check=True, timeout=300,
                   cwd=tmp_path)
    assert not stale.exists() and not index.exists() and stamp.read_text() != "an older digest"
