"""NM-RNN and LR-RNN (Costacurta et al. 2024): genome sizes counted by hand, two steps
by hand, and NM-RNN with its gains pinned at 1 equal to LR-RNN bit for bit over whole lifetimes.

The per-lifetime equivalence with a slow single-vector oracle lives in
tests/test_lifetime_reference.py (``SlowNet.step_nm``), like every other model's.
"""

from __future__ import annotations

from math import exp, tanh

import numpy as np
import pytest

from evoplastic.envs import tasks as tasklib
from evoplastic.models import get_model
from evoplastic.models.base import linear, sigmoid
from evoplastic.models.nm import NMRNN

from _tracing import traced

F32 = np.float32


def sig(v: float) -> float:
    return 1.0 / (1.0 + exp(-v))


# -- genome and memory sizes -------------------------------------------------------------------

def lr_genes(n: int, k: int) -> int:
    """a + L (n x k) + R (n x k) + B (n x 15) + b (n) + W_o (5 x n) + b_o (5)."""
    return 1 + n * k + n * k + n * 15 + n + 5 * n + 5


def nm_genes(n: int, k: int, m: int) -> int:
    """LR-RNN + a_z + W_z (m x m) + B_z (m x 15) + b_z (m) + A (k x m) + c (k)."""
    return lr_genes(n, k) + 1 + m * m + m * 15 + m + k * m + k


def test_genome_sizes_by_hand() -> None:
    # Defaults (get_model): N = hidden = 64, K = 4, M = 8.
    assert lr_genes(64, 4) == 1 + 256 + 256 + 960 + 64 + 320 + 5 == 1862
    assert nm_genes(64, 4, 8) == 1862 + 1 + 64 + 120 + 8 + 32 + 4 == 2091
    assert get_model("lr-rnn").n_gene == 1862 and get_model("nm-rnn").n_gene == 2091
    assert get_model("lr-rnn").n_mem == 64 and get_model("nm-rnn").n_mem == 64 + 8  # x, and z
    # Other sizes through the constructor fields.
    for n, k, m in ((8, 4, 8), (10, 2, 3), (32, 1, 5)):
        assert NMRNN(n, rank=k, modulator=m).n_gene == nm_genes(n, k, m)
        assert NMRNN(n, rank=k, modulator=0).n_gene == lr_genes(n, k)
        assert NMRNN(n, rank=k, modulator=m).n_mem == n + m
    assert NMRNN(8, modulator=0).id == "lr-rnn" and NMRNN(8).id == "nm-rnn"
    with pytest.raises(ValueError, match="rank >= 1"):
        NMRNN(8, rank=0)


def test_lr_genome_is_a_prefix_of_nm_genome() -> None:
    lr, nm = NMRNN(8, modulator=0).param_shapes(), NMRNN(8).param_shapes()
    assert nm[:len(lr)] == lr
    assert [name for name, _ in nm[len(lr):]] == ["a_z", "W_z", "B_z", "b_z", "A", "c"]


# -- two steps by hand (N = 2, K = 1, M = 1) ---------------------------------------------------

def test_two_steps_by_hand() -> None:
    model = NMRNN(2, rank=1, modulator=1)
    e = lambda i, v: np.eye(1, 15, i)[0] * v  # noqa: E731  (a 15-vector with one entry)
    p = {"a": [0.0], "L": [[1.0], [-2.0]], "R": [[0.5], [1.0]],
         "B": [e(0, 1.0), e(9, -1.0)], "b": [0.25, 0.0],
         "W_o": [[1, 0], [0, 1], [1, 1], [1, -1], [0, 2]], "b_o": [0.1, 0, 0, 0, -0.1],
         "a_z": [1.0], "W_z": [[2.0]], "B_z": [e(0, 0.5)], "b_z": [0.0], "A": [[3.0]], "c": [-1.0]}
    params = model.prepare(model.unpack(model.pack({k: np.asarray(v, F32)[None] for k, v in p.items()})))
    mem = model.init_memory(1)
    u = np.zeros((1, 15), F32)
    u[0, 0], u[0, 9] = 1.0, 1.0
    a, a_z = sig(0.0), sig(1.0)  # a = sigmoid(gene) = 0.5; a_z = 0.7310585786
    # Step 1 (x_0 = z_0 = 0): z_1 = a_z tanh(0.5); the recurrent term is l s (r . tanh 0) = 0;
    # x_1 = a (B u + b) = 0.5 (1.25, -1).
    z1 = a_z * tanh(0.5)
    x1 = [a * 1.25, a * -1.0]
    y1 = model.step(params, mem, u)
    np.testing.assert_allclose(mem["z"][0], [z1], rtol=1e-6)
    np.testing.assert_allclose(mem["x"][0], x1, rtol=1e-6)
    t = [tanh(v) for v in x1]
    np.testing.assert_allclose(y1[0], [t[0] + 0.1, t[1], t[0] + t[1], t[0] - t[1], 2 * t[1] - 0.1], rtol=1e-6)
    # Step 2: z_2 = (1 - a_z) z_1 + a_z tanh(2 z_1 + 0.5); s_2 = sigmoid(3 z_2 - 1);
    # x_2 = (1 - a) x_1 + a (l s_2 (r . tanh x_1) + B u + b).
    z2 = (1 - a_z) * z1 + a_z * tanh(2 * z1 + 0.5)
    s2 = sig(3 * z2 - 1)
    proj = 0.5 * t[0] + 1.0 * t[1]
    x2 = [(1 - a) * x1[0] + a * (1.0 * s2 * proj + 1.25), (1 - a) * x1[1] + a * (-2.0 * s2 * proj - 1.0)]
    y2 = model.step(params, mem, u)
    np.testing.assert_allclose(mem["z"][0], [z2], rtol=1e-6)
    np.testing.assert_allclose(mem["x"][0], x2, rtol=1e-6)
    t = [tanh(v) for v in x2]
    np.testing.assert_allclose(y2[0], [t[0] + 0.1, t[1], t[0] + t[1], t[0] - t[1], 2 * t[1] - 0.1], rtol=1e-6)
    # s_2 is visibly away from 1 here, so a model ignoring it would fail the x_2 check.
    assert abs(s2 - 1) > 0.1


# -- NM-RNN with s = 1 is LR-RNN ---------------------------------------------------------------

def paired_genomes(hidden: int, count: int, c: float) -> tuple[np.ndarray, np.ndarray]:
    """LR-RNN genomes and NM-RNN genomes with the same shared genes, A = 0 and every c = ``c``."""
    lr, nm = get_model("lr-rnn", hidden), get_model("nm-rnn", hidden)
    gen = np.random.default_rng(7)
    g_lr = (gen.standard_normal((count, lr.n_gene)) * 0.3).astype(F32)
    extra = nm.unpack(np.zeros((count, nm.n_gene), F32))
    for name in ("a_z", "W_z", "B_z", "b_z"):
        extra[name] = gen.standard_normal(extra[name].shape).astype(F32)
    extra["c"][:] = c
    named = {**extra, **lr.unpack(g_lr)}
    return g_lr, nm.pack(named)




@pytest.mark.parametrize("hidden", [8, 64])
def test_nm_rnn_with_unit_gains_equals_lr_rnn_bit_for_bit(hidden: int, monkeypatch) -> None:
    ts = tasklib.generate(3, 9, 0.30, seed=99)
    lr, nm = get_model("lr-rnn", hidden), get_model("nm-rnn", hidden)
    g_lr, g_nm = paired_genomes(hidden, 3, c=30.0)
    # s = sigmoid(0 z + 30) is exactly 1.0 in float32 (e^-30 < half an ulp of 1).
    p = nm.unpack(g_nm)
    z = np.random.default_rng(0).uniform(-1, 1, (3, 8)).astype(F32)
    assert (sigmoid(linear(p["A"], z, p["c"])) == 1.0).all()
    res_lr, ys_lr = traced(lr, g_lr, ts, monkeypatch, repeats=2, seed=3, batch=10**6)
    res_nm, ys_nm = traced(nm, g_nm, ts, monkeypatch, repeats=2, seed=3, batch=10**6)
    assert res_lr.reached.any() and not res_lr.reached.all()
    assert len(ys_lr) == len(ys_nm)
    for a, b in zip(ys_lr, ys_nm):
        assert np.array_equal(a, b)
    for f in ("returns", "reached", "steps"):
        np.testing.assert_array_equal(getattr(res_nm, f), getattr(res_lr, f))
    # Fitness differs only by the RMS term of the longer genome (method §2).
    rms = lambda g: np.sqrt((g.astype(np.float64) ** 2).mean(1))  # noqa: E731
    np.testing.assert_allclose(res_nm.fitness - res_lr.fitness, -1e-6 * (rms(g_nm) - rms(g_lr)),
                               rtol=0, atol=1e-15)


def test_nm_rnn_gains_change_behaviour(monkeypatch) -> None:
    """The comparison above can fail: with c = 0 (s ~ 0.5) the same genes act differently."""
    ts = tasklib.generate(3, 9, 0.30, seed=99)
    g_lr, g_nm = paired_genomes(8, 3, c=0.0)
    _, ys_lr = traced(get_model("lr-rnn", 8), g_lr, ts, monkeypatch, repeats=2, seed=3, batch=10**6)
    _, ys_nm = traced(get_model("nm-rnn", 8), g_nm, ts, monkeypatch, repeats=2, seed=3, batch=10**6)
    assert not np.array_equal(ys_lr[1], ys_nm[1])
