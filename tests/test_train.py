"""The training loop: determinism, exact resume (also after kill -9 and SIGTERM), NaN fitness,
corrupt checkpoints, Ray == in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evoplastic import checkpoint as ckpt
from evoplastic import config as cfglib
from evoplastic import train
from evoplastic.checkpoint import CheckpointError
from evoplastic.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.yaml"
FAST = ["strategy.popsize=8", "tasks.repeats=2", "validation.count=8", "validation.interval=2",
        "checkpoint.interval=1", "checkpoint.keep=3", "tasks.schedule=[[0, 1], [3, 2]]",
        "workers.backend=inprocess", "model.hidden=16"]


def config(*extra: str) -> cfglib.ExperimentConfig:
    return cfglib.load(SMOKE, FAST + list(extra))


def run(cfg: cfglib.ExperimentConfig, run_dir: Path, generations: int) -> train.Trainer:
    t = train.Trainer(cfg, run_dir)
    t.start()
    t.run(generations)
    t.close()
    return t


def final(run_dir: Path) -> tuple[dict, dict]:
    arrays, meta, _ = ckpt.load_latest(run_dir)
    return arrays, meta


def assert_same_checkpoint(a: Path, b: Path, same_workers: bool = True) -> None:
    (xa, ma), (xb, mb) = final(a), final(b)
    assert sorted(xa) == sorted(xb)
    for k in xa:
        assert xa[k].dtype == xb[k].dtype and np.array_equal(xa[k], xb[k]), k
    # The stored configs may differ in the target generations (`--generations N` is written into
    # the run) and, across backends, in the workers section; nothing else.
    ca, cb = json.loads(ma.pop("config")), json.loads(mb.pop("config"))
    ca.pop("generations"), cb.pop("generations")
    if not same_workers:
        assert ca.pop("workers") != cb.pop("workers")
    assert ca == cb and ma == mb


def science_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "agent_steps_per_s")} for r in rows]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """An uninterrupted 6-generation run, the yardstick of the resume tests."""
    d = tmp_path_factory.mktemp("ref") / "run"
    run(config(), d, 6)
    return d


def test_run_directory_contents(reference_run: Path) -> None:
    d = reference_run
    for name in ("config.yaml", "metrics.csv", "metrics.jsonl", "mean.npz", "best.npz"):
        assert (d / name).exists(), name
    assert [p.name for p in ckpt.list_checkpoints(d)] == [f"ckpt-{g:07d}.npz" for g in (4, 5, 6)]
    rows = science_rows(d)
    assert [r["generation"] for r in rows] == list(range(7))
    assert [r.get("tasks") for r in rows[1:]] == [1, 1, 1, 2, 2, 2]  # the curriculum
    assert [("validation" in r) for r in rows] == [True, False, True, False, True, False, True]
    assert rows[-1]["evaluations"] == 6 * 8
    arrays, meta = final(d)
    assert meta["generation"] == 6 and meta["config_hash"] == config().science_hash()
    assert cfglib.load(d / "config.yaml") == config()


def test_same_seed_same_run_other_seed_differs(reference_run: Path, tmp_path: Path) -> None:
    run(config(), tmp_path / "a", 6)
    assert_same_checkpoint(reference_run, tmp_path / "a")
    assert science_rows(reference_run) == science_rows(tmp_path / "a")
    run(config("seed=1"), tmp_path / "b", 6)
    assert not np.array_equal(final(reference_run)[0]["mean_genome"], final(tmp_path / "b")[0]["mean_genome"])


def test_resume_equals_uninterrupted(reference_run: Path, tmp_path: Path) -> None:
    d = tmp_path / "run"
    run(config(), d, 3)
    t = train.Trainer.resume(d)
    assert t.generation == 3
    t.run(6)
    assert_same_checkpoint(reference_run, d)
    assert science_rows(reference_run) == science_rows(d)


def test_resume_with_a_new_schedule_equals_a_new_run_with_it(tmp_path: Path) -> None:
    """Adding a curriculum phase to a run (resume --schedule) gives, bit for bit, the run that had
    the longer schedule from the start; the change is logged and written to config.yaml."""
    longer = "tasks.schedule=[[0, 1], [3, 2], [5, 3]]"
    run(config(longer), tmp_path / "whole", 7)
    d = tmp_path / "extended"
    run(config(), d, 5)  # the old schedule [[0, 1], [3, 2]] agrees with the longer one up to here
    t = train.Trainer.resume(d, generations=7, schedule=[[0, 1], [3, 2], [5, 3]])
    t.run(7)
    assert_same_checkpoint(tmp_path / "whole", d)
    assert science_rows(tmp_path / "whole") == science_rows(d)
    assert [r.get("tasks") for r in science_rows(d)[1:]] == [1, 1, 1, 2, 2, 3, 3]
    assert cfglib.load(d / "config.yaml").tasks.schedule == ((0, 1), (3, 2), (5, 3))
    assert "tasks.schedule changed from generation 6 on" in (d / "events.log").read_text()
    # A plain resume keeps the new schedule: the newest checkpoint carries it.
    t = train.Trainer.resume(d, generations=8)
    assert t.cfg.tasks.schedule == ((0, 1), (3, 2), (5, 3))


def test_resume_refuses_a_schedule_that_rewrites_trained_generations(reference_run: Path, tmp_path: Path) -> None:
    d = tmp_path / "run"
    run(config(), d, 5)
    before = sorted(p.name for p in d.iterdir())
    with pytest.raises(UserError, match=r"--schedule gives 2 tasks at generation 3, which this run trained "
                                         r"with 1; a new schedule may change only generations 6 on"):
        train.Trainer.resume(d, schedule=[[0, 1], [2, 2]])
    with pytest.raises(cfglib.ConfigError, match="tasks.schedule"):
        train.Trainer.resume(d, schedule=[[1, 2]])  # must start at generation 0
    assert sorted(p.name for p in d.iterdir()) == before  # nothing written


def test_corrupt_newest_checkpoint_falls_back_and_still_ends_the_same(reference_run: Path, tmp_path: Path,
                                                                      caplog) -> None:
    d = tmp_path / "run"
    run(config(), d, 4)
    newest = ckpt.list_checkpoints(d)[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    t = train.Trainer.resume(d)
    assert t.generation == 3 and "truncated or corrupt checkpoint" in caplog.text
    t.run(6)
    assert_same_checkpoint(reference_run, d)


def test_refuses_to_overwrite_a_run_and_a_config_edited_under_it(reference_run: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="already holds a run; use `evoplastic resume"):
        train.Trainer(config(), reference_run).start()
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        train.Trainer.resume(tmp_path)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "evoplastic.cli", *args]


def _wait_for(path_glob: Path, pattern: str, timeout: float = 120.0) -> None:
    t0 = time.time()
    while not list(path_glob.glob(pattern)):
        if time.time() - t0 > timeout:
            raise TimeoutError(pattern)
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_killed_training_process_resumes_exactly(reference_run: Path, tmp_path: Path, how: str) -> None:
    d = tmp_path / "run"
    sets = [a for s in FAST for a in ("--set", s)]
    proc = subprocess.Popen(_cli("train", str(SMOKE), "--run-dir", str(d), "--generations", "6", *sets),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(d / "checkpoints", "ckpt-0000002.npz")
    proc.send_signal(getattr(signal, how))
    out, err = proc.communicate(timeout=60)
    if how == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        assert "stopped by SIGTERM; generation " in err and "is checkpointed in" in err
    done = final(d)[1]["generation"]
    assert 2 <= done < 6, "the process should have been stopped mid-run"
    res = subprocess.run(_cli("resume", str(d), "--generations", "6"), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert_same_checkpoint(reference_run, d)
    assert science_rows(reference_run) == science_rows(d)
    assert len((d / "command.txt").read_text().splitlines()) == 2


class NaNBackend:
    """Wraps the in-process backend and spoils one genome's fitness in generation 2."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def evaluate(self, genomes, tasks, repeats, seed):
        res = self.inner.evaluate(genomes, tasks, repeats, seed)
        if len(genomes) > 1:
            self.calls += 1
            if self.calls == 2:
                res.fitness[3] = np.nan
        return res

    def close(self) -> None:
        pass


def test_nan_fitness_is_dropped_and_logged(tmp_path: Path) -> None:
    from evoplastic import runner

    cfg = config()
    spec = runner.EvalSpec(cfg.model.id, cfg.model.hidden, batch=cfg.workers.batch)
    t = train.Trainer(cfg, tmp_path / "run", backend=NaNBackend(runner.InProcessBackend(spec)))
    t.start()
    t.run(3)
    rows = science_rows(tmp_path / "run")
    assert [r.get("dropped") for r in rows[1:]] == [0, 1, 0]
    assert np.isfinite(rows[2]["best_fitness"]) and np.isfinite(t.strategy.mean).all()
    log = (tmp_path / "run" / "events.log").read_text()
    assert "generation 2: 1 non-finite fitness value(s) (genomes [3]); dropped from the update" in log


@pytest.mark.slow
def test_ray_training_equals_inprocess(reference_run: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    d = tmp_path / "run"
    try:
        run(config("workers.backend=ray", "workers.count=2", "workers.chunks_per_worker=3"), d, 6)
    finally:
        ray.shutdown()
    assert_same_checkpoint(reference_run, d, same_workers=False)


@pytest.mark.slow
def test_long_quickstart_run_on_ray_equals_inprocess(tmp_path: Path) -> None:
    """The quickstart's settings for 240 generations (it used to diverge at generation 231: a
    lifetime's floats depended on which genomes shared its batch): Ray with 2 workers and 3 chunks
    each vs in-process in one chunk, every metrics row and the final checkpoint, bit for bit.
    The lock-step engine's batch split and compaction differ between the two, and so does the
    fused engine's unit split."""
    ray = pytest.importorskip("ray")
    # the old quickstart's population and repeats (40 x 2): the new one's 160 would take four times longer
    base = ["validation.count=64", "validation.interval=40", "checkpoint.interval=60", "strategy.popsize=40",
            "tasks.repeats=2"]
    quick = ROOT / "experiments" / "quickstart.yaml"
    a, b = tmp_path / "ray", tmp_path / "inprocess"
    try:
        run(cfglib.load(quick, base + ["workers.backend=ray", "workers.count=2", "workers.chunks_per_worker=3"]),
            a, 240)
    finally:
        ray.shutdown()
    run(cfglib.load(quick, base + ["workers.backend=inprocess", "workers.chunks_per_worker=1",
                                   "workers.batch=97"]), b, 240)
    assert len(science_rows(a)) >= 240
    assert science_rows(a) == science_rows(b)
    assert_same_checkpoint(a, b, same_workers=False)
