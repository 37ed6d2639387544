"""Structure masks (models/masked.py): one gene per hidden unit, active where > 0.

- the genome is the inner model's plus ``mask`` (H,) at the end; round trip, counts;
- all units active == the unmasked model, bit for bit over whole lifetimes;
- masked units output 0: their hidden state stays 0 and their outgoing weights change nothing;
- feed-forward models and unknown suffixes are refused with a clear message.

The per-lifetime oracle of masked models is in tests/test_lifetime_reference.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evoplastic import lifetime
from evoplastic.envs import tasks as tasklib
from evoplastic.models import MASKABLE_IDS, MODEL_IDS, get_model

from _tracing import traced

F32 = np.float32
FEED_FORWARD = ("decpdnn", "decpdnn-predn", "decpdnn-postdn", "meta-dnn", "dnn")
SMOKE = Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"


@pytest.fixture(scope="module")
def tasks9():
    return tasklib.generate(3, 9, 0.30, seed=31)


def inner_genomes(model_id: str, count: int, hidden: int = 8, scale: float = 0.2) -> np.ndarray:
    n = get_model(model_id, hidden).n_gene
    return (np.random.default_rng(MODEL_IDS.index(model_id)).standard_normal((count, n)) * scale).astype(F32)


def with_mask(genomes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked genomes: the inner genes, then the mask genes (models/masked.py layout)."""
    mask = np.broadcast_to(np.asarray(mask, F32), (len(genomes), np.shape(mask)[-1]))
    return np.concatenate([genomes, mask], axis=1)


def hidden_state(model_id: str) -> str:
    """The memory holding the gated units: NM-RNN/LR-RNN's x, every other model's h."""
    return "x" if model_id.startswith(("nm-rnn", "lr-rnn")) else "h"


# -- ids, layout, counts -----------------------------------------------------------------------

def test_maskable_models_are_the_recurrent_ones() -> None:
    assert set(MASKABLE_IDS) == set(MODEL_IDS) - set(FEED_FORWARD)


@pytest.mark.parametrize("model_id", MASKABLE_IDS)
def test_layout_counts_and_round_trip(model_id: str) -> None:
    inner, model = get_model(model_id, 8), get_model(model_id + "+mask", 8)
    assert model.id == model_id + "+mask"
    assert model.param_shapes() == inner.param_shapes() + [("mask", (8,))]
    assert model.n_gene == inner.n_gene + 8 and model.n_mem == inner.n_mem
    bits = np.random.default_rng(2).integers(0, 2**32, size=(3, model.n_gene), dtype=np.uint32)
    assert np.array_equal(model.pack(model.unpack(bits.view(F32))).view(np.uint32), bits)
    g = np.arange(model.n_gene, dtype=F32)
    np.testing.assert_array_equal(model.unpack(g)["mask"][0], g[-8:])  # the mask genes come last


def test_genome_sizes_at_hidden_64() -> None:
    # N_Gene + 64 mask genes; N_Mem unchanged (method §3 table: DecPRNN(PostDN) 1,347 and 5,120).
    assert get_model("decprnn-postdn+mask").n_gene == 1347 + 64 == 1411
    assert get_model("decprnn-postdn+mask").n_mem == 5120
    assert get_model("nm-rnn+mask").n_gene == 2091 + 64 and get_model("lr-rnn+mask").n_gene == 1862 + 64


@pytest.mark.parametrize("model_id", FEED_FORWARD)
def test_feed_forward_models_refuse_masks(model_id: str) -> None:
    with pytest.raises(ValueError, match=rf"'{model_id}\+mask': a structure mask gates the hidden units "
                                         rf"of a recurrent model and {model_id} is feed-forward"):
        get_model(model_id + "+mask")


def test_bad_suffixes_and_ids_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown model suffix '\+masked'.*the only suffix is '\+mask'"):
        get_model("meta-rnn+masked")
    with pytest.raises(ValueError, match=r"unknown model suffix '\+mask\+mask'"):
        get_model("meta-rnn+mask+mask")
    with pytest.raises(ValueError, match=r"unknown model 'decprnn-postd' \(did you mean 'decprnn-postdn'\?\)"):
        get_model("decprnn-postd+mask")


def test_active_fraction() -> None:
    model = get_model("meta-rnn+mask", 4)
    g = with_mask(np.zeros((3, get_model("meta-rnn", 4).n_gene), F32),
                  np.array([[1, 1, 1, 1], [1, -1, 0.5, 0], [-1, -2, -0.0, 0]], F32))
    np.testing.assert_array_equal(model.active_fraction(g), [1.0, 0.5, 0.0])  # active: gene > 0
    assert get_model("meta-rnn", 4).active_fraction(g[:, :-4]) is None  # no mask, no fraction


# -- all active == unmasked --------------------------------------------------------------------



@pytest.mark.parametrize("model_id", MASKABLE_IDS)
def test_all_active_mask_is_the_unmasked_model(model_id: str, tasks9, monkeypatch) -> None:
    g = inner_genomes(model_id, 3)
    masked = with_mask(g, np.linspace(1e-6, 2.0, 8))  # all > 0
    ref, ys_ref = traced(get_model(model_id, 8), g, tasks9, monkeypatch, repeats=2, seed=5, rms_lambda=0.0)
    res, ys = traced(get_model(model_id + "+mask", 8), masked, tasks9, monkeypatch, repeats=2, seed=5, rms_lambda=0.0)
    assert len(ys) == len(ys_ref) and all(np.array_equal(a, b) for a, b in zip(ys, ys_ref))
    for f in ("returns", "reached", "steps", "fitness"):
        np.testing.assert_array_equal(getattr(res, f), getattr(ref, f))


# -- masked units output 0 ---------------------------------------------------------------------

@pytest.mark.parametrize("model_id", MASKABLE_IDS)
def test_masked_units_stay_zero_and_drive_nothing(model_id: str) -> None:
    """Over 60 steps of random inputs: the masked units' hidden state is exactly 0 at every step,
    the active units' is not, and the masked units' output weights (W_o columns) change nothing."""
    model = get_model(model_id + "+mask", 8)
    mask = np.array([1, -1, 1, -1, -1, 1, 1, -1], F32)  # units 1, 3, 4, 7 masked
    off = mask <= 0
    g = with_mask(inner_genomes(model_id, 2, scale=0.5), mask)
    named = model.unpack(g)
    other = {k: v.copy() for k, v in named.items()}
    other["W_o"][:, :, off] = 7.0  # what a masked unit would send to the outputs
    p, q = model.prepare(named), model.prepare(other)
    mem, mem_q = model.init_memory(2, p), model.init_memory(2, q)
    gen = np.random.default_rng(0)
    key = hidden_state(model_id)
    for _ in range(60):
        x = gen.standard_normal((2, 15)).astype(F32)
        y, y_q = model.step(p, mem, x), model.step(q, mem_q, x)
        np.testing.assert_array_equal(y, y_q)
        state = model.memory_state(p, mem)
        assert (state[key][:, off] == 0).all()
        assert (state[key][:, ~off] != 0).all()
        if "c" in state:  # Meta-LSTM: no cell state either
            assert (state["c"][:, off] == 0).all()
    # Without the mask the same inputs do reach those weights (the check above can fail).
    inner = get_model(model_id, 8)
    x = gen.standard_normal((2, 15)).astype(F32)
    ys = []
    for tensors in (named, other):
        pi = {k: v for k, v in tensors.items() if k != "mask"}
        pi = inner.prepare(pi) if hasattr(inner, "prepare") else pi
        ys.append(inner.step(pi, inner.init_memory(2, pi), x))
    assert not np.array_equal(*ys)


# -- the frugality cost (method §2 fitness) ----------------------------------------------

def rms(g: np.ndarray) -> np.ndarray:
    return np.sqrt((g.astype(np.float64) ** 2).mean(1))


@pytest.mark.parametrize("mask, fraction", [(np.full(8, 0.5), 1.0),
                                            (np.array([1, -1, 1, -1, 0, 0.1, -0.1, 2]), 0.5)])
def test_frugality_is_paid_once(mask, fraction, tasks9) -> None:
    inner = get_model("decprnn-postdn", 8)
    model = get_model("decprnn-postdn+mask", 8)
    g = inner_genomes("decprnn-postdn", 3)
    gm = with_mask(g, mask)
    free = lifetime.evaluate(model, gm, tasks9, repeats=2, seed=5)
    paid = lifetime.evaluate(model, gm, tasks9, repeats=2, seed=5, frugality=0.05)
    np.testing.assert_array_equal(free.active_fraction, fraction)
    np.testing.assert_array_equal(paid.active_fraction, fraction)
    for f in ("returns", "reached", "steps"):
        np.testing.assert_array_equal(getattr(paid, f), getattr(free, f))
    # fitness(0.05) = fitness(0) - 0.05 * active fraction: 0.05 for all active, 0.025 for half.
    np.testing.assert_allclose(free.fitness - paid.fitness, 0.05 * fraction, rtol=0, atol=1e-15)
    assert paid.summary(0)["active_fraction"] == fraction and paid.meta["frugality"] == 0.05
    if fraction == 1.0:
        # All active: the unmasked model's fitness, but for the RMS term of the 8 extra genes.
        ref = lifetime.evaluate(inner, g, tasks9, repeats=2, seed=5)
        for f in ("returns", "reached", "steps"):
            np.testing.assert_array_equal(getattr(free, f), getattr(ref, f))
        np.testing.assert_allclose(free.fitness - ref.fitness, -1e-6 * (rms(gm) - rms(g)), rtol=0, atol=1e-15)
        assert ref.active_fraction is None and "active_fraction" not in ref.summary(0)


def test_runner_pays_frugality_once(tasks9) -> None:
    """The training path: units on slices of genomes and tasks, fitness assembled by the runner."""
    from evoplastic import runner

    model = get_model("nm-rnn+mask", 8)
    g = with_mask(inner_genomes("nm-rnn", 5), np.random.default_rng(4).standard_normal((5, 8)))
    spec = runner.EvalSpec("nm-rnn+mask", 8, frugality=0.05)
    res = runner.InProcessBackend(spec, chunks_per_worker=7).evaluate(g, tasks9, 2, 5)
    ref = lifetime.evaluate(model, g, tasks9, repeats=2, seed=5, frugality=0.05)
    np.testing.assert_array_equal(res.fitness, ref.fitness)
    np.testing.assert_array_equal(res.active_fraction, model.active_fraction(g))
    free_spec = runner.EvalSpec("nm-rnn+mask", 8)
    free = runner.InProcessBackend(free_spec, chunks_per_worker=7).evaluate(g, tasks9, 2, 5)
    np.testing.assert_allclose(free.fitness - res.fitness, 0.05 * model.active_fraction(g), rtol=0, atol=1e-15)


def test_frugality_needs_a_mask(tasks9) -> None:
    g = inner_genomes("meta-rnn", 1)
    with pytest.raises(ValueError, match=r"needs a model with a structure mask; meta-rnn has none "
                                         r"\(use meta-rnn\+mask\)"):
        lifetime.evaluate(get_model("meta-rnn", 8), g, tasks9, frugality=0.05)
    with pytest.raises(ValueError, match="needs a model with a structure mask"):
        lifetime.fitness_of(np.zeros((1, 1, 3)), np.ones(3), g, frugality=0.05)
    # Frugality 0 (the default) is no cost at all, with or without a mask.
    np.testing.assert_array_equal(lifetime.fitness_of(np.zeros((1, 1, 3)), np.ones(3), g, frugality=0.0),
                                  lifetime.fitness_of(np.zeros((1, 1, 3)), np.ones(3), g))


# -- configuration and training ----------------------------------------------------------------

def test_config_checks_masks_and_frugality() -> None:
    from evoplastic import config as cfglib

    smoke = SMOKE
    cfg = cfglib.load(smoke, ["model.id=decprnn-postdn+mask", "model.frugality=0.05"])
    assert cfg.model.id == "decprnn-postdn+mask" and cfg.model.frugality == 0.05
    for overrides, message in (
        (["model.frugality=0.05"], r"model\.frugality: a frugality cost needs a model with a structure mask"),
        (["model.id=decpdnn+mask"], r"model\.id: 'decpdnn\+mask': .* decpdnn is feed-forward"),
        (["model.id=meta-rnn+mask", "model.frugality=-0.1"], r"model\.frugality: must be >= 0"),
        (["model.id=decprnn-postd+mask"], r"model\.id: unknown id 'decprnn-postd'; did you mean 'decprnn-postdn'\?"),
    ):
        with pytest.raises(cfglib.ConfigError, match=r"^\S*smoke\.yaml: " + message):
            cfglib.load(smoke, overrides)
    # Runs written before model.frugality existed keep their config hash (so they still resume).
    assert cfglib.load(smoke).science_hash() == "6f6d27a01ae59439"
    assert cfglib.load(smoke, ["model.id=meta-rnn+mask", "model.frugality=0.05"]).science_hash() != \
        cfglib.load(smoke, ["model.id=meta-rnn+mask"]).science_hash()


def test_training_logs_the_mean_genomes_active_fraction(tmp_path) -> None:
    import csv

    from evoplastic import config as cfglib
    from evoplastic import genome as genome_io
    from evoplastic import train

    fast = ["strategy.popsize=8", "tasks.repeats=1", "validation.count=4", "validation.interval=2",
            "tasks.schedule=[[0, 1]]", "workers.backend=inprocess", "model.hidden=8",
            "strategy.sigma0=0.05"]
    smoke = SMOKE
    cfg = cfglib.load(smoke, fast + ["model.id=lr-rnn+mask", "model.frugality=0.05"])
    t = train.Trainer(cfg, tmp_path / "masked")
    t.start()
    t.run(3)
    t.close()
    rows = list(csv.DictReader(open(tmp_path / "masked" / "metrics.csv")))
    assert [int(r["generation"]) for r in rows] == [0, 1, 2, 3]
    mean, _ = genome_io.load(tmp_path / "masked" / "mean.npz")
    model = get_model("lr-rnn+mask", 8)
    assert float(rows[-1]["active_fraction"]) == model.active_fraction(mean)[0]
    assert all(0.0 <= float(r["active_fraction"]) <= 1.0 for r in rows)
    # Unmasked runs keep their columns.
    cfg = cfglib.load(smoke, fast + ["model.id=lr-rnn"])
    t = train.Trainer(cfg, tmp_path / "plain")
    t.start()
    t.run(1)
    t.close()
    assert "active_fraction" not in (tmp_path / "plain" / "metrics.csv").read_text().splitlines()[0]
