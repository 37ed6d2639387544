"""Trajectories (same numbers as the evaluator, legal paths) and reports of runs and sweeps."""

from __future__ import annotations

import csv
import re
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from evoplastic import config as cfglib
from evoplastic import genome as genome_io
from evoplastic import lifetime, report, train, trajectory
from evoplastic.envs import tasks as tasklib
from evoplastic.models import get_model
from evoplastic.results import write_json

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.yaml"
FAST = ["strategy.popsize=8", "tasks.repeats=1", "validation.count=8", "validation.interval=1",
        "checkpoint.interval=2", "tasks.schedule=[[0, 1]]", "workers.backend=inprocess"]
SUITES = ("maze9", "maze15")
PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ("learning_curves.png", "rollouts.png", "trajectories.png")


# -- trajectories -------------------------------------------------------------------------------

@pytest.mark.parametrize("model_id", ["decprnn-postdn", "meta-lstm", "prnn-et"])
def test_trace_returns_equal_evaluate_and_paths_are_legal(model_id: str) -> None:
    model = get_model(model_id, 8)
    genomes = (0.8 * np.random.default_rng(1).standard_normal((3, model.n_gene))).astype(np.float32)
    tasks = tasklib.load("maze9").head(6)
    task_ids = np.arange(100, 106)
    ref = lifetime.evaluate(model, genomes, tasks, repeats=2, seed=7, task_ids=task_ids, batch=5)
    reached_any = False
    for g, k in ((0, 0), (2, 1)):
        tr = trajectory.trace(model, genomes[g], tasks, seed=7, genome_id=g, task_ids=task_ids, repeat=k)
        np.testing.assert_array_equal(tr.returns, ref.returns[g, k::2])
        np.testing.assert_array_equal(tr.reached, ref.reached[g, k::2])
        np.testing.assert_array_equal(tr.steps, ref.steps[g, k::2])
        reached_any |= bool(tr.reached.any())
        for t, paths in enumerate(tr.paths):
            assert len(paths) == 3
            for r, path in enumerate(paths):
                assert_legal(path, tasks, t, tr.steps[t, r], tr.reached[t, r])
    assert reached_any  # some paths end on a goal: the goal check below is exercised


def assert_legal(path: np.ndarray, tasks: tasklib.TaskSet, t: int, steps: int, reached: bool) -> None:
    assert path.shape == (steps + 1, 2)
    assert tuple(path[0]) == tuple(tasks.start[t])
    assert (tuple(path[-1]) == tuple(tasks.goal[t])) == reached
    assert (np.abs(np.diff(path, axis=0)).sum(1) <= 1).all()  # adjacent or the same (a wall bump)
    assert not tasks.walls[t][path[:, 0], path[:, 1]].any()


def test_trace_paths_visit_many_cells() -> None:
    """A path is the agent's, not a constant: over many lifetimes the agent visits many cells."""
    model = get_model("decprnn", 8)
    genome = np.random.default_rng(3).standard_normal(model.n_gene).astype(np.float32)
    tasks = tasklib.load("maze9").head(4)
    tr = trajectory.trace(model, genome, tasks, rollouts=2, seed=1)
    visited = {tuple(c) for paths in tr.paths for p in paths for c in p}
    assert len(visited) > 8


# -- run and sweep directories -------------------------------------------------------------------

def make_run(run_dir: Path, hidden: int, generations: int = 2, evals: bool = True) -> Path:
    t = train.Trainer(cfglib.load(SMOKE, FAST + [f"model.hidden={hidden}"]), run_dir)
    t.start()
    t.run(generations)
    t.close()
    if evals:
        g, meta = genome_io.load(run_dir / "best.npz")
        model = get_model(meta["model"], meta["hidden"])
        for suite in SUITES:
            ts = tasklib.load(suite).head(8)
            res = lifetime.evaluate(model, g[None], ts, repeats=1, seed=0)
            write_json(res.summary(0, suite=ts.name, genome=str(run_dir / "best.npz")),
                       run_dir / "eval" / f"{suite}.json")
    return run_dir


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sweep")
    (d / "sweep.yaml").write_text("base: smoke.yaml\ngrid: {model.hidden: [16, 64]}\n")
    (d / "summary.csv").write_text("point,best_validation\n")
    make_run(d / "h16", 16)
    make_run(d / "h64", 64)
    return d


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG, path
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert width > 100 and height > 100


def table_lines(out: Path) -> list[str]:
    return [ln for ln in (out / "table.md").read_text().splitlines() if ln.startswith("| ")][1:]


def test_run_report(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    written = report.write_report(sweep / "h16", out)
    assert [p.name for p in written] == ["learning_curves.png", "rollouts.png", "table.md", "table.csv",
                                         "trajectories.png", "memory.png", "memory.md", "memory.json", "index.md"]
    for name in FIGURES + ("memory.png",):  # memory: the memory analysis, for recurrent plastic models
        assert_png(out / name)
    (row,) = table_lines(out)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:7] == ["h16", "decprnn-postdn", "16", "387", "512", "1.323", "2"]  # method §3 sizes
    for i, suite in enumerate(SUITES):
        res = report.read_evals(sweep / "h16")[0][suite]
        assert cells[8 + 2 * i] == f"{res['weighted_mean']:+.3f} ± {res['weighted_se']:.3f}"
        assert cells[9 + 2 * i] == f"{100 * res['goal_rate'][-1]:.1f}%"
    header = (out / "table.md").read_text()
    assert "maze9 score" in header and "maze15 score" in header
    rows = list(csv.DictReader(open(out / "table.csv")))
    assert len(rows) == 1 and float(rows[0]["maze15:mean"]) == res["weighted_mean"]
    index = (out / "index.md").read_text()
    assert all(f"[{p.name}]" in index for p in written) and "Skipped" not in index


def test_best_validation_in_table_matches_the_checkpoint(sweep: Path, tmp_path: Path) -> None:
    from evoplastic import checkpoint as ckpt

    run = report.load_run(sweep / "h64")
    _, meta, _ = ckpt.load_latest(run.path)
    assert run.best_validation() == (meta["best_validation"], meta["best_generation"])


def test_sweep_report_has_one_row_per_point(sweep: Path) -> None:
    written = report.write_report(sweep)
    out = sweep / "report"
    assert {p.name for p in written} >= set(FIGURES) | {"table.md", "table.csv", "index.md"}
    for name in FIGURES:
        assert_png(out / name)
    lines = table_lines(out)
    assert [ln.split("|")[1].strip() for ln in lines] == ["h16", "h64"]
    assert "| 1,347 | 5,120 |" in lines[1] and "| 387 | 512 |" in lines[0]
    assert all(len(re.findall(r"[+-]\d\.\d{3} ± \d\.\d{3}", ln)) == 2 for ln in lines)
    index = (out / "index.md").read_text()
    assert "sweep directory (2 points: h16, h64)" in index and "the point with the best validation" in index


def test_run_without_evaluations_skips_rollouts(sweep: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(sweep / "h16", run, ignore=shutil.ignore_patterns("eval", "report"))
    written = report.write_report(run)
    names = [p.name for p in written]
    assert "rollouts.png" not in names and "trajectories.png" in names
    assert not (run / "report" / "rollouts.png").exists()
    index = (run / "report" / "index.md").read_text()
    skipped = index.split("## Skipped", 1)[1]
    assert "`rollouts.png`: no evaluation results (`eval/*.json`)" in skipped
    assert "score" not in (run / "report" / "table.md").read_text().split("|---", 1)[0].splitlines()[-1]


def test_results_of_an_older_genome_are_left_out(sweep: Path, tmp_path: Path) -> None:
    """One genome per report: an eval result of an older genome than the others is not mixed in."""
    import json

    from evoplastic import rundir

    run = tmp_path / "run"
    shutil.copytree(sweep / "h16", run, ignore=shutil.ignore_patterns("report"))
    files = sorted((run / "eval").glob("*.json"))
    assert len(files) >= 2
    for i, f in enumerate(files):  # as `evoplastic eval RUN` writes them: of the best genome's generation
        res = json.loads(f.read_text())
        res["generation"] = 2 if i else 1  # the first one evaluated before training went on
        f.write_text(json.dumps(res))
    res = json.loads(files[0].read_text())
    evals, notes = rundir.read_evals(run)
    assert res["suite"] not in evals and len(evals) == len(files) - 1
    assert any(f"generation-{res['generation']} genome" in n for n in notes)


def test_missing_matplotlib_is_one_clear_line(sweep: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError) as info:
        report.write_report(sweep / "h16", tmp_path / "out")
    assert str(info.value) == "matplotlib is needed for reports: pip install 'evoplastic[plots]'"
    assert not (tmp_path / "out").exists()


def test_not_a_run_or_sweep_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither a run directory"):
        report.write_report(tmp_path)
    with pytest.raises(FileNotFoundError):
        report.write_report(tmp_path / "missing")


def test_masked_run_reports_its_active_fraction(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cfg = cfglib.load(SMOKE, FAST + ["model.hidden=8", "model.id=decprnn-postdn+mask", "model.frugality=0.05"])
    t = train.Trainer(cfg, tmp_path / "run")
    t.start()
    t.run(2)
    t.close()
    metrics = report.read_metrics(tmp_path / "run" / "metrics.csv")
    active = metrics["active_fraction"]
    assert np.isfinite(active).all() and ((active >= 0) & (active <= 1)).all()
    report.write_report(tmp_path / "run", tmp_path / "out")
    assert_png(tmp_path / "out" / "learning_curves.png")
    head = [ln for ln in (tmp_path / "out" / "table.md").read_text().splitlines() if ln.startswith("| ")]
    assert "active fraction (last)" in head[0]
    assert f"| {active[-1]:.3f} |" in head[1]
    # An unmasked run's table has no such column.
    make_run(tmp_path / "plain", 8, evals=False)
    report.write_report(tmp_path / "plain", tmp_path / "out2")
    assert "active fraction" not in (tmp_path / "out2" / "table.md").read_text()


# -- plots that explain themselves ------------------------------------------------------------

def test_index_embeds_every_figure(sweep: Path, tmp_path: Path) -> None:
    report.write_report(sweep / "h16", tmp_path)
    index = (tmp_path / "index.md").read_text()
    for name in FIGURES:
        assert f"![{Path(name).stem}]({name})" in index


def test_validation_se_is_logged(sweep: Path) -> None:
    m = report.read_metrics(sweep / "h16" / "metrics.csv")
    have = np.isfinite(m["validation"])
    assert have.any() and np.isfinite(m["validation_se"][have]).all() and (m["validation_se"][have] > 0).all()
    assert np.isnan(m["validation_se"][~have]).all()


def test_moving_average() -> None:
    v = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    assert np.allclose(report.moving_average(v, 3), [1.5, 1.5, 3.0, 4.5, 4.5])
    assert report.moving_average(v, 1) is not None and np.array_equal(report.moving_average(v, 1), v, equal_nan=True)
    assert [report.smoothing_window(n) for n in (10, 60, 300, 3000)] == [1, 3, 11, 101]


def test_baselines_and_distribution_of_an_eval(sweep: Path) -> None:
    run = report.load_run(sweep / "h16")  # trained on 9x9, crowd 0.30 (smoke.yaml)
    res9, res15 = run.evals["maze9"], run.evals["maze15"]
    ts9, ts15 = report._eval_tasks(res9), report._eval_tasks(res15)
    assert len(ts9) == res9["tasks"] and ts15.size == 15
    assert report._distribution(run, ts9).startswith("in distribution")
    assert report._distribution(run, ts15).startswith("OUT of distribution (15x15, crowd 0.35")
    (oracle_name, oracle, _), (random_name, random, _) = report._eval_baselines(res9, ts9)
    assert (oracle_name, random_name) == ("Oracle", "Random")
    assert oracle["goal_rate"] == [1.0] * res9["rollouts"] and oracle["weighted_mean"] > random["weighted_mean"]
    assert report._eval_baselines(res9, None) == [] and "unknown" in report._distribution(run, None)
