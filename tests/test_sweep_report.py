"""The sweep's wall-time report: known values from hand-written metrics, and a real tiny sweep."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from evoplastic import config as cfglib
from evoplastic import sweep_report, train
from evoplastic.cli import main

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def _point(sweep_dir: Path, name: str, rows: list[dict], generations: int = 10) -> None:
    """A run directory as the trainer leaves it: config.yaml and metrics.csv (train.METRICS columns)."""
    d = sweep_dir / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(cfglib.dump(cfglib.load(ROOT / "experiments" / "smoke.yaml", [f"generations={generations}"])))
    with open(d / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, train.METRICS)
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in train.METRICS} for r in rows)


def _rows(seconds: list[float], validation: dict[int, float]) -> list[dict]:
    """Generation 0 (validation only, as the trainer writes it) then one row per generation."""
    out = [{"generation": 0, "validation": validation[0]}]
    for g, s in enumerate(seconds, 1):
        out.append({"generation": g, "seconds": s, "agent_steps": 1_000_000, **(
            {"validation": validation[g]} if g in validation else {})})
    return out


def test_known_values_and_equal_budget_ranking(tmp_path: Path) -> None:
    sw = tmp_path / "sw"
    sw.mkdir()
    (sw / "sweep.yaml").write_text("name: sw\n")
    # a: 4 generations of 30 s (2 min); best -0.5 at generation 2, after 1 min and 2M steps
    _point(sw, "a", _rows([30] * 4, {0: -1.0, 2: -0.5, 4: -0.6}), generations=4)
    # b: 3 generations of 60 s (3 min); -0.2 at 2 min (within a's 2 min), its best 0.1 only at 3 min
    _point(sw, "b", _rows([60] * 3, {0: -1.2, 1: -0.9, 2: -0.2, 3: 0.1}), generations=3)
    # c: still running (1 of 5 generations, 6 s): it does not shorten the budget and comes last
    _point(sw, "c", _rows([6], {0: -1.0, 1: 0.5}), generations=5)
    files = sweep_report.write(sw)
    assert [f.name for f in files] == ["walltime.csv", "walltime.md", "walltime.png"]
    assert (sw / "walltime.png").read_bytes().startswith(PNG)
    with open(sw / "walltime.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["point"] for r in rows] == ["b", "a", "c"]  # finished first, best within the budget first
    b, a, c = rows
    assert [r["state"] for r in rows] == ["finished", "finished", "unfinished"]
    assert (c["wall_min"], c["best_in_common_min"], c["best_in_common_steps"]) == ("0.1", "0.5", "0.5")
    assert (a["generations"], a["wall_min"], a["agent_steps_M"]) == ("4", "2.0", "4.0")
    assert (a["best_validation"], a["best_generation"], a["time_to_best_min"], a["steps_to_best_M"]) == \
        ("-0.5", "2", "1.0", "2.0")
    assert (a["last_validation"], a["best_in_common_min"], a["best_in_common_steps"]) == ("-0.6", "-0.5", "-0.5")
    assert (b["wall_min"], b["best_validation"], b["time_to_best_min"], b["steps_to_best_M"]) == \
        ("3.0", "0.1", "3.0", "3.0")
    assert b["best_in_common_min"] == "-0.2"  # 0.1 came after the 2 minutes every finished point covers
    assert b["best_in_common_steps"] == "0.1"  # but within the 3M agent-steps both spent
    assert "Common budget: 2.00 min of wall time, 3.00M agent-steps" in (sw / "walltime.md").read_text()


def test_two_sweeps_in_one_table(tmp_path: Path) -> None:
    for sweep, seconds in (("s1", 30), ("s2", 60)):
        (tmp_path / sweep).mkdir()
        _point(tmp_path / sweep, "p", _rows([seconds] * 2, {0: -1.0, 2: -0.5}), generations=2)
    sweep_report.main([str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "both")])
    with open(tmp_path / "both" / "walltime.csv", newline="") as f:
        rows = {r["point"]: r for r in csv.DictReader(f)}
    assert (rows["s1/p"]["wall_min"], rows["s2/p"]["wall_min"]) == ("1.0", "2.0")
    assert rows["s2/p"]["best_in_common_min"] == "-1.0"  # its -0.5 came after s1's whole minute
    assert "Sweeps s1, s2" in (tmp_path / "both" / "walltime.md").read_text()
    assert not (tmp_path / "s1" / "walltime.csv").exists()


def test_no_metrics_yet_writes_nothing(tmp_path: Path) -> None:
    sw = tmp_path / "sw"
    _point(sw, "a", [])
    assert sweep_report.write(sw) == []


def test_a_real_sweep_writes_it_with_its_summary(tmp_path: Path) -> None:
    fast = ("model.hidden: 8, strategy.popsize: 8, tasks.repeats: 1, validation.count: 8, validation.interval: 1, "
            "tasks.schedule: [[0, 1]], workers.backend: inprocess, generations: 2")
    (tmp_path / "sweep.yaml").write_text(f"name: tiny\nbase: {ROOT / 'experiments' / 'smoke.yaml'}\n"
                                         f"set: {{{fast}}}\ngrid: {{seed: [0, 1]}}\n")
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out)]) == 0
    with open(out / "walltime.csv", newline="") as f:
        rows = {r["point"]: r for r in csv.DictReader(f)}
    with open(out / "summary.csv", newline="") as f:
        summary = {r["point"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"seed-0", "seed-1"}
    for name, r in rows.items():
        with open(out / name / "metrics.csv", newline="") as f:
            metrics = list(csv.DictReader(f))
        seconds = sum(float(m["seconds"]) for m in metrics if m["seconds"])
        steps = sum(int(m["agent_steps"]) for m in metrics if m["agent_steps"])
        assert r["generations"] == "2"
        assert float(r["wall_min"]) == pytest.approx(seconds / 60, abs=0.006)
        assert float(r["agent_steps_M"]) == pytest.approx(steps / 1e6, abs=0.006)
        assert float(r["best_validation"]) == pytest.approx(float(summary[name]["best_validation"]), abs=1e-4)
        assert r["best_generation"] == summary[name]["best_generation"]
    assert (out / "walltime.png").read_bytes().startswith(PNG)
