"""NeuronML's structure measures on a hand-made masked DecPRNN(PostDN).

The net: 4 hidden units, unit 2 masked off; all Dec vectors 0, so W stays 0 and h = tanh(b)
at every step of every task (identical activation across tasks); only unit 0 drives the outputs.
Known values: frugality 3/4; overlap 1; unit 2 never active and sensitivity 0; units 1 and 3
(active, driving nothing) sensitivity 0; unit 0 changes the score when ablated.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evoplastic import genome as genome_io
from evoplastic.analysis import structure
from evoplastic.cli import main
from evoplastic.envs import tasks as tasklib
from evoplastic.models import get_model

F32 = np.float32


def hand_made():
    model = get_model("decprnn-postdn+mask", 4)
    p = {k: np.zeros_like(v) for k, v in model.unpack(np.zeros(model.n_gene, F32)).items()}
    p["b"][0] = [1.0, 0.5, 2.0, 0.8]
    p["mask"][0] = [1.0, 1.0, -1.0, 1.0]
    p["W_o"][0][:, 0] = [3.0, -2.0, 0.5, 0.0, -4.0]  # unit 0 prefers "up", greedy-ish
    return model, model.pack(p)[0]


def test_overlap_known_values() -> None:
    same = np.array([[1, 1, 0, 1]] * 3, bool)
    assert structure.overlap(same) == 1.0
    assert structure.overlap(np.array([[1, 1, 0], [1, 0, 0]], bool)) == 0.5
    assert structure.overlap(np.zeros((2, 3), bool)) == 1.0
    assert structure.overlap(np.array([[1, 0], [0, 1]], bool)) == 0.0


def test_measures_on_a_hand_made_masked_net() -> None:
    model, g = hand_made()
    tasks = tasklib.generate(3, 7, 0.3, seed=0)
    m = structure.measures(model, g, tasks, repeats=2)
    assert m["frugality"] == 0.75
    act = np.asarray(m["activation"])
    np.testing.assert_allclose(act, np.tile(np.tanh([1.0, 0.5, 0.0, 0.8]), (3, 1)), rtol=1e-6)
    assert m["overlap"] == 1.0
    assert m["units"]["task_fraction"] == [1.0, 1.0, 0.0, 1.0]
    s = m["units"]["sensitivity"]
    assert s[2] == 0.0 and s[1] == 0.0 and s[3] == 0.0  # off, and active units that drive nothing
    assert s[0] != 0.0
    assert m["sensitivity_mean_abs"] == abs(s[0]) / 4


def test_measures_need_a_masked_recurrent_model() -> None:
    with pytest.raises(ValueError, match=r"\+mask"):
        structure.measures(get_model("decprnn-postdn", 4), np.zeros(get_model("decprnn-postdn", 4).n_gene, F32),
                           tasklib.generate(2, 7, 0.3, seed=0))


def test_analyze_structure_command(tmp_path: Path, capsys) -> None:
    model, g = hand_made()
    genome_io.save(tmp_path / "g.npz", g, model.id, 4)
    assert main(["analyze", "structure", str(tmp_path / "g.npz"), "--tasks", "maze9", "--count", "3",
                 "--repeats", "1", "--out", str(tmp_path / "out")]) == 0
    got = json.loads((tmp_path / "out" / "structure.json").read_text())
    assert got["frugality"] == 0.75 and got["overlap"] == 1.0
    assert (tmp_path / "out" / "structure.png").stat().st_size > 10_000
    assert "overlap" in capsys.readouterr().out


TINY_MASKED = """\
name: tiny-mask
seed: 2
generations: 2
model: {id: decprnn-postdn+mask, hidden: 4, frugality: 0.05}
tasks: {size: 7, crowd_ratio: 0.30, repeats: 1, schedule: [[0, 1]]}
strategy: {name: sepcma, popsize: 4, sigma0: 0.05}
validation: {suite: maze9-val, count: 2, interval: 1}
checkpoint: {interval: 1, keep: 3}
workers: {backend: inprocess}
"""


@pytest.mark.slow
def test_masked_run_report_shows_structure_over_generations(tmp_path: Path) -> None:
    from evoplastic import report

    (tmp_path / "tiny.yaml").write_text(TINY_MASKED)
    assert main(["train", str(tmp_path / "tiny.yaml"), "--run-dir", str(tmp_path / "run")]) == 0
    written = [p.name for p in report.write_report(tmp_path / "run", tmp_path / "rep", mazes=1)]
    assert "structure_run.png" in written
    index = (tmp_path / "rep" / "index.md").read_text()
    assert "over its 3 kept checkpoints" in index
