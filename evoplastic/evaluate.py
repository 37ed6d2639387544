"""`evoplastic eval`: saved genomes (files, runs, sweeps, reference checkpoints) on test suites.

Each result is the results schema of :mod:`evoplastic.results` plus the source; a run directory's
results also go to ``RUN_DIR/eval/<suite>.json``, where reports and sweep summaries read them.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from evoplastic import lifetime, runner
from evoplastic.envs import tasks as tasklib
from evoplastic.errors import UserError
from evoplastic.results import write_json

AUTO_RAY_LIFETIMES = 1024  # backend "auto": Ray workers from this many lifetimes per suite


@dataclass
class Source:
    """One genome to evaluate and where it came from."""

    label: str
    genome: np.ndarray
    model: str
    hidden: int
    run_dir: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def is_run_dir(path: Path) -> bool:
    return (path / "checkpoints").is_dir()


def sweep_points(path: Path) -> list[Path]:
    """Run directories directly under a sweep directory, in name order."""
    return sorted(p for p in path.iterdir() if p.is_dir() and is_run_dir(p))


def _from_run(run_dir: Path, which: str, label: str) -> Source:
    from evoplastic import checkpoint as ckpt

    arrays, meta, path = ckpt.load_latest(run_dir)
    key = f"{which}_genome"
    if key not in arrays:
        raise UserError(f"{run_dir}: no {which} genome yet (no validation has run); try --genome mean")
    return Source(label, arrays[key], meta["model"], int(meta["hidden"]), run_dir,
                  {"generation": meta["generation"], "checkpoint": str(path), "genome_kind": which})


def resolve(source: str, which: str = "best", model: str | None = None, hidden: int | None = None) -> list[Source]:
    """A genome ``.npz``, a reference ``.dat`` checkpoint (or the fetched ``paper-genome``), a run
    directory or a sweep directory."""
    from evoplastic import genome as genome_io

    from evoplastic import reference_files

    published = reference_files.lookup(source, "genome")  # a short name such as paper-genome
    path = published or Path(source)
    if published is not None:
        model = model or reference_files.FILES[source].model
    if path.is_dir():
        if is_run_dir(path):
            return [_check(_from_run(path, which, path.name), model)]
        points = sweep_points(path)
        if not points:
            raise UserError(f"{source}: neither a run directory (no checkpoints/) nor a sweep directory "
                             "(no run directories inside)")
        return [_check(_from_run(p, which, p.name), model) for p in points]
    if path.suffix == ".dat":  # a reference checkpoint: its mean vector (method §6)
        from evoplastic import reference

        if not model:
            raise UserError(f"{source}: a reference checkpoint names no model; pass --model")
        g, meta = reference.import_genome(path, model, hidden or 64)
        return [Source(source if published else path.name, g, model, hidden or 64, None, dict(meta))]
    g, meta = genome_io.load(path)
    m = model or meta.get("model")
    if m is None:
        raise UserError(f"{source}: the genome names no model; pass --model")
    return [_check(Source(path.name, g, m, int(hidden or meta.get("hidden", 64)), None, meta), model)]


def _check(src: Source, model: str | None) -> Source:
    if model and model != src.model:
        raise UserError(f"{src.label} holds a {src.model} genome, not {model}")
    return src


PROTOCOL_KEYS = {"suites", "count", "repeats"}


def expand_protocols(entries: list[str]) -> tuple[list[str], dict[str, int]]:
    """``--tasks`` entries with evaluation protocol files (YAML: suites, count, repeats) expanded.

    Returns the suites and the protocol's settings (used where the command line gives none).
    """
    import yaml

    suites, settings = [], {}
    for entry in entries:
        if not entry.endswith((".yaml", ".yml")):
            suites.append(entry)
            continue
        path = Path(entry)
        if not path.exists():
            raise FileNotFoundError(f"{entry}: no such evaluation protocol file")
        data = yaml.safe_load(path.read_text()) or {}
        bad = set(data) - PROTOCOL_KEYS if isinstance(data, dict) else {"<top level>"}
        if bad or not isinstance(data.get("suites"), list):
            raise UserError(f"{entry}: an evaluation protocol is a mapping with suites: [...] and optional "
                             f"count, repeats (unknown: {', '.join(sorted(bad)) or 'none'})")
        suites += [str(s) for s in data["suites"]]
        for key in ("count", "repeats"):
            if key in data:
                if settings.get(key, data[key]) != data[key]:
                    raise UserError(f"{entry}: {key} {data[key]} disagrees with another protocol's {settings[key]}")
                settings[key] = int(data[key])
    return suites, settings


def result_path(run_dir: Path, suite: str) -> Path:
    """Where a run's result on the task set named ``suite`` is kept: ``RUN_DIR/eval/<suite>.json``."""
    return Path(run_dir) / "eval" / (re.sub(r"[^A-Za-z0-9._-]+", "_", suite) + ".json")


def suite_name(spec: str) -> str:
    """The name a ``--tasks`` entry's results are filed under (the task set's own name)."""
    return spec if spec in tasklib.SUITES else tasklib.load(spec).name


def evaluate_sources(sources: list[Source], suites: list[str], *, repeats: int = 1, rollouts: int | None = None,
                     weights: tuple[float, ...] | None = None, seed: int = 0, profile: str = "evoplastic",
                     count: int | None = None, backend: str = "auto", workers: int | None = None,
                     address: str | None = None, log: Callable[[str], None] | None = None,
                     engine: str = "auto") -> list[dict[str, Any]]:
    """Every source on every suite; one results-schema dict per (source, suite)."""
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    task_sets = [tasklib.load(s).head(count) for s in suites]
    kind = backend
    if kind == "auto":
        big = max(len(t) for t in task_sets) * repeats >= AUTO_RAY_LIFETIMES
        kind = "ray" if big and (workers or os.cpu_count() or 1) > 1 else "inprocess"
    rows, n, i = [], len(sources) * len(task_sets), 0
    for src in sources:
        spec = lifetime.EvalSpec(src.model, src.hidden, profile, rollouts, weights, engine=engine)
        kw = {} if kind == "inprocess" else dict(workers=workers, address=address)
        be = runner.make_backend(kind, spec, chunks_per_worker=8, **kw)
        try:
            for spec_text, ts in zip(suites, task_sets):
                i += 1
                t0 = time.perf_counter()
                res = be.evaluate(src.genome[None], ts, repeats, seed)
                seconds = time.perf_counter() - t0
                row = res.summary(0, suite=ts.name, source=spec_text, tasks_digest=ts.digest()[:16],
                                  genome=src.label, seed=seed,
                                  seconds=round(seconds, 3), agent_steps=res.agent_steps,
                                  backend=kind, **{k: v for k, v in src.meta.items() if k in
                                                   ("generation", "genome_kind", "checkpoint")})
                rows.append(row)
                if src.run_dir is not None:
                    write_json(row, result_path(src.run_dir, ts.name))
                log(f"[{i}/{n}] {src.label} on {ts.name} ({len(ts):,} tasks x {repeats}): "
                    f"weighted {row['weighted_mean']:+.3f} ± {row['weighted_se']:.3f} in {seconds:.1f} s")
        finally:
            be.close()
    return rows


CSV_FIELDS = ["genome", "suite", "tasks", "lifetimes", "rollouts", "weighted_mean", "weighted_se",
              "last_mean", "last_se", "last_goal_rate", "last_steps", "model", "hidden", "profile", "seed", "seconds"]


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """One line per result: the weighted score and the last rollout's figures."""
    from evoplastic.atomic import write_atomic

    def line(r: dict[str, Any]) -> dict[str, Any]:
        return {**{k: r.get(k, "") for k in CSV_FIELDS}, "last_mean": r["rollout_mean"][-1],
                "last_se": r["rollout_se"][-1], "last_goal_rate": r["goal_rate"][-1],
                "last_steps": r["steps_mean"][-1]}

    def write(f) -> None:
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, CSV_FIELDS)
        w.writeheader()
        w.writerows(line(r) for r in rows)
        f.write(buf.getvalue().encode())

    write_atomic(path, write)
