"""The fused engine (evoplastic/fused.py) against the lock-step engine, and a lifetime's numbers
against its batch-mates: every discrete outcome and every float of the final memories, bit for bit.

Genomes are drawn large (std 0.3 instead of the paper's 0.05) so that lifetimes reach goals, time
out, and learn between rollouts; the continuous state (the final plastic weights and hidden state
of every lifetime, ``evaluate(..., memory=True)``) is compared, not only the discrete outcomes,
which would hide rare differences.
"""

import numpy as np
import pytest

from evoplastic import fused, lifetime
from evoplastic.envs import tasks as tasklib
from evoplastic.models import get_model
from evoplastic.models import kernels as K

pytestmark = pytest.mark.skipif(not K.HAVE_NUMBA, reason="the fused engine needs numba")
F32 = np.float32
FIELDS = ("steps", "reached", "returns", "fitness")


@pytest.fixture(scope="module")
def tasks9():
    return tasklib.generate(6, 9, 0.30, seed=77)


def genomes(model_id: str, hidden: int, count: int = 3, std: float = 0.3) -> np.ndarray:
    model = get_model(model_id, hidden)
    return (std * np.random.default_rng(len(model_id) + hidden).standard_normal((count, model.n_gene))).astype(F32)


def assert_same(a: lifetime.LifetimeResult, b: lifetime.LifetimeResult) -> None:
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert a.agent_steps == b.agent_steps
    if a.memory is not None and b.memory is not None:
        assert sorted(a.memory) == sorted(b.memory)
        for k in a.memory:
            np.testing.assert_array_equal(a.memory[k], b.memory[k], err_msg=f"memory {k}")


def run(model_id, hidden, ts, engine, **kw):
    g = kw.pop("g", None)
    g = genomes(model_id, hidden) if g is None else g
    return lifetime.evaluate(get_model(model_id, hidden), g, ts, repeats=kw.pop("repeats", 2), seed=5,
                             engine=engine, memory=True, **kw)


@pytest.mark.parametrize("profile", ["evoplastic", "reference-2022-08"])
@pytest.mark.parametrize("model_id", fused.COVERED)
def test_fused_equals_lockstep_hidden8(model_id: str, profile: str, tasks9, monkeypatch) -> None:
    ref = run(model_id, 8, tasks9, "fused", profile=profile)
    assert ref.meta["engine"] == "fused"
    assert ref.reached.any() and (~ref.reached).any(), "goals and timeouts must both occur"
    assert_same(run(model_id, 8, tasks9, "lockstep", profile=profile), ref)
    assert_same(run(model_id, 8, tasks9, "lockstep", profile=profile, batch=5), ref)
    monkeypatch.setattr(lifetime, "COMPACT_MIN", 1)
    monkeypatch.setattr(lifetime, "COMPACT_FRACTION", 0.0)  # compact whenever one lifetime finished
    assert_same(run(model_id, 8, tasks9, "lockstep", profile=profile, batch=7), ref)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["evoplastic", "reference-2022-08"])
@pytest.mark.parametrize("model_id", fused.COVERED)
def test_fused_equals_lockstep_hidden64(model_id: str, profile: str, tasks9, monkeypatch) -> None:
    g = genomes(model_id, 64, std=0.05)  # the paper's initial spread: hidden 64 at 0.3 saturates
    ref = run(model_id, 64, tasks9, "fused", g=g, profile=profile)
    assert_same(run(model_id, 64, tasks9, "lockstep", g=g, profile=profile), ref)
    monkeypatch.setattr(lifetime, "COMPACT_MIN", 1)
    monkeypatch.setattr(lifetime, "COMPACT_FRACTION", 0.0)
    assert_same(run(model_id, 64, tasks9, "lockstep", g=g, batch=11, profile=profile), ref)


@pytest.mark.parametrize("model_id", ["decprnn-postdn", "decpdnn-predn", "decprnn-predn+mask"])
def test_a_lifetime_does_not_depend_on_its_batch_mates(model_id: str, tasks9, monkeypatch) -> None:
    """Any slice of genomes and tasks, evaluated elsewhere with its global ids, gives the full
    evaluation's numbers for those lifetimes, continuous state included, in both engines and
    under compaction (issue: a lifetime's 200 vs 171 steps depended on which genomes shared its
    batch)."""
    model = get_model(model_id, 16)
    g = genomes(model_id, 16, count=6)
    full = lifetime.evaluate(model, g, tasks9, repeats=2, seed=9, engine="fused", memory=True)
    monkeypatch.setattr(lifetime, "COMPACT_MIN", 1)
    monkeypatch.setattr(lifetime, "COMPACT_FRACTION", 0.3)
    for g0, g1, t0, t1, engine, batch in ((0, 1, 0, 6, "lockstep", 1), (2, 5, 1, 4, "lockstep", 256),
                                          (3, 6, 0, 6, "lockstep", 5), (1, 4, 2, 6, "fused", 256)):
        part = lifetime.evaluate(model, g[g0:g1], tasks9.head(t1).__class__(
            tasks9.walls[t0:t1], tasks9.start[t0:t1], tasks9.goal[t0:t1]), repeats=2, seed=9,
            genome_ids=np.arange(g0, g1), task_ids=np.arange(t0, t1), engine=engine, batch=batch, memory=True)
        cols = slice(t0 * 2, t1 * 2)
        for f in ("steps", "reached", "returns"):
            np.testing.assert_array_equal(getattr(part, f), getattr(full, f)[g0:g1, cols], err_msg=f)
        for k in full.memory:
            np.testing.assert_array_equal(part.memory[k], full.memory[k][g0:g1, cols], err_msg=k)


def test_engine_choice_and_errors(tasks9) -> None:
    g = genomes("prnn-et", 8, count=1)
    res = lifetime.evaluate(get_model("prnn-et", 8), g, tasks9.head(1), engine="auto")
    assert res.meta["engine"] == "lockstep"  # not covered: auto falls back
    with pytest.raises(ValueError, match="engine 'fused' cannot run prnn-et"):
        lifetime.evaluate(get_model("prnn-et", 8), g, tasks9.head(1), engine="fused")
    with pytest.raises(ValueError, match="engine must be one of"):
        lifetime.EvalSpec("decprnn", 8, engine="turbo")
    seen = []
    res = lifetime.evaluate(get_model("decprnn", 8), genomes("decprnn", 8, 1), tasks9.head(1),
                            on_step=lambda lives, r, maze: seen.append(r))
    assert res.meta["engine"] == "lockstep" and seen  # tracing runs on the lock-step engine


def test_no_numba_numpy_path_runs_and_agrees_to_rounding(tmp_path) -> None:
    """EVOPLASTIC_NO_NUMBA=1: the lock-step numpy path (unfused multiply-adds) in a fresh process."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, numpy as np; from evoplastic import lifetime, fused; "
            "from evoplastic.envs import tasks as T; from evoplastic.models import get_model; "
            "m = get_model('decprnn-postdn', 8); ts = T.generate(6, 9, 0.30, seed=77); "
            "g = (0.05 * np.random.default_rng(1).standard_normal((2, m.n_gene))).astype(np.float32); "
            "r = lifetime.evaluate(m, g, ts, repeats=2, seed=5); "
            "print(json.dumps([r.meta['engine'], fused.K.HAVE_NUMBA, r.steps.tolist()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "EVOPLASTIC_NO_NUMBA": "1"}, timeout=300)
    engine, have, steps = json.loads(out.stdout)
    assert engine == "lockstep" and have is False
    m = get_model("decprnn-postdn", 8)
    g = (0.05 * np.random.default_rng(1).standard_normal((2, m.n_gene))).astype(F32)
    ref = lifetime.evaluate(m, g, tasklib.generate(6, 9, 0.30, seed=77), repeats=2, seed=5)
    # the same lifetimes up to float32 rounding: at the paper's initial spread, the same steps
    assert np.array_equal(np.array(steps), ref.steps)


@pytest.mark.slow
def test_published_genome_same_on_both_engines() -> None:
    """A trained genome (the paper's) under the reference profile: 8 rollouts, 64 of its tasks."""
    from _paperfiles import paper_file

    from evoplastic import reference

    genome, _ = reference.import_genome(paper_file("paper-genome"), "decprnn-postdn")
    ts = tasklib.load(str(paper_file("paper-maze9"))).head(64)
    model = get_model("decprnn-postdn", 64)
    a = lifetime.evaluate(model, genome[None], ts, profile="reference-2022-08", engine="fused", memory=True)
    b = lifetime.evaluate(model, genome[None], ts, profile="reference-2022-08", engine="lockstep", memory=True)
    assert_same(a, b)
    assert a.reached[:, :, -1].mean() > 0.9  # it is a trained genome: it finds the goal


def test_memories_of_a_modulator_wider_than_the_hidden_layer(tasks9) -> None:
    """NM-RNN with 4 hidden units and its 8 modulatory ones: both engines return z (8,) whole."""
    a = run("nm-rnn", 4, tasks9, "fused")
    assert a.memory["z"].shape[-1] == 8 and a.memory["x"].shape[-1] == 4
    assert_same(run("nm-rnn", 4, tasks9, "lockstep"), a)
