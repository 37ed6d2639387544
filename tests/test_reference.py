"""Importing the paper code's checkpoints (method §6) and its genome layout (method §3).

The expected reference layouts are written out below by hand, from method §3 ("Reference genome
layout") and, for the models method §3 does not list, from the reference repository
WorldEditors/EvolvingPlasticANN (``models_zoo.py`` layer prefixes, ``epann/layers.py`` tensor names
and shapes, ``parameters.py`` ``to_vector``: sorted names, C order). They are not derived from
``evoplastic.reference``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shlex
from pathlib import Path

import numpy as np
import pytest

from evoplastic import baselines, lifetime, reference
from evoplastic import genome as genome_io
from evoplastic.cli import main
from evoplastic.envs import tasks
from evoplastic.models import get_model
from evoplastic.safepickle import CorruptPickleError, UnsafePickleError

from _paperfiles import paper_file


# -- expected layouts, by hand ----------------------------------------------------------------

def _dec(prefix: str, hy: int, hx: int, evo: str) -> list:
    """Hebbian3's eight vectors under ``prefix``, in sorted order (A..D, x before y)."""
    return [(f"{prefix}//W_Ax", (hx,), f"{evo}.Ax"), (f"{prefix}//W_Ay", (hy,), f"{evo}.Ay"),
            (f"{prefix}//W_Bx", (hx,), f"{evo}.Bx"), (f"{prefix}//W_By", (hy,), f"{evo}.By"),
            (f"{prefix}//W_Cx", (hx,), f"{evo}.Cx"), (f"{prefix}//W_Cy", (hy,), f"{evo}.Cy"),
            (f"{prefix}//W_Dx", (hx,), f"{evo}.Dx"), (f"{prefix}//W_Dy", (hy,), f"{evo}.Dy")]


def _abcd(prefix: str, hy: int, hx: int, evo: str) -> list:
    return [(f"{prefix}/{r}", (hy, hx), f"{evo}.{r}") for r in "ABCD"]


def expected_layout(model_id: str, h: int) -> list:
    """(reference name, shape, evoplastic name) in the reference vector's order."""
    head1 = [("FC_1/W", (5, h), "W_o"), ("FC_1/b", (5,), "b_o")]
    if model_id.startswith(("decprnn", "prnn")):
        rule = _dec if model_id.startswith("dec") else _abcd
        mods = {
            # method §3: FC_M (2, H) sorts between FC_1 and PRNN_1
            "postdn": [("FC_M/W", (2, h), "m.W"), ("FC_M/b", (2,), "m.b")],
            # method §3: FC_Mh reads the input x (15), FC_Mx reads h: names swapped
            "predn": [("FC_Mh/W", (2, 15), "m_in.W"), ("FC_Mh/b", (2,), "m_in.b"),
                      ("FC_Mx/W", (2, h), "m_h.W"), ("FC_Mx/b", (2,), "m_h.b")],
        }.get(model_id.split("-")[-1], [])
        return (head1 + mods + [("PRNN_1//b", (h,), "b")]
                + rule("PRNN_1/hebbian_h", h, h, "h") + rule("PRNN_1/hebbian_x", h, 15, "x"))
    if model_id.startswith("decpdnn"):
        mods = {"postdn": [("FC_Mh/W", (1, h), "m1.W"), ("FC_Mh/b", (1,), "m1.b"),
                           ("FC_Mx/W", (1, h), "m2.W"), ("FC_Mx/b", (1,), "m2.b")],
                "predn": [("FC_Mh/W", (1, 15), "m1.W"), ("FC_Mh/b", (1,), "m1.b"),
                          ("FC_Mx/W", (1, h), "m2.W"), ("FC_Mx/b", (1,), "m2.b")]}.get(model_id.split("-")[-1], [])
        return (head1 + mods + [("PFC_1/fc/b", (h,), "b1")] + _dec("PFC_1/hebbian", h, 15, "l1")
                + [("PFC_2/fc/b", (h,), "b2")] + _dec("PFC_2/hebbian", h, h, "l2"))
    head2 = [("FC_2/W", (5, h), "W_o"), ("FC_2/b", (5,), "b_o")]
    if model_id == "meta-rnn":
        return head2 + [("RNN_1/fc/W", (h, 15 + h), "W"), ("RNN_1/fc/b", (h,), "b")]
    if model_id == "meta-lstm":
        return head2 + [("LSTM_1/fc/W", (4 * h, 15 + h), "W"), ("LSTM_1/fc/b", (4 * h,), "b")]
    n_in = {"meta-dnn": 15, "dnn": 9}[model_id]
    return [("FC_1/W", (h, n_in), "W1"), ("FC_1/b", (h,), "b1"), ("FC_2/W", (h, h), "W2"),
            ("FC_2/b", (h,), "b2"), ("FC_3/W", (5, h), "W_o"), ("FC_3/b", (5,), "b_o")]


MODELS = ["decprnn", "decprnn-predn", "decprnn-postdn", "decpdnn", "decpdnn-predn", "decpdnn-postdn",
          "prnn", "prnn-predn", "prnn-postdn", "meta-rnn", "meta-lstm", "meta-dnn", "dnn"]


def test_spec3_postdn_order_is_written_out_right() -> None:
    """The hand-written table itself against method §3's sentence for DecPRNN(PostDN)."""
    names = [n for n, _, _ in expected_layout("decprnn-postdn", 64)]
    assert names[:5] == ["FC_1/W", "FC_1/b", "FC_M/W", "FC_M/b", "PRNN_1//b"]
    assert names[5:13] == [f"PRNN_1/hebbian_h//W_{v}" for v in ("Ax", "Ay", "Bx", "By", "Cx", "Cy", "Dx", "Dy")]
    assert names[13:] == [f"PRNN_1/hebbian_x//W_{v}" for v in ("Ax", "Ay", "Bx", "By", "Cx", "Cy", "Dx", "Dy")]
    assert names == sorted(names)


@pytest.mark.parametrize("hidden", [64, 6])
@pytest.mark.parametrize("model_id", MODELS)
def test_layout_tensor_by_tensor(model_id: str, hidden: int) -> None:
    """A reference vector whose values name their tensor (index * 100000 + flat position) lands in
    the right evoplastic tensor, in the right (untransposed) place, and maps back."""
    model = get_model(model_id, hidden)
    layout = expected_layout(model_id, hidden)
    assert sum(int(np.prod(s)) for _, s, _ in layout) == model.n_gene
    ref = np.concatenate([i * 100000 + np.arange(np.prod(s)) for i, (_, s, _) in enumerate(layout)])
    assert ref.max() < 2 ** 24  # exact in float32
    evo = reference.to_evoplastic(ref, model)
    named = model.unpack(evo)
    for i, (name, shape, evo_name) in enumerate(layout):
        want = (i * 100000 + np.arange(np.prod(shape))).reshape(shape)
        np.testing.assert_array_equal(named[evo_name][0], want, err_msg=f"{model_id}: {name} -> {evo_name}")
    np.testing.assert_array_equal(reference.to_reference(evo, model), ref.astype(np.float32))
    # batches map row by row
    batch = np.stack([ref, -ref]).astype(np.float32)
    np.testing.assert_array_equal(reference.to_evoplastic(batch, model), np.stack([evo, -evo]))


def test_spec_genome_sizes_of_the_reference_layouts() -> None:
    sizes = {m: sum(int(np.prod(s)) for _, s, _ in expected_layout(m, 64)) for m in MODELS}
    assert sizes == {"decprnn": 1217, "decprnn-predn": 1379, "decprnn-postdn": 1347, "decpdnn": 1281,
                     "decpdnn-predn": 1362, "decpdnn-postdn": 1411, "prnn": 20613, "prnn-predn": 20775,
                     "prnn-postdn": 20743, "meta-rnn": 5445, "meta-lstm": 20805, "meta-dnn": 5509,
                     "dnn": 5125}
    assert sum(int(np.prod(s)) for _, s, _ in expected_layout("meta-rnn", 32)) == 1701


def test_unsupported_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no reference layout for model 'prnn-et'"):
        reference.to_evoplastic(np.zeros(10), get_model("prnn-et"))


# -- checkpoint files -------------------------------------------------------------------------

def _write_checkpoint(path: Path, n: int, bare: bool = False, seed: int = 0, pop: int = 4) -> np.ndarray:
    """A synthetic checkpoint in the reference's format (EStool.ESTool.save): 8 pickles."""
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal(n).astype(np.float32)
    population = [[mean + 0.01 * rng.standard_normal(n).astype(np.float32), -1.0e8] for _ in range(pop)]
    objs = [population, mean if bare else (mean, {}), np.ones(n, np.float32), np.zeros(n, np.float32),
            np.zeros(n, np.float32), np.float64(0.01), n, 1234]
    with open(path, "wb") as f:
        for o in objs:
            pickle.dump(o, f)
    return mean


@pytest.mark.parametrize("bare", [False, True])
def test_current_and_bare_vector_checkpoints(tmp_path: Path, bare: bool) -> None:
    model = get_model("decprnn-postdn", 8)
    path = tmp_path / "ck.dat"
    mean = _write_checkpoint(path, model.n_gene, bare=bare)
    ck = reference.read_checkpoint(path)
    assert ck.source_format == ("bare-vector" if bare else "current") and ck.static == {}
    assert ck.generation == 1234 and ck.sigma == 0.01 and ck.dim == model.n_gene
    assert ck.population.shape == (4, model.n_gene) and (ck.scores == -1.0e8).all()
    np.testing.assert_array_equal(ck.mean, mean)
    out, meta = reference.import_to_file(path, "decprnn-postdn", 8, tmp_path / "g.npz")
    g, stored = genome_io.load(out)
    np.testing.assert_array_equal(reference.to_reference(g, model), mean)  # round trip
    assert stored["source_format"] == ck.source_format and stored["generation"] == 1234
    assert stored["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stored["model"] == "decprnn-postdn" and stored["hidden"] == 8 and stored["sigma"] == 0.01


def test_demo_checkpoint_round_trip(tmp_path: Path) -> None:
    path = paper_file("paper-genome")
    ck = reference.read_checkpoint(path)
    assert ck.source_format == "current" and ck.generation == 49000 and ck.population.shape == (360, 1347)
    out = tmp_path / "demo.npz"
    assert main(["import-reference", str(path), "--model", "decprnn-postdn", "--out", str(out)]) == 0
    g, meta = genome_io.load(out)
    assert meta["model"] == "decprnn-postdn" and meta["hidden"] == 64 and meta["generation"] == 49000
    assert meta["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["sigma"] == pytest.approx(ck.sigma)
    np.testing.assert_array_equal(reference.to_reference(g, get_model("decprnn-postdn")), ck.mean)


class _Reduce:
    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _evil_checkpoint(path: Path, marker: Path, where: int) -> None:
    """A valid-looking checkpoint whose pickle number ``where`` runs os.system when loaded."""
    n = 20
    objs = [[[np.zeros(n, np.float32), 0.0]], (np.zeros(n, np.float32), {}), np.ones(n), np.zeros(n),
            np.zeros(n), 0.01, n, 7]
    objs[where] = _Reduce(os.system, f"touch {shlex.quote(str(marker))}")
    path.write_bytes(b"".join(pickle.dumps(o, protocol=3) for o in objs))


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evoplastic: error:") and "\n" not in err
    return err


@pytest.mark.parametrize("where", [0, 4])
def test_malicious_checkpoint_is_refused(tmp_path: Path, where: int, capsys: pytest.CaptureFixture) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "evil.dat"
    _evil_checkpoint(path, marker, where)
    needle = f"refusing to unpickle '{os.system.__module__}.system'"
    with pytest.raises(UnsafePickleError, match=needle):
        reference.read_checkpoint(path)
    with pytest.raises(UnsafePickleError, match=needle):
        reference.import_genome(path, "decprnn-postdn")
    assert needle in _cli_error(["import-reference", str(path), "--model", "decprnn-postdn",
                                 "--out", str(tmp_path / "g.npz")], capsys)
    assert needle in _cli_error(["eval", str(path), "--model", "decprnn-postdn", "--tasks", "maze9",
                                 "--count", "2"], capsys)
    assert not marker.exists() and not (tmp_path / "g.npz").exists()


def test_truncated_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    full, path = tmp_path / "full.dat", tmp_path / "cut.dat"
    _write_checkpoint(full, get_model("decprnn-postdn", 8).n_gene)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # mid-pickle
    with pytest.raises(CorruptPickleError, match="truncated or corrupt pickle"):
        reference.read_checkpoint(path)
    assert "truncated or corrupt pickle" in _cli_error(
        ["import-reference", str(path), "--model", "decprnn-postdn", "--hidden", "8", "--out",
         str(tmp_path / "g.npz")], capsys)
    # cut at a pickle boundary: three whole pickles, then nothing
    objs = reference.safepickle.load_all(full)
    path.write_bytes(b"".join(pickle.dumps(o) for o in objs[:3]))
    with pytest.raises(ValueError, match=r"holds 3 pickle\(s\), a checkpoint holds 8 .*truncated"):
        reference.read_checkpoint(path)
    assert "holds 3 pickle(s)" in _cli_error(["eval", str(path), "--model", "decprnn-postdn", "--hidden", "8",
                                              "--tasks", "maze9", "--count", "2"], capsys)


def test_missing_and_wrong_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope.dat"
    with pytest.raises(FileNotFoundError, match="no such reference checkpoint"):
        reference.read_checkpoint(missing)
    assert "no such reference checkpoint" in _cli_error(
        ["import-reference", str(missing), "--model", "decprnn", "--out", str(tmp_path / "g.npz")], capsys)
    tasks_file = tmp_path / "tasks.dat"
    tasks_file.write_bytes(pickle.dumps([{"start": (1, 1), "goal": (3, 3), "cell_walls": np.ones((5, 5))}]))
    with pytest.raises(ValueError, match=r"not a reference checkpoint.*\(a task file\?\)"):
        reference.read_checkpoint(tasks_file)
    assert "names no model; pass --model" in _cli_error(["eval", str(tasks_file), "--tasks", "maze9"], capsys)


def test_inconsistent_checkpoint_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "ck.dat"
    objs = [[[np.zeros(5, np.float32), "best"]], (np.zeros(5, np.float32), {}), np.ones(5), np.zeros(5),
            np.zeros(5), 0.01, 5, 3]
    path.write_bytes(b"".join(pickle.dumps(o) for o in objs))
    with pytest.raises(ValueError, match="numeric scores"):
        reference.read_checkpoint(path)
    objs[0], objs[6] = [[np.zeros(5, np.float32), 0.0]], 6  # dim disagrees with the vectors
    path.write_bytes(b"".join(pickle.dumps(o) for o in objs))
    assert "inconsistent reference checkpoint" in _cli_error(
        ["import-reference", str(path), "--model", "decprnn", "--out", str(tmp_path / "g.npz")], capsys)


def test_wrong_genome_length_names_the_fitting_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "ck.dat"
    _write_checkpoint(path, 1347)
    msg = "has 1347 genes, but decprnn (hidden 64) has 1217; a genome of that length fits decprnn-postdn (hidden 64)"
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        reference.import_genome(path, "decprnn")
    assert msg in _cli_error(["import-reference", str(path), "--model", "decprnn", "--out",
                              str(tmp_path / "g.npz")], capsys)
    # the repository's models_zoo.py PreDN (one output per modulator, the paper's 1,298 genes)
    _write_checkpoint(path, 1298)
    with pytest.raises(ValueError, match="one output per modulator"):
        reference.import_genome(path, "decprnn-predn")


# -- the published genome ---------------------------------------------------------------------

def test_eval_accepts_a_reference_checkpoint_like_its_import(tmp_path: Path) -> None:
    path, maze9 = paper_file("paper-genome"), paper_file("paper-maze9")
    genome = tmp_path / "demo.npz"
    assert main(["import-reference", str(path), "--model", "decprnn-postdn", "--out", str(genome)]) == 0
    runs = []
    for src, extra in ((path, ["--model", "decprnn-postdn"]), (genome, [])):
        out = tmp_path / "r.json"
        assert main(["eval", str(src), *extra, "--tasks", str(maze9), "--count", "8",
                     "--profile", "reference-2022-08", "--json", str(out)]) == 0
        runs.append(json.loads(out.read_text()))
    for key in ("rollout_mean", "goal_rate", "steps_mean", "weighted_mean", "fitness"):
        assert runs[0][key] == runs[1][key]
    assert runs[0]["rollouts"] == 8 and runs[0]["profile"] == "reference-2022-08"


def test_demo_genome_learns_9x9_mazes_far_above_random() -> None:
    """The paper's DecPRNN(PostDN) under the 2022-08 profile on 64 of the reference 9x9 tasks: it
    should reach the goal in most mazes by its last rollouts and improve over rollout 1; Random
    (same tasks, 8 rollouts) reaches it in under half and scores about -1.2."""
    g, _ = reference.import_genome(paper_file("paper-genome"), "decprnn-postdn")
    ts = tasks.load_reference(paper_file("paper-maze9")).head(64)
    res = lifetime.evaluate(get_model("decprnn-postdn"), g[None], ts, profile="reference-2022-08").summary(0)
    rnd = baselines.evaluate("random", ts, 8, 1, 0, None, "v1")
    last, first = res["rollout_mean"][-1], res["rollout_mean"][0]
    assert res["goal_rate"][-1] >= 0.85, res
    assert last > 0.5 and last - rnd["rollout_mean"][-1] > 1.0, (res, rnd)
    assert np.mean(res["rollout_mean"][3:]) - first > 0.5, res  # learns within the lifetime
