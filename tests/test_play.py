"""`evoplastic play`: the replayed lifetime is the evaluated one, shown through the Gymnasium renderer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evoplastic import genome as genome_io
from evoplastic import lifetime, play
from evoplastic.cli import main
from evoplastic.envs import tasks as tasklib
from evoplastic.models import get_model


def test_actions_of_moves_and_bumps() -> None:
    walls = np.ones((5, 5), np.uint8)
    walls[1:4, 1:4] = 0
    walls[2, 3] = 1  # a wall right of (2, 2)
    path = np.array([[1, 1], [2, 1], [2, 2], [2, 2], [1, 2], [1, 3]])
    acts = play.actions_of(path, walls)
    assert acts[:3] == [1, 3, 3] and acts[3:] == [0, 3]  # the stay at (2, 2) bumps into (2, 3)
    with pytest.raises(ValueError, match="cannot replay"):
        play.actions_of(np.array([[1, 1], [3, 3]]), walls)


@pytest.fixture
def genome_file(tmp_path: Path) -> Path:
    model = get_model("decprnn-postdn", 16)
    g = (0.3 * np.random.default_rng(3).standard_normal(model.n_gene)).astype(np.float32)
    return genome_io.save(tmp_path / "g.npz", g, model.id, model.hidden)


def test_replay_is_the_evaluated_lifetime(genome_file: Path) -> None:
    g, meta = genome_io.load(genome_file)
    model = get_model(meta["model"], meta["hidden"])
    ts = tasklib.load("maze9").head(6)
    life = play.replay(model, g, ts, 5, "evoplastic", seed=2, render_mode="ansi")
    res = lifetime.evaluate(model, g[None], ts, seed=2)
    assert np.array_equal(life.returns, res.returns[0, 5]) and np.array_equal(life.steps, res.steps[0, 5])
    assert [len(f) for f in life.frames] == [s + 1 for s in life.steps]
    start = tuple(ts.start[5])
    assert life.frames[0][0].splitlines()[start[0]].split()[start[1]] == "A"  # the agent on its start
    with pytest.raises(IndexError, match="tasks 0..5"):
        play.replay(model, g, ts, 6, "evoplastic")


def test_play_command_ansi_and_gif(genome_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["play", str(genome_file), "--tasks", "maze9", "--task", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("rollout ") == 3 and "task #1 of maze9" in out
    pytest.importorskip("PIL")
    from PIL import Image

    gif = tmp_path / "p.gif"
    assert main(["play", str(genome_file), "--tasks", "maze9", "--render", "gif", "--out", str(gif)]) == 0
    steps = [int(line.split(" in ")[1].split()[0]) for line in capsys.readouterr().out.splitlines()
             if line.startswith("rollout ")]
    with Image.open(gif) as im:
        # Pillow merges identical consecutive frames (bumps into walls), adding up their durations
        assert 3 < im.n_frames <= sum(s + 1 for s in steps) and im.size == (9 * 8 * 4, 9 * 8 * 4)
