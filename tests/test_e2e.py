"""The command line end to end in a temp folder: train, resume, eval on two suites, a sweep of two
points run twice (the second run skips), and a report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = """\
name: tiny
seed: 3
generations: 4
model: {id: decprnn-postdn, hidden: 8}
tasks: {size: 9, crowd_ratio: 0.30, repeats: 2, schedule: [[0, 1]]}
strategy: {name: sepcma, popsize: 6, sigma0: 0.05}
validation: {suite: maze9-val, count: 8, interval: 2}
checkpoint: {interval: 1, keep: 2}
workers: {backend: inprocess}
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "evoplastic.cli", *args], cwd=cwd, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, f"{args}: {res.stderr}"
    return res


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("e2e")
    (d / "tiny.yaml").write_text(TINY)
    return d


def test_train_resume_eval(folder: Path) -> None:
    out = cli("train", "tiny.yaml", "--run-dir", "run", "--generations", "2", cwd=folder)
    assert "generation 2" in out.stdout
    cli("resume", "run", cwd=folder)  # to the config's 4 generations
    rows = [json.loads(x) for x in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [0, 1, 2, 3, 4]
    assert (folder / "run" / "command.txt").read_text().count("\n") == 2
    res = cli("eval", "run", "--tasks", "maze9,maze15", "--count", "8", "--json", "eval.json",
              "--csv", "eval.csv", cwd=folder)
    assert "maze9" in res.stdout and "maze15" in res.stdout and "±" in res.stdout
    got = json.loads((folder / "eval.json").read_text())
    assert [r["suite"] for r in got] == ["maze9", "maze15"] and all(r["tasks"] == 8 for r in got)
    assert (folder / "run" / "eval" / "maze9.json").exists() and (folder / "run" / "eval" / "maze15.json").exists()
    assert len((folder / "eval.csv").read_text().splitlines()) == 3


def test_sweep_twice_skips_finished_points(folder: Path) -> None:
    (folder / "sweep.yaml").write_text(
        "name: two\nbase: tiny.yaml\nset: {generations: 2}\ngrid: {seed: [0, 1]}\n"
        "test: {suites: [maze9], count: 8}\n")
    first = cli("sweep", "sweep.yaml", "--out", "sw", cwd=folder)
    assert "seed-0" in first.stdout and "seed-1" in first.stdout
    summary = (folder / "sw" / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and "maze9" in summary[0]
    stamp = {p: p.stat().st_mtime_ns for p in (folder / "sw").rglob("*.npz")}
    second = cli("sweep", "sweep.yaml", "--out", "sw", cwd=folder)
    assert second.stderr.count("skipped") == 2, second.stderr
    assert {p: p.stat().st_mtime_ns for p in (folder / "sw").rglob("*.npz")} == stamp  # nothing rewritten
    # More generations for every point: the same command resumes them.
    third = cli("sweep", "sweep.yaml", "--out", "sw", "--set", "generations=3", cwd=folder)
    assert third.stderr.count("resumed at 2 -> 3") == 2, third.stderr
    for point in ("seed-0", "seed-1"):  # test results are redone for the newer genome
        assert json.loads((folder / "sw" / point / "eval" / "maze9.json").read_text())["generation"] == 3


def test_bad_config_is_one_line_exit_2(folder: Path) -> None:
    (folder / "bad.yaml").write_text(TINY.replace("sigma0: 0.05", "sigma0: -1e-3"))
    res = subprocess.run([sys.executable, "-m", "evoplastic.cli", "train", "bad.yaml", "--run-dir", "x"],
                         cwd=folder, capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "strategy.sigma0" in res.stderr and "bad.yaml" in res.stderr


def test_eval_protocol_file(folder: Path) -> None:
    (folder / "proto.yaml").write_text("suites: [maze9, maze15-spacious]\ncount: 4\nrepeats: 2\n")
    cli("eval", "run", "--tasks", "proto.yaml", "--json", "p.json", cwd=folder)
    got = json.loads((folder / "p.json").read_text())
    assert [(r["suite"], r["tasks"], r["lifetimes"]) for r in got] == [("maze9", 4, 8), ("maze15-spacious", 4, 8)]
    (folder / "bad.yaml").write_text("suite: [maze9]\n")
    res = subprocess.run([sys.executable, "-m", "evoplastic.cli", "eval", "run", "--tasks", "bad.yaml"],
                         cwd=folder, capture_output=True, text=True)
    assert res.returncode == 2 and "evaluation protocol" in res.stderr


def test_report_of_run_and_sweep(folder: Path) -> None:
    pytest.importorskip("matplotlib")
    out = cli("report", "run", cwd=folder)
    files = [Path(line) for line in out.stdout.split()]
    names = {f.name for f in files}
    assert {"learning_curves.png", "rollouts.png", "trajectories.png", "table.md", "index.md"} <= names
    for f in files:
        p = f if f.is_absolute() else folder / f
        assert p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (folder / "run" / "report" / "table.md").read_text()
    assert "decprnn-postdn" in table and "maze9" in table and "±" in table
    cli("report", "sw", cwd=folder)  # the sweep of test_sweep_twice_skips_finished_points
    assert len([ln for ln in (folder / "sw" / "report" / "table.md").read_text().splitlines()
                if ln.startswith("| seed-")]) == 2


def test_sweep_with_a_task_file_finds_its_results_again(folder: Path) -> None:
    cli("tasks", "make", "--size", "9", "--crowd", "0.3", "--count", "4", "--seed", "5",
        "--name", "my set", "--out", "mine.npz", cwd=folder)
    (folder / "sweep_file.yaml").write_text(
        "name: file\nbase: tiny.yaml\nset: {generations: 1}\ngrid: {seed: [0]}\ntest: {suites: [mine.npz]}\n")
    cli("sweep", "sweep_file.yaml", "--out", "swf", cwd=folder)
    result = folder / "swf" / "seed-0" / "eval" / "my_set.json"  # filed under the task set's name, not the file's
    stamp = result.stat().st_mtime_ns
    cli("sweep", "sweep_file.yaml", "--out", "swf", cwd=folder)
    assert result.stat().st_mtime_ns == stamp  # found again: not re-tested
    assert "my set" in (folder / "swf" / "summary.csv").read_text().splitlines()[0]
