"""Structure masks (issue 7 part 2, models/masked.py): one gene per hidden unit, active where > 0.

- the genome is the inner model's plus ``mask`` (H,) at the end; round trip, counts;
- all units active == the unmasked model, bit for bit over whole lifetimes;
- masked units output 0: their hidden state stays 0 and their outgoing weights change nothing;
- feed-forward models and unknown suffixes are refused with a clear message.

The per-lifetime oracle of masked models is in tests/test_lifetime_reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from evoplastic import lifetime
from evoplastic.envs import tasks as tasklib
from evoplastic.models import MASKABLE_IDS, MODEL_IDS, get_model

F32 = np.float32
FEED_FORWARD = ("decpdnn", "decpdnn-predn", "decpdnn-postdn", "meta-dnn", "dnn")


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
    # N_Gene + 64 mask genes; N_Mem unchanged (SPEC 3 table: DecPRNN(PostDN) 1,347 and 5,120).
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

def traced(model, genomes, ts, monkeypatch, **kw):
    ys, orig = [], type(model).step

    def step(self, p, mem, x, live=None):
        y = orig(self, p, mem, x, live)
        ys.append(y.copy())
        return y

    with monkeypatch.context() as mp:
        mp.setattr(type(model), "step", step)
        res = lifetime.evaluate(model, genomes, ts, repeats=2, seed=5, **kw)
    return res, ys


@pytest.mark.parametrize("model_id", MASKABLE_IDS)
def test_all_active_mask_is_the_unmasked_model(model_id: str, tasks9, monkeypatch) -> None:
    g = inner_genomes(model_id, 3)
    masked = with_mask(g, np.linspace(1e-6, 2.0, 8))  # all > 0
    ref, ys_ref = traced(get_model(model_id, 8), g, tasks9, monkeypatch, rms_lambda=0.0)
    res, ys = traced(get_model(model_id + "+mask", 8), masked, tasks9, monkeypatch, rms_lambda=0.0)
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
    gi, gi_other = inner.pack({k: v for k, v in named.items() if k != "mask"}), inner.pack(
        {k: v for k, v in other.items() if k != "mask"})
    pi, qi = [inner.prepare(inner.unpack(a)) if hasattr(inner, "prepare") else inner.unpack(a)
              for a in (gi, gi_other)]
    x = gen.standard_normal((2, 15)).astype(F32)
    assert not np.array_equal(inner.step(pi, inner.init_memory(2, pi), x), inner.step(qi, inner.init_memory(2, qi), x))
