"""Sweeps: a base config plus a grid of key paths expands to one run directory per point.

Sweep file::

    name: sigma-seed
    base: quickstart.yaml          # relative to this file (or an inline mapping)
    set: {generations: 50}         # overrides for every point (optional)
    grid:                          # every combination is a point
      strategy.sigma0: [0.01, 0.03]
      seed: [0, 1]
    parallel: 1                    # points run side by side on the same Ray cluster
    test: {suites: [maze9, maze15], count: 256, repeats: 1}   # evaluated after training (optional)

Running the same sweep again resumes unfinished points and skips finished ones (a point is
finished when its newest checkpoint has reached its generations and its test results exist).
``summary.csv`` and ``summary.md`` collect each point's best validation and test scores.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evoplastic import checkpoint as ckpt
from evoplastic import config as cfglib
from evoplastic.atomic import write_atomic
from evoplastic.config import ConfigError

log = logging.getLogger("evoplastic.sweep")
SWEEP_KEYS = {"name", "base", "set", "grid", "parallel", "test"}
TEST_KEYS = {"suites", "count", "repeats", "seed"}


@dataclass(frozen=True)
class Point:
    name: str
    values: dict[str, Any]
    config: cfglib.ExperimentConfig


@dataclass(frozen=True)
class Sweep:
    name: str
    points: tuple[Point, ...]
    parallel: int
    test: dict[str, Any]
    raw: dict[str, Any]


def _point_name(values: dict[str, Any]) -> str:
    parts = [f"{k.split('.')[-1]}-{v}" for k, v in values.items()]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "_".join(parts)) or "point"


def load(path: str | Path, overrides: list[str] | None = None) -> Sweep:
    """Read and expand a sweep file; every point's config is checked before anything runs."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such sweep file")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    for key in raw:
        if key not in SWEEP_KEYS:
            raise ConfigError(f"{path}: {key}: unknown key; valid keys: {', '.join(sorted(SWEEP_KEYS))}")
    base = raw.get("base", {})
    if isinstance(base, str):
        base_path = (path.parent / base).resolve()
        if not base_path.exists():
            raise FileNotFoundError(f"{path}: base config {base_path} not found")
        base = yaml.safe_load(base_path.read_text()) or {}
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{path}: grid: expected a mapping of key.path: [values, ...]")
    common = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in (raw.get("set") or {}).items()]
    points = []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        sets = common + (overrides or []) + [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                                             for k, v in values.items()]
        name = _point_name(values)
        cfg = cfglib.from_dict(cfglib.apply_overrides(base, sets), f"{path} (point {name})")
        points.append(Point(name, values, cfg))
    if len({p.name for p in points}) != len(points):
        raise ConfigError(f"{path}: grid: two points get the same directory name")
    test = dict(raw.get("test") or {})
    for key in test:
        if key not in TEST_KEYS:
            raise ConfigError(f"{path}: test.{key}: unknown key; valid keys: {', '.join(sorted(TEST_KEYS))}")
    parallel = raw.get("parallel", 1)
    if not isinstance(parallel, int) or parallel < 1:
        raise ConfigError(f"{path}: parallel: expected an integer >= 1, got {parallel!r}")
    return Sweep(str(raw.get("name", path.stem)), tuple(points), parallel, test, raw)


def _latest_meta(run_dir: Path) -> dict[str, Any] | None:
    """Metadata of a point's newest good checkpoint (None: no checkpoint yet)."""
    if not ckpt.list_checkpoints(run_dir):
        return None
    return ckpt.load_latest(run_dir)[1]


def _state(meta: dict[str, Any] | None, cfg: cfglib.ExperimentConfig) -> tuple[str, int]:
    if meta is None:
        return "new", 0
    g = int(meta["generation"])
    return ("trained" if g >= cfg.generations else "unfinished"), g


def status(run_dir: Path, cfg: cfglib.ExperimentConfig) -> tuple[str, int]:
    """("new" | "unfinished" | "trained", generation) of a point's run directory."""
    return _state(_latest_meta(run_dir), cfg)


def _run_point(point: Point, run_dir: Path, argv: list[str], tensorboard: bool = False) -> str:
    from evoplastic import train

    state, gen = status(run_dir, point.config)
    if state == "trained":
        return f"{point.name}: trained ({gen} generations), skipped"
    if state == "unfinished":
        trainer = train.Trainer.resume(run_dir, point.config.to_dict()["workers"])
    else:
        trainer = train.Trainer(point.config, run_dir)
    trainer.label, trainer.tensorboard = point.name, tensorboard
    train.record_command(run_dir, argv)
    try:
        if state == "new":
            trainer.start()
        trainer.run(point.config.generations)
    finally:
        trainer.close()
    return f"{point.name}: {'resumed at ' + str(gen) if state == 'unfinished' else 'trained'} -> {trainer.generation}"


def _test_point(sweep: Sweep, point: Point, run_dir: Path) -> None:
    from evoplastic import evaluate

    suites = list(sweep.test.get("suites") or [])
    src = evaluate.resolve(str(run_dir), "best")
    todo = [s for s in suites if _tested_at(run_dir, s) != src[0].meta["generation"]]
    if not todo:
        return
    evaluate.evaluate_sources(src, todo, repeats=int(sweep.test.get("repeats", 1)),
                              count=sweep.test.get("count"), seed=int(sweep.test.get("seed", 0)),
                              profile=point.config.lifetime.profile, rollouts=point.config.lifetime.rollouts,
                              backend="inprocess" if point.config.workers.backend == "inprocess" else "ray",
                              address=point.config.workers.address)


def _test_result(run_dir: Path, suite: str) -> dict[str, Any] | None:
    """The stored test result of a point on a ``test.suites`` entry (None: not tested yet)."""
    import json

    from evoplastic import evaluate

    f = evaluate.result_path(run_dir, evaluate.suite_name(suite))
    return json.loads(f.read_text()) if f.exists() else None


def _tested_at(run_dir: Path, suite: str) -> int | None:
    """The checkpoint generation whose best genome the stored test result is of (None: none)."""
    result = _test_result(run_dir, suite)
    return None if result is None else result.get("generation")


def run(sweep: Sweep, out: Path, argv: list[str], tensorboard: bool = False) -> list[str]:
    """Train (or resume, or skip) every point, test it, and write the summary (``tensorboard``: also
    log each point's metrics to ``<point>/tensorboard``)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text(yaml.safe_dump(sweep.raw, sort_keys=False))
    points = sweep.points
    if any(p.config.workers.backend == "ray" for p in points):
        from evoplastic import localray

        address = points[0].config.workers.address
        local = localray.init_kwargs(address, sum(p.config.workers.count or 0 for p in points[:sweep.parallel]))
        import ray

        if not ray.is_initialized():  # once, before points start side by side
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     **local)
        if sweep.parallel > 1:  # share the cluster's CPUs between the points running at once
            share = max(1, int(ray.cluster_resources().get("CPU", 1)) // sweep.parallel)
            points = tuple(_with_workers(p, share) for p in points)
    lock = threading.Lock()
    lines: list[str] = []

    def one(point: Point) -> None:
        run_dir = out / point.name
        msg = _run_point(point, run_dir, argv, tensorboard)
        _test_point(sweep, point, run_dir)
        with lock:
            lines.append(msg)
            log.warning("%s", msg)

    if sweep.parallel == 1:
        for p in points:
            one(p)
    else:
        with ThreadPoolExecutor(sweep.parallel) as pool:
            for f in [pool.submit(one, p) for p in points]:
                f.result()
    write_summary(sweep, out)
    return lines


def _with_workers(point: Point, count: int) -> Point:
    if point.config.workers.count is not None:
        return point
    w = dataclasses.replace(point.config.workers, count=count)
    return dataclasses.replace(point, config=dataclasses.replace(point.config, workers=w))


def summary_rows(sweep: Sweep, out: Path) -> list[dict[str, Any]]:
    rows = []
    for p in sweep.points:
        run_dir = out / p.name
        row: dict[str, Any] = {"point": p.name, **p.values}
        meta = _latest_meta(run_dir)
        state, gen = _state(meta, p.config)
        row.update(state=state, generation=gen)
        if meta is not None:
            row.update(best_validation=round(meta["best_validation"], 4), best_generation=meta["best_generation"])
        for s in sweep.test.get("suites") or []:
            r = _test_result(run_dir, s)
            if r is not None:
                row[r["suite"]] = f"{r['weighted_mean']:+.3f} ± {r['weighted_se']:.3f}"
        rows.append(row)
    return rows


def write_summary(sweep: Sweep, out: Path) -> None:
    rows = summary_rows(sweep, out)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, keys)
    w.writeheader()
    w.writerows(rows)
    write_atomic(out / "summary.csv", lambda f: f.write(buf.getvalue().encode()))
    md = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    md += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    text = f"# Sweep {sweep.name}\n\n" + "\n".join(md) + "\n"
    write_atomic(out / "summary.md", lambda f: f.write(text.encode()))
