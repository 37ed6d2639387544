"""`evoplastic status RUN_OR_SWEEP_DIR`: where each run is, its best validation, its ETA.

Reads only the files a run writes as it goes (``config.yaml``, ``metrics.jsonl``), so it works
while the run is going, from another shell or machine, and never disturbs it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from evoplastic.atomic import write_atomic
from evoplastic.progress import format_duration

# A run whose metrics have not changed for this many generation-times (and at least this many
# seconds) is reported as stopped rather than running.
STALE_GENERATIONS, STALE_SECONDS = 5, 120.0


TARGET = "target.json"  # written by a training process when it starts: its stop generation, pid, host


def write_target(run_dir: Path, generations: int) -> None:
    """Record, for :func:`run_status`, where the run now going on in ``run_dir`` will stop and who runs it."""
    info = {"target": int(generations), "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    write_atomic(Path(run_dir) / TARGET, lambda f: f.write(json.dumps(info).encode()))


def last_validation(run_dir: Path) -> float | None:
    """The newest validation score in ``run_dir/metrics.jsonl`` (None: none yet)."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = path.read_text().splitlines() if path.exists() else []
    for line in reversed(rows):
        row = json.loads(line)
        if "validation" in row:
            return float(row["validation"])
    return None


def _alive(info: dict[str, Any]) -> bool | None:
    """Whether the process of a target record still runs (None: on another host, cannot tell)."""
    if info.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def run_dirs(path: Path) -> list[Path]:
    """``path`` if it is a run directory (has ``config.yaml`` and ``metrics.jsonl``), else the run
    directories directly inside it (a sweep), in name order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: neither a run nor a sweep directory.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such run or sweep directory")
    if (path / "metrics.jsonl").is_file():
        return [path]
    runs = sorted(p for p in path.iterdir() if (p / "metrics.jsonl").is_file())
    if not runs:
        raise ValueError(f"{path}: neither a run directory (no metrics.jsonl) nor a sweep directory "
                         "(no run directories inside)")
    return runs


def run_status(run_dir: Path, now: float | None = None, window: int = 20) -> dict[str, Any]:
    """One run's state from its files.

    Returns:
        ``name``, ``generation``, ``total`` (where the last training command stops, else the
        config's generations), ``state`` (``finished`` | ``running`` | ``stopped``: asked of the
        training process if it is on this host, else judged by the age of the metrics), ``best_validation`` and its ``best_generation`` (None before the
        first validation), ``s_per_gen`` (mean of the last ``window`` generations' seconds),
        ``eta_s`` (remaining generations x s_per_gen; 0 when finished) and ``age_s`` (seconds
        since the metrics were last written).
    """
    now = time.time() if now is None else now
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    target = json.loads((run_dir / TARGET).read_text()) if (run_dir / TARGET).exists() else {}
    total = int(target.get("target", cfg.get("generations", 0)))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    gen = int(rows[-1]["generation"]) if rows else 0
    if not target:  # a run from before target.json: it went at least as far as it went
        total = max(total, gen)
    secs = [float(r["seconds"]) for r in rows if "seconds" in r][-window:]
    per_gen = sum(secs) / len(secs) if secs else math.nan
    vals = [(float(r["validation"]), int(r["generation"])) for r in rows if "validation" in r]
    best = max(vals, key=lambda v: v[0]) if vals else (None, None)
    age = now - (run_dir / "metrics.jsonl").stat().st_mtime
    alive = _alive(target) if target else None
    if gen >= total:
        state = "finished"
    elif alive is not None:  # the training process is on this host: ask it
        state = "running" if alive else "stopped"
    elif age <= max(STALE_SECONDS, STALE_GENERATIONS * (per_gen if math.isfinite(per_gen) else 0.0)):
        state = "running"  # elsewhere: judged by how recently the metrics were written
    else:
        state = "stopped"
    return {"name": run_dir.name, "path": str(run_dir), "generation": gen, "total": total, "state": state,
            "best_validation": best[0], "best_generation": best[1], "s_per_gen": per_gen,
            "eta_s": 0.0 if state == "finished" else per_gen * (total - gen), "age_s": age}


def format_status(rows: list[dict[str, Any]]) -> str:
    """A table, one line per run; ETA of a stopped run is the time it would still need."""
    width = max(4, *(len(r["name"]) for r in rows))
    out = [f"{'run':<{width}}  {'state':<8}  {'generation':>15}  {'best validation':>21}  {'s/gen':>6}  "
           f"{'ETA':>7}  last write"]
    for r in rows:
        best = "-" if r["best_validation"] is None else f"{r['best_validation']:+.3f} (gen {r['best_generation']})"
        per = f"{r['s_per_gen']:.2f}" if math.isfinite(r["s_per_gen"]) else "-"
        eta = "-" if r["state"] == "finished" else format_duration(r["eta_s"])
        out.append(f"{r['name']:<{width}}  {r['state']:<8}  {r['generation']:>7,}/{r['total']:<7,}  {best:>21}  "
                   f"{per:>6}  {eta:>7}  {format_duration(r['age_s'])} ago")
    return "\n".join(out)
