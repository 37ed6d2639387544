"""Evolving & Merging: K-means tying, the tied PRNN, `evoplastic merge`.

- a hand-made PRNN genome whose rules form K known clusters is tied back exactly (assignment up to
  renaming, centres to the bit), and the tied model then computes the PRNN's lifetimes exactly;
- the tied model's genome length (N_Gene = DecPRNN's at K = 3 H + 15), pack/unpack, two steps by hand;
- the tying file: checksum, provenance, model ids with ``@FILE``, config paths beside the config;
- merge -> train -> resume -> eval end to end on a tiny run.
"""

from __future__ import annotations

import json
from math import exp, tanh
from pathlib import Path

import numpy as np
import pytest

from evoplastic import config as cfglib
from evoplastic import lifetime
from evoplastic.cli import main
from evoplastic.envs import tasks as tasklib
from evoplastic.merge import kmeans, rule_vectors, tie
from evoplastic.models import get_model
from evoplastic.models.abcd import PRNN
from evoplastic.models.tied import TiedPRNN, Tying, default_k, load_tying

F32 = np.float32
CENTRES = np.array([[1.0, 0.0, -1.0, 0.5], [-2.0, 1.0, 0.0, 0.0], [0.0, 0.25, 3.0, -1.0]])


def hand_made(hidden: int = 4, seed: int = 0) -> tuple[PRNN, np.ndarray, np.ndarray]:
    """A PRNN(PostDN) genome whose rule vectors are exactly the 3 CENTRES: (model, genome, labels)."""
    model = PRNN(hidden, "post")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(hidden * (hidden + 15)) % len(CENTRES)).reshape(hidden, hidden + 15)
    p = {k: v.copy() for k, v in model.unpack(rng.standard_normal(model.n_gene).astype(F32) * 0.5).items()}
    for i, r in enumerate("ABCD"):
        full = CENTRES[labels, i]
        p[f"h.{r}"][0], p[f"x.{r}"][0] = full[:, :hidden], full[:, hidden:]
    return model, model.pack(p)[0], labels


def test_kmeans_ties_a_hand_made_genome_back_exactly() -> None:
    model, genome, labels = hand_made()
    tying = tie(model, genome, k=3, seed=1)
    # the same partition (cluster ids are arbitrary): one-to-one map from found to true ids
    pairs = set(zip(tying.assignment.ravel().tolist(), labels.ravel().tolist()))
    assert len(pairs) == 3 and len({a for a, _ in pairs}) == 3
    perm = dict(pairs)
    for found, true in perm.items():
        assert np.array_equal(tying.centres[found], CENTRES[true].astype(F32))
    assert tying.meta["inertia"] == 0.0 and tying.meta["clusters_used"] == 3
    # the tied genome: centres as rules, every other tensor copied
    tied = TiedPRNN(model.hidden, "post", tying)
    tp, sp = tied.unpack(tying.init_genome), model.unpack(genome)
    assert np.array_equal(tp["rules"][0], tying.centres)
    for name in ("W_o", "b_o", "b", "m.W", "m.b"):
        assert np.array_equal(tp[name], sp[name])
    # gathered rule matrices are the PRNN's, so whole lifetimes agree to the bit
    tasks = tasklib.generate(3, 7, 0.3, seed=2)
    a = lifetime.evaluate(model, genome, tasks, repeats=2, seed=5)
    b = lifetime.evaluate(tied, tying.init_genome, tasks, repeats=2, seed=5)
    assert np.array_equal(a.returns, b.returns) and np.array_equal(a.steps, b.steps)


def test_rule_vectors_follow_the_fused_memory_layout() -> None:
    model, genome, labels = hand_made(hidden=3)
    v = rule_vectors(model, genome)
    assert v.shape == (3 * 18, 4)
    assert np.array_equal(v, CENTRES[labels.ravel()].astype(F32))


def test_kmeans_is_seeded_and_checks_k() -> None:
    x = np.random.default_rng(0).standard_normal((200, 4))
    a, b = kmeans(x, 7, seed=3), kmeans(x, 7, seed=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="clusters"):
        kmeans(x, 201)


@pytest.mark.parametrize("mid, dec", [("prnn-postdn-tied", "decprnn-postdn"), ("prnn-tied", "decprnn"),
                                      ("prnn-predn-tied", "decprnn-predn")])
def test_tied_genome_length_equals_the_decprnn_at_default_k(mid: str, dec: str) -> None:
    assert default_k(64) == 207
    assert get_model(mid).n_gene == get_model(dec).n_gene
    assert get_model("prnn-postdn-tied").n_gene == 1347 == 5 * 64 + 5 + 64 + 4 * 207 + 2 * 64 + 2
    with pytest.raises(ValueError, match="@FILE"):
        get_model(mid).prepare({})


def tiny_tied(hidden: int = 2, k: int = 2) -> tuple[TiedPRNN, np.ndarray]:
    assignment = np.array([[0, 1] + [1] * 15, [1, 0] + [0] * 15], np.int32)[:hidden]
    tying = Tying(assignment, np.zeros((k, 4), F32), np.zeros(0, F32))
    return TiedPRNN(hidden, "post", tying), assignment


def test_tied_pack_unpack_round_trip() -> None:
    model, _ = tiny_tied()
    # W_o 5x2, b_o 5, b 2, rules 2x4, m.W 2x2, m.b 2
    assert [n for n, _ in model.param_shapes()] == ["W_o", "b_o", "b", "rules", "m.W", "m.b"]
    assert model.n_gene == 10 + 5 + 2 + 8 + 4 + 2
    g = np.random.default_rng(1).standard_normal((3, model.n_gene)).astype(F32)
    p = model.unpack(g)
    assert np.array_equal(p["rules"][1].ravel(), g[1, 17:25])
    assert np.array_equal(model.pack(p), g)


def test_two_tied_steps_by_hand() -> None:
    model, assignment = tiny_tied()
    rng = np.random.default_rng(7)
    g = rng.standard_normal(model.n_gene).astype(F32)
    p = model.unpack(g)
    x1, x2 = rng.standard_normal((2, 1, 15)).astype(F32)
    q = model.prepare(p)
    mem = model.init_memory(1)
    y1 = model.step(q, mem, x1)
    y2 = model.step(q, mem, x2)

    P = {k: v[0].astype(np.float64) for k, v in p.items()}
    rules = P["rules"]

    def step(W, h_prev, x):
        pre = list(h_prev) + list(x[0])
        h = [tanh(sum(W[i][j] * pre[j] for j in range(17)) + P["b"][i]) for i in range(2)]
        y = [sum(P["W_o"][o][i] * h[i] for i in range(2)) + P["b_o"][o] for o in range(5)]
        m = [1 / (1 + exp(-(sum(P["m.W"][c][i] * h[i] for i in range(2)) + P["m.b"][c]))) for c in range(2)]
        for i in range(2):
            for j in range(17):
                A, B, C, D = rules[assignment[i][j]]
                mm = m[0] if j < 2 else m[1]  # m[0] modulates W_h, m[1] W_x (method §3)
                W[i][j] += mm * 0.05 * (A * h[i] * pre[j] + B * h[i] + C * pre[j] + D)
        return h, y

    W = [[0.0] * 17 for _ in range(2)]
    h1, e1 = step(W, [0.0, 0.0], x1)
    h2, e2 = step(W, h1, x2)
    np.testing.assert_allclose(y1[0], e1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y2[0], e2, rtol=1e-5, atol=1e-5)
    state = model.memory_state(q, mem)  # (the compiled path keeps W transposed)
    np.testing.assert_allclose(state["W"][0], W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state["h"][0], h2, rtol=1e-5, atol=1e-6)


def test_tying_file_checksum_provenance_and_ids(tmp_path: Path) -> None:
    model, genome, _ = hand_made()
    tying = tie(model, genome, k=3)
    path = Tying(tying.assignment, tying.centres, tying.init_genome, dict(tying.meta, source_run="r")).save(
        tmp_path / "t.tying.npz")
    back = load_tying(path)
    assert back.meta["source_run"] == "r" and back.meta["model"] == "prnn-postdn-tied" and back.k == 3
    m = get_model(f"prnn-postdn-tied@{path}", 4)
    assert m.id == f"prnn-postdn-tied@{path}" and get_model(m.id, 4).n_gene == m.n_gene
    assert np.array_equal(m.initial_genome(), tying.init_genome)
    with pytest.raises(ValueError, match="hidden"):
        get_model(f"prnn-postdn-tied@{path}", 8)
    with pytest.raises(ValueError, match="ties a prnn-postdn-tied"):
        get_model(f"prnn-tied@{path}", 4)
    masked = get_model(f"prnn-postdn-tied@{path}+mask", 4)
    assert masked.n_gene == m.n_gene + 4
    # a changed assignment no longer matches its checksum
    with np.load(path) as z:
        arrays = dict(z)
    arrays["assignment"] = arrays["assignment"].copy()
    arrays["assignment"][0, 0] = (arrays["assignment"][0, 0] + 1) % 3
    np.savez(tmp_path / "bad.tying.npz", **arrays)
    with pytest.raises(ValueError, match="checksum"):
        load_tying(tmp_path / "bad.tying.npz")


TINY = """\
name: tiny-prnn
seed: 1
generations: 2
model: {id: prnn-postdn, hidden: 4}
tasks: {size: 7, crowd_ratio: 0.30, repeats: 1, schedule: [[0, 1]]}
strategy: {name: sepcma, popsize: 4, sigma0: 0.05}
validation: {suite: maze9-val, count: 2, interval: 1}
checkpoint: {interval: 1, keep: 2}
workers: {backend: inprocess}
"""


@pytest.mark.slow
def test_merge_train_resume_eval_end_to_end(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY)
    assert main(["train", "tiny.yaml", "--run-dir", "src"]) == 0
    assert main(["merge", "src", "--clusters", "5", "--out", "cfg/tied.yaml"]) == 0
    assert "K = 5" in capsys.readouterr().out
    tying = load_tying("cfg/tied.tying.npz")
    assert tying.meta["source_run"] == str((tmp_path / "src").resolve()) and tying.meta["source_genome"] == "best"
    cfg = cfglib.load("cfg/tied.yaml")  # the relative @FILE resolves beside the config
    assert cfg.model.id == f"prnn-postdn-tied@{(tmp_path / 'cfg' / 'tied.tying.npz').resolve()}"
    assert main(["train", "cfg/tied.yaml", "--run-dir", "tied", "--generations", "1"]) == 0
    from evoplastic import checkpoint as ckpt

    arrays, meta, _ = ckpt.load_latest(Path("tied"))
    assert meta["generation"] == 1 and arrays["mean_genome"].size == 4 * 5 + 5 + 4 + 4 * 5 + 2 * 4 + 2
    assert main(["resume", "tied"]) == 0  # to the config's 2 generations
    rows = [json.loads(x) for x in Path("tied/metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [0, 1, 2]
    # a fresh run starts its mean at the tied initial genome (the centres + the source's other tensors)
    from evoplastic import train

    trainer = train.Trainer(cfg, tmp_path / "fresh")
    trainer.start()
    assert np.array_equal(trainer.strategy.mean.astype(F32), tying.init_genome)
    trainer.close()
    assert main(["eval", "tied", "--tasks", "maze9", "--count", "2"]) == 0
    assert "prnn-postdn-tied@" in capsys.readouterr().out
