"""The model zoo (method §3) and the evaluator's bookkeeping (method §2): known values and invariants.

- genome sizes N_Gene of every model and N_Mem of DecPRNN, straight from method §3's table;
- the flat genome <-> named tensors layout (C-order concatenation in ``param_shapes`` order);
- one and two DecPRNN steps computed by hand (PostDN and unmodulated);
- finished lifetimes (``live`` False) keep their memories;
- fitness = weighted mean of rollout returns - 1e-6 RMS(theta);
- splitting genomes, tasks or batches never changes a number;
- memories are zeroed once per lifetime and carried across rollouts.
"""

from __future__ import annotations

from math import exp, sqrt, tanh

import numpy as np
import pytest

from evoplastic import lifetime
from evoplastic.envs import tasks as tasklib
from evoplastic.envs.tasks import TaskSet
from evoplastic.models import MODEL_IDS, get_model

F32 = np.float32


def sig(z: float) -> float:
    return 1.0 / (1.0 + exp(-z))


def prepared(model, params: dict) -> dict:
    """What the evaluator hands to ``step``: the unpacked tensors, plus the model's own
    ``prepare`` (fused per-batch views) where it has one."""
    prepare = getattr(model, "prepare", None)
    return prepare(params) if prepare is not None else params


# -- genome sizes (method §3 table) ---------------------------------------------------------------

N_GENE = [
    ("dnn", 64, 5125),
    ("meta-dnn", 64, 5509),
    ("meta-rnn", 32, 1701),
    ("meta-rnn", 64, 5445),
    ("meta-lstm", 64, 20805),
    ("prnn", 64, 20613),
    ("prnn-postdn", 64, 20743),
    ("decpdnn", 64, 1281),
    ("decpdnn-predn", 64, 1362),
    ("decpdnn-postdn", 64, 1411),
    ("decprnn", 64, 1217),
    ("decprnn-predn", 64, 1379),  # the reference code's count (the paper lists 1,298)
    ("decprnn-postdn", 64, 1347),
    ("prnn-scratch-et", 64, 1481),  # PRNN(Scratch-ET), PostDN
]


@pytest.mark.parametrize("model_id, hidden, n_gene", N_GENE)
def test_genome_size_matches_spec_table(model_id: str, hidden: int, n_gene: int) -> None:
    model = get_model(model_id, hidden)
    assert model.n_gene == n_gene
    assert sum(int(np.prod(s)) for _, s in model.param_shapes()) == n_gene


def test_models_outside_the_spec_table() -> None:
    assert set(MODEL_IDS) - {m for m, _, _ in N_GENE} == {"prnn-predn", "prnn-et", "nm-rnn", "lr-rnn"}
    # PRNN(PreDN) is not in the table: PRNN plus the two PreDN modulators (2x15+2 and 2x64+2).
    assert get_model("prnn-predn").n_gene == 20613 + 2 * 15 + 2 + 2 * 64 + 2
    # ET = Scratch-ET plus the evolved initial W_h (64 x 64).
    assert get_model("prnn-et").n_gene == 1481 + 64 * 64
    # NM-RNN and LR-RNN: tests/test_nm_rnn.py counts their genes by hand.


def test_decprnn_memory_size() -> None:
    # method §7: 64x64 + 64x15 plastic weights + 64 hidden = 5,120
    for mid in ("decprnn", "decprnn-predn", "decprnn-postdn"):
        assert get_model(mid).n_mem == 5120
    assert get_model("dnn").n_mem == get_model("meta-dnn").n_mem == 0


# -- genome layout -----------------------------------------------------------------------------

@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_pack_unpack_round_trip_is_bit_exact(model_id: str) -> None:
    model = get_model(model_id, 8)
    bits = np.random.default_rng(1).integers(0, 2**32, size=(3, model.n_gene), dtype=np.uint32)
    g = bits.view(F32)  # every bit pattern: -0.0, denormals, inf, NaN payloads
    back = model.pack(model.unpack(g))
    assert back.dtype == F32 and back.shape == g.shape
    assert np.array_equal(back.view(np.uint32), bits)
    single = model.pack(model.unpack(g[1]))  # one genome (N,) unpacks with P = 1
    assert np.array_equal(single.view(np.uint32), bits[1:2])


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_unpack_slices_in_order_and_reshapes_c_order(model_id: str) -> None:
    model = get_model(model_id, 8)
    n = model.n_gene
    g = np.arange(2 * n, dtype=F32).reshape(2, n)  # each value is its own index (exact below 2^24)
    named = model.unpack(g)
    assert list(named) == [name for name, _ in model.param_shapes()]
    at = 0
    for name, shape in model.param_shapes():
        size = int(np.prod(shape))
        assert named[name].shape == (2, *shape)
        for p in range(2):
            expected = (p * n + at + np.arange(size)).reshape(shape)  # C order: last axis fastest
            np.testing.assert_array_equal(named[name][p], expected, err_msg=name)
        at += size
    assert at == n


def test_unpack_and_pack_reject_wrong_input() -> None:
    model = get_model("decprnn-postdn", 8)
    with pytest.raises(ValueError, match="length"):
        model.unpack(np.zeros(model.n_gene + 1, F32))
    named = model.unpack(np.zeros(model.n_gene, F32))
    del named["b"]
    with pytest.raises(ValueError, match="missing"):
        model.pack(named)


# -- DecPRNN, one and two steps by hand (method §3) -----------------------------------------------

H = 2
T1, T2 = tanh(0.5), tanh(-0.25)  # 0.46211715726000974, -0.24491866240370913


def hand_params(modulated: bool) -> dict:
    """Small hand-picked numbers (hidden 2). Only the marked entries of 15-vectors are non-zero."""
    e = lambda **kw: np.array([kw.get(f"i{i}", 0.0) for i in range(15)])  # noqa: E731
    p = {
        "b": [0.5, -0.25],
        "W_o": [[1, 0], [0, 1], [1, 1], [1, -1], [0, 2]], "b_o": [0.1, 0, 0, 0, -0.1],
        # W_h rule: post = h_t (y side), pre = h_{t-1} (x side)
        "h.Ay": [1, 2], "h.Ax": [0.5, -1], "h.By": [1, 0], "h.Bx": [0, 1],
        "h.Cy": [0, 1], "h.Cx": [1, 1], "h.Dy": [1, -1], "h.Dx": [0.5, 0.5],
        # W_x rule: post = h_t, pre = x_t
        "x.Ay": [1, -1], "x.Ax": e(i0=2, i9=1), "x.By": [0.5, 0], "x.Bx": e(i1=1),
        "x.Cy": [0, 2], "x.Cx": e(i9=1), "x.Dy": [1, 1], "x.Dx": e(i14=-1),
    }
    if modulated:
        p["m.W"], p["m.b"] = [[2, 0], [0, -1]], [0, 1]  # m = sigmoid(W_m h_t + b_m)
    return {k: np.asarray(v, F32)[None] for k, v in p.items()}


def run_two_steps(model_id: str):
    model = get_model(model_id, H)
    genome = model.pack(hand_params(model_id.endswith("postdn")))
    params = prepared(model, model.unpack(genome))  # B = 1, through the genome layout
    mem = model.init_memory(1, params)
    x1 = np.zeros((1, 15), F32)
    x1[0, 0], x1[0, 9] = 1, 1  # an observation value and the one-hot of action 0
    x2 = np.zeros((1, 15), F32)
    x2[0, 0], x2[0, 10] = 1, 1
    y1 = model.step(params, mem, x1)
    after1 = model.memory_state(params, mem)
    y2 = model.step(params, mem, x2)
    mem = model.memory_state(params, mem)
    # Memory layout (DecPRNN docstring): W = [W_h | W_x], (1, H, H + 15), and h (1, H).
    return y1[0], after1, y2[0], mem


def test_decprnn_postdn_two_steps_by_hand() -> None:
    y1, mem1, y2, mem2 = run_two_steps("decprnn-postdn")
    # Step 1. Memories are zero, so h_1 = tanh(0 + 0 + b) = (tanh 0.5, tanh -0.25).
    np.testing.assert_allclose(mem1["h"][0], [0.46211715726000974, -0.24491866240370913], rtol=1e-6)
    # y_1 = W_o h_1 + b_o with the weights before the update (zero), i.e. from h_1 above:
    # (t1 + 0.1, t2, t1 + t2, t1 - t2, 2 t2 - 0.1)
    np.testing.assert_allclose(y1, [0.5621171572600098, -0.24491866240370913, 0.2171984948563006,
                                    0.7070358196637189, -0.5898373248074182], rtol=1e-6)
    # m = sigmoid(W_m h_1 + b_m) = (sigmoid(2 t1), sigmoid(1 - t2)) = (0.71590409, 0.77641902)
    m0, m1 = 0.7159040902975481, 0.7764190180520172
    # W_h: pre = h_0 = 0, so only B and D: (B_y*h_1) B_x^T = [[0, t1], [0, 0]],
    # D_y D_x^T = [[0.5, 0.5], [-0.5, -0.5]]; W_h = 0.2 m0 [[0.5, t1 + 0.5], [-0.5, -0.5]]
    w_h1 = [[0.07159040902975482, 0.1377567216455781], [-0.07159040902975482, -0.07159040902975482]]
    # W_x: A: (A_y*h_1)(A_x*x_1)^T = [t1, -t2] x (2 at 0, 1 at 9); B: (0.5 t1, 0) x e_1;
    # C: (0, 2) x e_9; D: (1, 1) x (-e_14). Row 0: {0: 2 t1, 1: 0.5 t1, 9: t1, 14: -1},
    # row 1: {0: -2 t2, 9: -t2 + 2, 14: -1}; times 0.2 m1.
    w_x1 = np.zeros((2, 15))
    w_x1[0, [0, 1, 9, 14]] = [0.14351861978592256, 0.03587965494648064, 0.07175930989296128, -0.15528380361040345]
    w_x1[1, [0, 9, 14]] = [0.07606380294644054, 0.3485995086940271, -0.15528380361040345]
    np.testing.assert_allclose(mem1["W"][0, :, :H], w_h1, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(mem1["W"][0, :, H:], w_x1, rtol=1e-6, atol=1e-8)
    assert not mem1["W"][0, :, H:][w_x1 == 0].any()  # untouched entries stay exactly 0

    # Step 2, x_2 = e_0 + e_10. W_x x_2 = W_x[:, 0]; a_2 = W_h h_1 + W_x x_2 + b:
    # a_2[0] = 0.07159041 t1 + 0.13775672 t2 + 0.14351862 + 0.5 = 0.64286258
    # a_2[1] = -0.07159041 t1 - 0.07159041 t2 + 0.07606380 - 0.25 = -0.18948553
    h2 = np.array([tanh(0.6428625840912792), tanh(-0.18948552614096914)])  # (0.56684550, -0.18724982)
    np.testing.assert_allclose(mem2["h"][0], h2, rtol=1e-6)
    # y_2 from h_2, computed with the step-1 weights:
    np.testing.assert_allclose(y2, [0.6668455013654354, -0.18724981860947248, 0.37959568275596295,
                                    0.7540953199749079, -0.47449963721894495], rtol=1e-6)
    # W_h += 0.2 m0' Dec(post = h_2, pre = h_1), m0' = sigmoid(2 h_2[0]); entry by entry
    # Dec[i, j] = Ay_i h2_i Ax_j h1_j + By_i h2_i Bx_j + Cy_i Cx_j h1_j + Dy_i Dx_j:
    a, c = h2
    dec_h = np.array([
        [1 * a * 0.5 * T1 + 0 + 0 + 0.5, 1 * a * -1 * T2 + a * 1 + 0 + 0.5],
        [2 * c * 0.5 * T1 + 0 + 1 * T1 - 0.5, 2 * c * -1 * T2 + 0 + 1 * T2 - 0.5],
    ])
    np.testing.assert_allclose(mem2["W"][0, :, :H], np.array(w_h1) + 0.2 * sig(2 * a) * dec_h, rtol=1e-6)
    # The same update with post and pre exchanged would be visibly different here:
    swapped = np.array([[T1 * 0.5 * a + 0.5, T1 * -1 * c + T1 + 0.5],
                        [2 * T2 * 0.5 * a + a - 0.5, 2 * T2 * -1 * c + c - 0.5]])
    assert np.abs(0.2 * sig(2 * a) * (swapped - dec_h)).max() > 0.01  # (0.024)


def test_decprnn_unmodulated_two_steps_by_hand() -> None:
    y1, mem1, y2, mem2 = run_two_steps("decprnn")
    np.testing.assert_allclose(mem1["h"][0], [T1, T2], rtol=1e-6)
    np.testing.assert_allclose(y1, [0.5621171572600098, -0.24491866240370913, 0.2171984948563006,
                                    0.7070358196637189, -0.5898373248074182], rtol=1e-6)
    # No modulation: W += Dec, without the 0.2 factor.
    w_h1 = np.array([[0.5, T1 + 0.5], [-0.5, -0.5]])  # [[0.5, 0.96211716], [-0.5, -0.5]]
    w_x1 = np.zeros((2, 15))
    w_x1[0, [0, 1, 9, 14]] = [2 * T1, 0.5 * T1, T1, -1]  # 0.92423431, 0.23105858, 0.46211716, -1
    w_x1[1, [0, 9, 14]] = [-2 * T2, 2 - T2, -1]  # 0.48983732, 2.24491866, -1
    np.testing.assert_allclose(mem1["W"][0, :, :H], w_h1, rtol=1e-6)
    np.testing.assert_allclose(mem1["W"][0, :, H:], w_x1, rtol=1e-6, atol=1e-8)
    # Step 2: a_2[0] = 0.5 t1 + (t1 + 0.5) t2 + 2 t1 + 0.5 = 1.41965245
    #         a_2[1] = -0.5 t1 - 0.5 t2 - 2 t2 - 0.25 = 0.13123808
    a2 = np.array([0.5 * T1 + (T1 + 0.5) * T2 + 2 * T1 + 0.5, -0.5 * T1 - 0.5 * T2 - 2 * T2 - 0.25])
    np.testing.assert_allclose(a2, [1.4196524459182438, 0.13123807737926796], rtol=1e-12)
    a, c = np.tanh(a2)
    np.testing.assert_allclose(mem2["h"][0], [a, c], rtol=1e-6)
    np.testing.assert_allclose(y2, [a + 0.1, c, a + c, a - c, 2 * c - 0.1], rtol=1e-6)
    dec_h = np.array([
        [a * 0.5 * T1 + 0.5, a * -1 * T2 + a + 0.5],
        [2 * c * 0.5 * T1 + T1 - 0.5, 2 * c * -1 * T2 + T2 - 0.5],
    ])
    np.testing.assert_allclose(mem2["W"][0, :, :H], w_h1 + dec_h, rtol=1e-6)


# Structure masks (models/masked.py) on a few models: the batch invariants below hold for them too.
SOME_MASKED = ("decprnn-postdn+mask", "prnn-scratch-et+mask", "meta-lstm+mask", "nm-rnn+mask")


# -- finished lifetimes keep their memories ----------------------------------------------------

@pytest.mark.parametrize("model_id", MODEL_IDS + SOME_MASKED)
def test_step_leaves_finished_lifetimes_unchanged(model_id: str) -> None:
    model = get_model(model_id, 8)
    gen = np.random.default_rng(3)
    genomes = (gen.standard_normal((3, model.n_gene)) * 0.3).astype(F32)
    params = prepared(model, model.unpack(genomes))
    mem = model.init_memory(3, params)
    for _ in range(3):  # make every memory non-zero
        model.step(params, mem, gen.standard_normal((3, 15)).astype(F32))
    x = gen.standard_normal((3, 15)).astype(F32)
    before = model.memory_state(params, mem)
    pending = {k: v.copy() for k, v in mem.items()}  # as the evaluator holds them
    live = np.array([True, False, True])
    y = model.step(params, mem, x, live)
    mem = model.memory_state(params, mem)
    assert set(mem) == set(before) == set(model.memory_shapes())
    for k in mem:
        assert before[k][1].any(), k
        assert np.array_equal(mem[k][1], before[k][1]), f"{k} of a finished lifetime changed"
        assert not np.array_equal(mem[k][0], before[k][0]), f"{k} of a live lifetime did not change"
    # Live rows: exactly what an unmasked step gives.
    ref = pending
    y_ref = model.step(params, ref, x)
    ref = model.memory_state(params, ref)
    np.testing.assert_array_equal(y[live], y_ref[live])
    for k in mem:
        np.testing.assert_array_equal(mem[k][live], ref[k][live])


# -- fitness (method §2) --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tasks9():
    return tasklib.generate(4, 9, 0.30, seed=777)


def genomes_for(model_id: str, count: int, hidden: int = 8, scale: float = 0.05) -> np.ndarray:
    n = get_model(model_id, hidden).n_gene
    seed = MODEL_IDS.index(model_id.removesuffix("+mask")) + (100 if model_id.endswith("+mask") else 0)
    return (np.random.default_rng(seed).standard_normal((count, n)) * scale).astype(F32)


def test_fitness_is_weighted_return_minus_rms(tasks9) -> None:
    model = get_model("decprnn-postdn", 8)
    genomes = genomes_for("decprnn-postdn", 3)
    genomes[2] *= 40  # RMS ~2: a fitness term of ~2e-6
    weights = (0.5, 0.25, 1.0)
    res = lifetime.evaluate(model, genomes, tasks9, repeats=2, rollouts=3, weights=weights, seed=5)
    assert res.returns.shape == (3, 8, 3)
    np.testing.assert_array_equal(res.weights, weights)
    # Returns are 1 - 0.01 k at the goal after k actions, else -2.0 (method §1).
    np.testing.assert_allclose(res.returns, np.where(res.reached, 1.0, 0.0) - 0.01 * res.steps, atol=1e-12)
    assert ((res.steps == 200) | res.reached).all()
    assert res.reached.any() and not res.reached.all()
    for p in range(3):
        theta = genomes[p].astype(np.float64)
        rms = sqrt(sum(v * v for v in theta) / len(theta))
        lifetimes = [(0.5 * r[0] + 0.25 * r[1] + 1.0 * r[2]) / 1.75 for r in res.returns[p]]
        assert res.fitness[p] == pytest.approx(sum(lifetimes) / 8 - 1e-6 * rms, rel=0, abs=1e-13)
    assert 1e-6 * np.sqrt((genomes[2].astype(np.float64) ** 2).mean()) > 1e-6  # the term is visible


def test_default_rollout_weights_are_specs(tasks9) -> None:
    model = get_model("meta-rnn", 8)
    g = genomes_for("meta-rnn", 1)
    ts = tasks9.head(1)
    res3 = lifetime.evaluate(model, g, ts)  # profile evoplastic: 3 rollouts
    np.testing.assert_array_equal(res3.weights, [0, 0, 1])
    assert res3.fitness[0] == pytest.approx(
        res3.returns[0, 0, 2] - 1e-6 * np.sqrt((g.astype(np.float64) ** 2).mean()), abs=1e-13)
    res8 = lifetime.evaluate(model, g, ts, profile="reference-2022-08")
    np.testing.assert_array_equal(res8.weights, [0, 0, 0.16, 0.22, 0.36, 0.64, 0.8, 1.0])
    assert res8.returns.shape == (1, 1, 8)


# -- splitting never changes a number ----------------------------------------------------------

FIELDS = ("returns", "reached", "steps")


@pytest.mark.parametrize("model_id", ["decprnn-postdn", "prnn-predn", "decpdnn-postdn", "meta-lstm"])
def test_splits_give_identical_results(model_id: str, tasks9) -> None:
    model = get_model(model_id, 8)
    genomes = genomes_for(model_id, 5)
    kw = dict(repeats=2, seed=9)
    full = lifetime.evaluate(model, genomes, tasks9, **kw)
    assert full.reached.any() and not full.reached.all()
    # Genomes [0:2] and [2:5] separately, with their global ids.
    a = lifetime.evaluate(model, genomes[:2], tasks9, genome_ids=np.arange(2), **kw)
    b = lifetime.evaluate(model, genomes[2:], tasks9, genome_ids=np.arange(2, 5), **kw)
    for f in FIELDS + ("fitness",):
        np.testing.assert_array_equal(np.concatenate([getattr(a, f), getattr(b, f)]), getattr(full, f))
    # The ids are what makes this work: without them genome 2 replays genome 0's random numbers.
    b_no_ids = lifetime.evaluate(model, genomes[2:], tasks9, **kw)
    assert not np.array_equal(b_no_ids.steps, full.steps[2:])
    # Tasks [0:1] and [1:4] separately, with their global ids (lifetimes are task-major).
    for lo, hi in ((0, 1), (1, 4)):
        part = TaskSet(tasks9.walls[lo:hi], tasks9.start[lo:hi], tasks9.goal[lo:hi])
        res = lifetime.evaluate(model, genomes, part, task_ids=np.arange(lo, hi), **kw)
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(res, f), getattr(full, f)[:, 2 * lo:2 * hi])
    # Any batch size.
    for batch in (1, 3, 40):
        res = lifetime.evaluate(model, genomes, tasks9, batch=batch, **kw)
        for f in FIELDS + ("fitness",):
            np.testing.assert_array_equal(getattr(res, f), getattr(full, f))


# -- memories: zeroed once per lifetime, carried across rollouts (method §2) ----------------------

@pytest.mark.parametrize("model_id", ["decprnn-postdn", "prnn", "decpdnn-predn", "meta-lstm", "meta-rnn"])
def test_memories_zeroed_once_and_carried_across_rollouts(model_id: str, tasks9, monkeypatch) -> None:
    model = get_model(model_id, 8)
    cls = type(model)
    inits, calls = [], []
    orig_init, orig_step = cls.init_memory, cls.step

    def init_memory(self, batch, params=None):
        inits.append(batch)
        return orig_init(self, batch, params)

    def step(self, p, mem, x, live=None):
        before = {k: v.copy() for k, v in mem.items()}
        y = orig_step(self, p, mem, x, live)
        calls.append((x.copy(), live, before, {k: v.copy() for k, v in mem.items()}))
        return y

    monkeypatch.setattr(cls, "init_memory", init_memory)
    monkeypatch.setattr(cls, "step", step)
    genomes = genomes_for(model_id, 3)
    lifetime.evaluate(model, genomes, tasks9.head(2), repeats=1, rollouts=3, batch=4, engine="lockstep")
    assert inits == [4, 2]  # 6 lifetimes in batches of 4 and 2: one zeroing per batch

    # A rollout starts where no lifetime has a previous reward yet (all inputs 13 are 0);
    # within a rollout live lifetimes see -0.01.
    starts = [i for i, (x, live, _, _) in enumerate(calls) if not x[:, 13].any()]
    assert len(starts) == 2 * 3
    for n, i in enumerate(starts):
        x, live, before, _ = calls[i]
        assert live is None  # every agent is back at its start cell
        if n % 3 == 0:  # first rollout of a batch: fresh zero memories
            assert all(not v.any() for v in before.values())
        else:  # later rollouts: exactly the memories the previous step left
            prev_after = calls[i - 1][3]
            for k in before:
                assert before[k].any(), f"{k} was reset between rollouts"
                assert np.array_equal(before[k], prev_after[k])


# -- compaction: finished lifetimes leave the network's batch ----------------------------------

@pytest.mark.parametrize("model_id", MODEL_IDS + SOME_MASKED)
def test_compaction_changes_no_number(model_id: str, tasks9, monkeypatch) -> None:
    """Running the network only on live rows (after enough lifetimes finished) gives exactly
    the results of masking them, across rollouts (memories written back and gathered again)."""
    model = get_model(model_id, 8)
    genomes = genomes_for(model_id, 3, scale=0.3)
    kw = dict(repeats=3, seed=4, engine="lockstep")
    monkeypatch.setattr(lifetime, "COMPACT_MIN", 10**9)
    masked = lifetime.evaluate(model, genomes, tasks9, **kw)
    sizes = []
    orig = type(model).step

    def step(self, p, mem, x, live=None):
        sizes.append(len(x))
        return orig(self, p, mem, x, live)

    monkeypatch.setattr(lifetime, "COMPACT_MIN", 1)
    monkeypatch.setattr(lifetime, "COMPACT_FRACTION", 0.0)  # compact whenever one finished
    monkeypatch.setattr(type(model), "step", step)
    compact = lifetime.evaluate(model, genomes, tasks9, **kw)
    assert min(sizes) < max(sizes) == 3 * len(tasks9) * 3, "the batch was never compacted"
    assert masked.reached.any() and not masked.reached.all()
    for f in FIELDS + ("fitness",):
        np.testing.assert_array_equal(getattr(compact, f), getattr(masked, f))
