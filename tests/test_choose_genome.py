"""scripts/choose_genome.py: best-validated genome or final mean, chosen on validation tasks the run
never saw, with the scores `evoplastic eval` gives."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from evoplastic.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _choose_genome():
    spec = importlib.util.spec_from_file_location("choose_genome", ROOT / "scripts" / "choose_genome.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _eval(run: Path, genome: str, tasks: str, tmp_path: Path) -> float:
    out = tmp_path / f"{genome}.json"
    assert main(["eval", str(run), "--genome", genome, "--tasks", tasks, "--json", str(out)]) == 0
    return json.loads(out.read_text())["weighted_mean"]


def test_chooses_the_higher_on_unused_validation_tasks(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "experiments" / "tiny.yaml"), "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert _choose_genome().main([str(run)]) == 0
    printed = capsys.readouterr().out.strip()
    choice = json.loads((run / "choice.json").read_text())
    assert not (run / "eval").exists()  # the run's results stay those of the genome chosen and tested
    assert choice["tasks"] == "maze9-val[16:]"  # tiny validates on the first 16 of 1,024
    scores = {g: _eval(run, g, "maze9-val[16:]", tmp_path) for g in ("best", "mean")}
    assert {g: s["weighted_mean"] for g, s in choice["scores"].items()} == scores
    assert printed == choice["choice"] == ("mean" if scores["mean"] > scores["best"] else "best")
    assert all(s["tasks"] == 1008 for s in choice["scores"].values())


def test_a_run_that_validated_on_the_whole_suite_is_refused(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "experiments" / "tiny.yaml"), "--run-dir", str(run), "--generations", "1",
                 "--set", "validation.suite=maze9-val", "--set", "validation.count=1024"]) == 0
    with pytest.raises(SystemExit, match="validation used all of maze9-val; no unused validation tasks"):
        _choose_genome().main([str(run)])
    assert not (run / "choice.json").exists()
