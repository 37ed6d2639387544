"""What the memories hold: recording, decoding, autocorrelation, PCA, the command.

- recorded W and h equal ``Model.memory_state`` when the lifetime is replayed step by step from its
  recorded inputs, and recording changes no result;
- the held-out decoder is at chance on shuffled labels and perfect on a constructed separable case;
- autocorrelation times of white noise (1) and AR(1) with phi 0.8 (5 lags: 0.8^5 < 1/e < 0.8^4);
- PCA: the wide (svds) path equals numpy's full SVD; a line has all its variance on component 1;
- ``evoplastic analyze memory`` on a genome file, and on the paper's genome where it is present.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evoplastic import genome as genome_io
from evoplastic import lifetime
from evoplastic.analysis import memory
from evoplastic.cli import main
from evoplastic.envs import tasks as tasklib
from evoplastic.models import get_model

F32 = np.float32


def genome_for(model, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(model.n_gene) * 0.3).astype(F32)


@pytest.mark.parametrize("model_id", ["decprnn-postdn", "prnn-postdn", "decprnn-postdn+mask"])
def test_recorded_memories_equal_memory_state_along_a_lifetime(model_id: str) -> None:
    model = get_model(model_id, 8)
    g = genome_for(model)
    tasks = tasklib.generate(2, 7, 0.3, seed=1)
    rec = memory.record(model, g, tasks, repeats=2, rollouts=2, seed=4)
    plain = lifetime.evaluate(model, g, tasks, repeats=2, rollouts=2, seed=4)
    assert np.array_equal(rec.returns, plain.returns[0])
    assert np.bincount(rec.lifetime).tolist() == plain.steps[0].sum(1).tolist()
    for life in (0, 3):
        sel = rec.lifetime == life
        assert rec.task[sel][0] == life // 2 and rec.repeat[sel][0] == life % 2
        assert rec.step[sel].tolist() == list(range(sel.sum()))
    # replay lifetime 0 step by step from its recorded inputs: the same memories, to the bit when
    # recorded alone (in a batch of 4, kernels may round differently in the last bits)
    one = memory.record(model, g, tasks.head(1), repeats=1, rollouts=2, seed=4)
    sel = rec.lifetime == 0
    np.testing.assert_allclose(one.W, rec.W[sel], rtol=1e-5, atol=1e-6)
    p = model.prepare(model.unpack(g))
    mem = model.init_memory(1)
    for t, x in enumerate(one.x):
        model.step(p, mem, x[None])
        state = model.memory_state(p, mem)
        assert np.array_equal(one.W[t], state["W"][0].ravel())
        assert np.array_equal(one.h[t], state["h"][0])


def test_models_without_plastic_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="recurrent plastic"):
        memory.plastic_keys(get_model("meta-rnn", 8))
    assert memory.plastic_keys(get_model("prnn-scratch-et", 8)) == ["W_h", "E"]


def separable(classes: int = 8, repeats: int = 40, dims: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), repeats)
    groups = np.tile(np.arange(repeats), classes)
    means = np.eye(classes, dims) * 10  # centres 14 apart, noise 1 per dimension
    return means[labels] + rng.standard_normal((len(labels), dims)), labels, groups


def test_decoding_is_perfect_on_a_separable_case_and_chance_on_shuffled_labels() -> None:
    f, labels, groups = separable()
    assert memory.decode_accuracy(f, labels, groups) == 1.0
    shuffled = np.random.default_rng(1).permutation(labels)
    acc = memory.decode_accuracy(f, shuffled, groups)
    se = np.sqrt(1 / 8 * 7 / 8 / len(labels))
    assert abs(acc - 1 / 8) < 4 * se, acc


def test_autocorrelation_times() -> None:
    rng = np.random.default_rng(0)
    assert memory.autocorrelation_time(rng.standard_normal((5000, 20))) == 1.0
    x = np.zeros((5000, 50))
    e = rng.standard_normal((5000, 50))
    for t in range(1, len(x)):
        x[t] = 0.8 * x[t - 1] + e[t]
    assert memory.autocorrelation_time(x) == 5.0
    assert np.isnan(memory.autocorrelation_time(np.ones((10, 3))))


def test_pca() -> None:
    rng = np.random.default_rng(0)
    t = rng.standard_normal(100)
    line = np.outer(t, [3.0, -4.0])
    scores, ratio = memory.pca(line, 2)
    np.testing.assert_allclose(ratio, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(np.abs(scores[:, 0]), np.abs(5 * (t - t.mean())), rtol=1e-10)
    wide = rng.standard_normal((300, 400)) @ np.diag(np.linspace(3, 0.1, 400))
    s_wide, r_wide = memory.pca(wide, 2)  # the svds path
    xc = wide - wide.mean(0)
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    np.testing.assert_allclose(np.abs(s_wide), np.abs(u[:, :2] * s[:2]), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(r_wide, s[:2] ** 2 / (xc ** 2).sum(), rtol=1e-8)


def test_analyze_memory_command(tmp_path: Path, capsys) -> None:
    model = get_model("decprnn-postdn", 8)
    genome_io.save(tmp_path / "g.npz", genome_for(model), model.id, 8)
    assert main(["analyze", "memory", str(tmp_path / "g.npz"), "--tasks", "maze9", "--count", "3",
                 "--repeats", "2", "--out", str(tmp_path / "out")]) == 0
    stats = json.loads((tmp_path / "out" / "memory.json").read_text())
    assert stats["mazes"] == 3 and stats["lifetimes"] == 6 and abs(stats["chance"] - 1 / 3) < 1e-12
    assert len(stats["decoding"]["W"]) == len(stats["decoding"]["h"]) >= 1
    assert (tmp_path / "out" / "memory.png").stat().st_size > 10_000
    assert "plastic weights W" in capsys.readouterr().out


@pytest.mark.slow
def test_paper_genome_keeps_the_maze_in_w(tmp_path: Path) -> None:
    """The paper's Appendix A.4 finding on its own genome: W decodes the maze far above chance and
    better than h, and W changes slower than h (measured: 0.78 vs 0.39, chance 0.25; 90 vs 3 steps)."""
    from evoplastic import reference

    from _paperfiles import paper_file

    g, _ = reference.import_genome(str(paper_file("paper-genome")), "decprnn-postdn", 64)
    rec = memory.record(get_model("decprnn-postdn"), g, tasklib.load("maze9").head(4), repeats=3,
                        profile="reference-2022-08")
    stats = memory.analyse(rec)
    assert stats["decode_W_mean"] > max(2 * stats["chance"], stats["decode_h_mean"] + 0.2)
    assert stats["autocorr_W_median"] > 5 * stats["autocorr_h_median"]
