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
import json
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
from evoplastic import yamlio
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
    raw = yamlio.load(path, "sweep file")
    if raw is None:
        raise ConfigError(f"{path}: the file is empty; a sweep file needs at least base and grid")
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
        base = yamlio.load(base_path, "base config") or {}
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


def check_reuse(point: Point, run_dir: Path) -> None:
    """Refuse to continue a point whose stored run was trained with other science settings.

    Raises:
        ConfigError: naming the point and the keys whose values differ.
    """
    meta = _latest_meta(run_dir)
    if meta is None or meta["config_hash"] == point.config.science_hash():
        return
    stored = json.loads(meta["config"])
    wanted = point.config.to_dict()
    diff = [k for k in cfglib.differing_keys(stored, wanted)
            if k.split(".")[0] not in ("generations", "workers", "checkpoint", "name")]
    shown = ", ".join(f"{k} {_at(stored, k)!r} there, {_at(wanted, k)!r} now" for k in diff[:4])
    raise ConfigError(f"{run_dir}: this point was trained with other settings ({shown or 'config hash differs'}); "
                      "use another --out, or delete the point's directory to train it again")


def _at(d: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _run_point(point: Point, run_dir: Path, argv: list[str], tensorboard: bool = False) -> str:
    from evoplastic.dirlock import DirLock

    with DirLock(run_dir, "run directory"):
        return _train_point(point, run_dir, argv, tensorboard)


def _train_point(point: Point, run_dir: Path, argv: list[str], tensorboard: bool = False) -> str:
    from evoplastic import train

    check_reuse(point, run_dir)
    state, gen = status(run_dir, point.config)
    if state == "trained":
        return f"{point.name}: trained ({gen} generations), skipped"
    if state == "unfinished":
        trainer = train.Trainer.resume(run_dir, point.config.to_dict()["workers"],
                                       generations=point.config.generations)
    else:
        trainer = train.Trainer(point.config, run_dir)
    trainer.label, trainer.tensorboard = point.name, tensorboard
    try:
        trainer.prepare()
        train.record_command(run_dir, argv)
        trainer.run(point.config.generations)
    finally:
        trainer.close()
    return f"{point.name}: {'resumed at ' + str(gen) if state == 'unfinished' else 'trained'} -> {trainer.generation}"


def _test_point(sweep: Sweep, point: Point, run_dir: Path) -> None:
    from evoplastic import evaluate

    suites = list(sweep.test.get("suites") or [])
    src = evaluate.resolve(str(run_dir), "best")
    protocol = _protocol(sweep, point)
    todo = [s for s in suites if _stale(_test_result(run_dir, s), protocol, src[0].meta["generation"], s)]
    if not todo:
        return
    evaluate.evaluate_sources(src, todo, repeats=protocol["repeats"], count=protocol["count"],
                              seed=protocol["seed"], profile=protocol["profile"], rollouts=protocol["rollouts"],
                              weights=protocol["weights"],
                              backend="inprocess" if point.config.workers.backend == "inprocess" else "ray",
                              address=point.config.workers.address)


def _protocol(sweep: Sweep, point: Point) -> dict[str, Any]:
    """How a point's test results are made: what a stored result must match to be reused."""
    lt = point.config.lifetime
    return {"repeats": int(sweep.test.get("repeats", 1)), "count": sweep.test.get("count"),
            "seed": int(sweep.test.get("seed", 0)), "profile": lt.profile, "rollouts": lt.rollouts,
            "weights": None if lt.weights is None else list(lt.weights)}


def _stale(result: dict[str, Any] | None, protocol: dict[str, Any], generation: int, suite: str) -> bool:
    """True unless ``result`` is of this checkpoint's best genome under exactly this protocol."""
    if result is None:
        return True
    from evoplastic.envs import tasks as tasklib
    from evoplastic.lifetime import PROFILES

    ts = tasklib.load(suite).head(protocol["count"])
    rollouts = protocol["rollouts"] or PROFILES[protocol["profile"]].rollouts
    want = {"generation": generation, "genome_kind": "best", "seed": protocol["seed"], "tasks": len(ts),
            "lifetimes": len(ts) * protocol["repeats"], "rollouts": rollouts, "profile": protocol["profile"],
            "tasks_digest": ts.digest()[:16]}
    if protocol["weights"] is not None:
        want["weights"] = protocol["weights"]
    diff = [k for k, v in want.items() if result.get(k) != v]
    if diff:
        log.warning("%s: stored test result differs in %s; testing again", suite, ", ".join(diff))
    return bool(diff)


def _test_result(run_dir: Path, suite: str) -> dict[str, Any] | None:
    """The stored test result of a point on a ``test.suites`` entry (None: not tested yet)."""
    import json

    from evoplastic import evaluate

    f = evaluate.result_path(run_dir, evaluate.suite_name(suite))
    return json.loads(f.read_text()) if f.exists() else None


def run(sweep: Sweep, out: Path, argv: list[str], tensorboard: bool = False) -> list[str]:
    """Train (or resume, or skip) every point, test it, and write the summary (``tensorboard``: also
    log each point's metrics to ``<point>/tensorboard``)."""
    for p in sweep.points:  # every stored run checked before anything is written or started
        check_reuse(p, out / p.name)
    points = sweep.points
    if any(p.config.workers.backend == "ray" for p in points):
        from evoplastic import localray

        address = points[0].config.workers.address
        local = localray.init_kwargs(address, sum(p.config.workers.count or 0 for p in points[:sweep.parallel]))
        import ray

        from evoplastic.runner import init_ray

        init_ray(address, **local)  # once, before points start side by side
        if sweep.parallel > 1:  # share the cluster's CPUs between the points running at once
            share = max(1, int(ray.cluster_resources().get("CPU", 1)) // sweep.parallel)
            points = tuple(_with_workers(p, share) for p in points)
    out.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(sweep.raw, sort_keys=False)
    write_atomic(out / "sweep.yaml", lambda f: f.write(text.encode()))
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
    from evoplastic import sweep_report

    sweep_report.write(out)  # every point's validation against wall time: walltime.md/.csv/.png
