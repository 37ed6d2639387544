"""What a run directory holds, read for reports: config, metrics.csv and eval/*.json results."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic import config as cfglib
from evoplastic.errors import UserError

CURVES = ("best_fitness", "mean_fitness", "validation", "best_validation", "sigma", "seconds")
RESULT_KEYS = ("rollout_mean", "rollout_se", "goal_rate", "weighted_mean", "weighted_se")


@dataclass
class Run:
    """What the report reads from one run directory.

    Attributes:
        metrics: column -> (G,) float64 from metrics.csv (NaN where a row has no value);
            empty if the run has no metrics yet.
        evals: suite name -> result dict (the results schema), in file-name order.
        notes: problems met while reading (unreadable eval files, ...).
    """

    path: Path
    name: str
    cfg: cfglib.ExperimentConfig
    metrics: dict[str, np.ndarray]
    evals: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def best_validation(self) -> tuple[float, int] | None:
        """(best validation score, its generation) from metrics.csv, or None before any."""
        v = self.metrics.get("validation")
        if v is None or np.isnan(v).all():
            return None
        i = int(np.nanargmax(v))  # first maximum: the trainer keeps the first of equal scores
        return float(v[i]), int(self.metrics["generation"][i])


# -- reading -------------------------------------------------------------------------------------

def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """metrics.csv as columns of float64 (empty cells and missing columns -> NaN); {} if the file
    is missing or has no rows."""
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keys = list(dict.fromkeys(["generation", *CURVES, *(rows[0] if rows else [])]))
    return {k: np.array([float(r[k]) if r.get(k) not in (None, "") else math.nan for r in rows])
            for k in keys} if rows else {}


def read_evals(run_dir: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The ``eval/*.json`` results of a run (suite -> result) and notes on files skipped."""
    out: dict[str, dict[str, Any]] = {}
    notes = []
    for p in sorted((run_dir / "eval").glob("*.json"), key=_natural):
        try:
            res = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            notes.append(f"`{p}` skipped: unreadable ({type(exc).__name__})")
            continue
        if not isinstance(res, dict) or any(k not in res for k in RESULT_KEYS):
            notes.append(f"`{p}` skipped: not one result of the results schema")
            continue
        out[str(res.get("suite") or p.stem)] = res
    # One genome per report: results of an older genome than the newest evaluated (an `eval` run
    # again on some suites after training went on) are left out, not shown beside the others.
    gens = {k: r.get("generation") for k, r in out.items() if isinstance(r.get("generation"), int)}
    if len(set(gens.values())) > 1:
        newest = max(gens.values())
        for k, g in gens.items():
            if g != newest:
                notes.append(f"`eval/{k}.json` skipped: it is of the generation-{g} genome, the newest results "
                             f"of generation {newest}; `evoplastic eval {run_dir} --tasks {k}` evaluates it again")
                del out[k]
    return out, notes


def _natural(p: Path) -> list:
    """Sort key: maze9 before maze15."""
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p.name)]


def load_run(path: Path, name: str | None = None) -> Run:
    """Read a run directory's config, metrics and evaluation results."""
    path = Path(path)
    cfg = cfglib.load(path / "config.yaml")
    evals, notes = read_evals(path)
    return Run(path, name or path.name, cfg, read_metrics(path / "metrics.csv"), evals, notes)


def discover(path: Path) -> tuple[str, list[Run]]:
    """("run", [run]) or ("sweep", [run per point]) for a run or sweep directory."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such run or sweep directory")
    if (path / "config.yaml").exists() and not (path / "sweep.yaml").exists():
        return "run", [load_run(path)]
    points = sorted(p for p in path.iterdir() if p.is_dir() and (p / "config.yaml").exists())
    if not points:
        raise UserError(f"{path}: neither a run directory (config.yaml) nor a sweep directory "
                         "(sweep.yaml and run directories)")
    return "sweep", [load_run(p) for p in points]
