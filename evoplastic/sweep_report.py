"""A sweep at equal wall time: every point's validation against wall time in one figure, and a table.

``write(SWEEP_DIR)`` writes into the sweep directory (beside ``summary.md``):

- ``walltime.png``: validation of the mean genome against cumulative wall time (left) and training
  agent-steps (right), one colour per point, dotted: best so far. A grey line marks the common
  budget: the wall time of the finished point that took least (of the point that has trained
  least while none has finished), the longest span every finished point covers.
- ``walltime.md`` / ``walltime.csv``: per point, whether it has finished its generations, wall time
  and agent-steps spent, best validation with the wall time, generation and agent-steps at which it
  was first reached, and the best validation within the common budget (the fair comparison while
  points differ in how long they have run) in wall time and, likewise, in agent-steps: on a machine
  shared with other jobs wall time also measures their load, agent-steps only the work done.
  Finished points come first, best within the wall-time budget first.

Wall time is the sum of metrics.csv's ``seconds`` (each generation's ask, evaluation, tell and
validation; not checkpoint writes, nor the gaps between a stop and a resume). Agent-steps are the
training lifetimes' (``agent_steps``), not validation's. Both are read from what the runs wrote, so
the report of a sweep that is still running is a true snapshot:
``python -m evoplastic.sweep_report SWEEP_DIR`` (several sweeps in one figure: ``python -m
evoplastic.sweep_report SWEEP_DIR OTHER_SWEEP_DIR... --out DIR``). The sweep command writes it with
its summary.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoplastic.atomic import write_atomic
from evoplastic.rundir import Run, discover

COLUMNS = ("point", "state", "generations", "wall_min", "agent_steps_M", "best_validation", "best_generation",
           "time_to_best_min", "steps_to_best_M", "last_validation", "best_in_common_min",
           "best_in_common_steps")


@dataclass(frozen=True)
class Curve:
    """One point's validations on its clocks: every array is (V,), one entry per validation."""

    name: str
    minutes: np.ndarray  # cumulative wall time at the validation
    steps: np.ndarray  # cumulative training agent-steps at the validation
    generation: np.ndarray
    validation: np.ndarray
    total_minutes: float  # of the whole run so far
    total_steps: float
    generations: int
    target: int  # the generations the point is configured to train

    @property
    def finished(self) -> bool:
        return self.generations >= self.target


def curve(run: Run) -> Curve | None:
    """The validation curve of a run against wall time and agent-steps; None before any metrics."""
    m = run.metrics
    if not m or "validation" not in m:
        return None
    minutes = np.nancumsum(np.nan_to_num(m["seconds"], nan=0.0)) / 60.0
    steps = np.nancumsum(np.nan_to_num(m.get("agent_steps", np.zeros_like(minutes)), nan=0.0))
    v = np.isfinite(m["validation"])
    return Curve(run.name, minutes[v], steps[v], m["generation"][v].astype(int), m["validation"][v],
                 float(minutes[-1]), float(steps[-1]), int(m["generation"][-1]), run.cfg.generations)


def common_budget(curves: list[Curve]) -> tuple[float, float]:
    """(minutes, agent-steps) every finished point has trained for (every point, while none has)."""
    done = [c for c in curves if c.finished] or curves
    return min(c.total_minutes for c in done), min(c.total_steps for c in done)


def _best_within(values: np.ndarray, clock: np.ndarray, budget: float) -> float | str:
    within = values[clock <= budget * (1 + 1e-9)]
    return round(float(within.max()), 4) if within.size else ""


def row(c: Curve, budget: tuple[float, float]) -> dict[str, object]:
    """The table row of one point (see the module docstring); empty cells before any validation."""
    out: dict[str, object] = {"point": c.name, "state": "finished" if c.finished else "unfinished",
                              "generations": c.generations, "wall_min": round(c.total_minutes, 2),
                              "agent_steps_M": round(c.total_steps / 1e6, 2)}
    if not c.validation.size:
        return out
    i = int(np.argmax(c.validation))  # the first maximum, as the trainer keeps the first of equal scores
    out.update(best_validation=round(float(c.validation[i]), 4), best_generation=int(c.generation[i]),
               time_to_best_min=round(float(c.minutes[i]), 2), steps_to_best_M=round(float(c.steps[i]) / 1e6, 2),
               last_validation=round(float(c.validation[-1]), 4),
               best_in_common_min=_best_within(c.validation, c.minutes, budget[0]),
               best_in_common_steps=_best_within(c.validation, c.steps, budget[1]))
    return out


def table(curves: list[Curve]) -> list[dict[str, object]]:
    """Rows of every point with metrics, best validation within the common budget first."""
    if not curves:
        return []
    budget = common_budget(curves)
    rows = [row(c, budget) for c in curves]
    return sorted(rows, key=lambda r: (r["state"] != "finished", -float(r.get("best_in_common_min") or -np.inf)))


def format_markdown(rows: list[dict[str, object]], budget: tuple[float, float], title: str) -> str:
    head = (f"# {title}: validation at equal wall time\n\n"
            f"Common budget: {budget[0]:.2f} min of wall time, {budget[1] / 1e6:.2f}M agent-steps (the least a "
            "finished point took). Validation is the mean "
            "genome's weighted score on the run's validation suite; wall time sums metrics.csv `seconds`; "
            "agent-steps are training steps.\n\n")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in COLUMNS) + " |" for r in rows]
    return head + "\n".join(lines) + "\n"


def plot(curves: list[Curve], path: Path, title: str) -> Path:
    """Validation against wall time (minutes) and training agent-steps, one line per point."""
    from evoplastic.report import _colors, _figure, _save

    fig = _figure(15, 5)
    axes = fig.subplots(1, 2, sharey=True)
    for c, color in zip(curves, _colors(len(curves))):
        best = np.maximum.accumulate(c.validation)
        for ax, x in ((axes[0], c.minutes), (axes[1], c.steps / 1e6)):
            ax.plot(x, c.validation, color=color, marker=".", label=c.name)
            ax.plot(x, best, color=color, ls=":", drawstyle="steps-post")
    minutes, steps = common_budget(curves)
    axes[1].axvline(steps / 1e6, color="grey", lw=1, ls="--")
    axes[0].axvline(minutes, color="grey", lw=1, ls="--", label="common budget")
    axes[0].set_xlabel("wall time (min, cumulative)")
    axes[1].set_xlabel("training agent-steps (millions, cumulative)")
    axes[0].set_ylabel("validation of the mean genome\n(dotted: best so far)")
    h, labels = axes[0].get_legend_handles_labels()  # beside the plots: a study's many points hide the curves
    axes[1].legend(h, labels, fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(title)
    return _save(fig, path)


def write(sweep_dir: Path, *others: Path, out: Path | None = None) -> list[Path]:
    """Write walltime.csv, walltime.md and (with matplotlib) walltime.png into ``out``.

    Args:
        sweep_dir: the sweep directory; also ``out`` by default.
        others: more sweep directories to compare in the same figure and table (a study of several
            sweeps); points are then named ``SWEEP/POINT``.

    Returns the files written; none if no point has metrics yet.
    """
    dirs = [Path(d) for d in (sweep_dir, *others)]
    out = dirs[0] if out is None else Path(out)
    curves = []
    for d in dirs:
        for c in filter(None, map(curve, discover(d)[1])):
            curves.append(dataclasses.replace(c, name=f"{d.name}/{c.name}") if others else c)
    if not curves:
        return []
    title = f"Sweep {dirs[0].name}" if not others else "Sweeps " + ", ".join(d.name for d in dirs)
    rows, budget = table(curves), common_budget(curves)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS)
    w.writeheader()
    w.writerows(rows)
    written = [write_atomic(out / "walltime.csv", lambda f: f.write(buf.getvalue().encode())),
               write_atomic(out / "walltime.md",
                            lambda f: f.write(format_markdown(rows, budget, title).encode()))]
    try:
        import matplotlib  # noqa: F401  (the plots extra)
    except ImportError:
        return written
    return written + [plot(curves, out / "walltime.png", title)]


def main(argv: list[str]) -> None:
    """``python -m evoplastic.sweep_report SWEEP_DIR [MORE_SWEEP_DIRS...] [--out DIR]``: a snapshot
    of a sweep that may still be running, or of several sweeps compared in one figure."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m evoplastic.sweep_report", description=main.__doc__)
    ap.add_argument("sweeps", nargs="+", type=Path, metavar="SWEEP_DIR")
    ap.add_argument("--out", type=Path, default=None, help="default: the first SWEEP_DIR")
    args = ap.parse_args(argv)
    for p in write(*args.sweeps, out=args.out):
        print(p)


if __name__ == "__main__":
    main(sys.argv[1:])
