"""The cells an agent visits: one genome's lifetimes replayed with their paths (the paper's Figure 4).

:func:`trace` runs :func:`evoplastic.lifetime.evaluate` itself, with an ``on_step`` observer that
records every agent's cell after each env step. Same code path, same random streams: the returns
of a trace are exactly those of ``evaluate`` for the same (seed, genome id, task id, repeat).
:func:`draw` puts a trace on a matplotlib figure (matplotlib is imported only there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evoplastic import lifetime
from evoplastic.envs.maze import MAX_STEPS, VectorMaze
from evoplastic.envs.tasks import TaskSet
from evoplastic.models.base import Model


@dataclass(frozen=True)
class Trace:
    """One lifetime per task, its rollouts and the cells visited.

    Attributes:
        paths: ``paths[t][r]`` (steps + 1, 2) int (row, column) cells of rollout ``r`` in task
            ``t``, the start cell first.
        returns: (T, R) float64 return of each rollout (method §1).
        reached: (T, R) bool, goal entered.
        steps: (T, R) int actions taken.
    """

    paths: list[list[np.ndarray]]
    returns: np.ndarray
    reached: np.ndarray
    steps: np.ndarray


class _Recorder:
    """``on_step`` observer: ``cells[lifetime, r, i]`` is the agent's cell after ``i`` actions."""

    def __init__(self, lifetimes: int, rollouts: int, max_steps: int) -> None:
        self.cells = np.zeros((lifetimes, rollouts, max_steps + 1, 2), np.int16)

    def __call__(self, lifetimes: np.ndarray, r: int, maze: VectorMaze) -> None:
        # A finished agent neither moves nor counts steps: rewriting its last cell is harmless.
        self.cells[lifetimes, r, maze.steps] = maze.agent


def trace(
    model: Model,
    genome: np.ndarray,
    tasks: TaskSet,
    rollouts: int | None = None,
    seed: int = 0,
    profile: str = "evoplastic",
    genome_id: int = 0,
    task_ids: np.ndarray | None = None,
    repeat: int = 0,
    max_steps: int = MAX_STEPS,
) -> Trace:
    """Replay lifetime (``genome_id``, task id, ``repeat``) of ``genome`` (N,) on every task.

    ``task_ids`` (T,) are the tasks' global ids for seeding (default: positions), as in
    :func:`~evoplastic.lifetime.evaluate`. Repeats ``0..repeat`` are all run (the seeding protocol
    fixes a lifetime by its repeat index) and only ``repeat`` is kept.
    """
    if repeat < 0:
        raise ValueError(f"repeat must be >= 0, got {repeat}")
    genome = np.asarray(genome, dtype=np.float32).reshape(-1)
    rollouts = lifetime.get_profile(profile).rollouts if rollouts is None else int(rollouts)
    per = repeat + 1
    rec = _Recorder(len(tasks) * per, rollouts, max_steps)
    res = lifetime.evaluate(model, genome[None], tasks, repeats=per, rollouts=rollouts, seed=seed,
                            profile=profile, genome_ids=np.array([genome_id]), task_ids=task_ids,
                            max_steps=max_steps, on_step=rec)
    keep = np.arange(len(tasks)) * per + repeat  # flat lifetime t * repeats + k of genome 0
    rec.cells[keep, :, 0] = tasks.start[:, None, :]
    steps = res.steps[0, keep]
    paths = [[rec.cells[life, r, : steps[t, r] + 1].astype(np.int64) for r in range(rollouts)]
             for t, life in enumerate(keep)]
    return Trace(paths, res.returns[0, keep], res.reached[0, keep], steps)


def draw(fig, tasks: TaskSet, tr: Trace, aggregate: tuple[np.ndarray, int, str] | None = None) -> None:
    """Draw ``tr`` on a matplotlib Figure: mazes as rows, rollouts as columns (the paper's Figure 4).

    Rows are labelled with the task set's name and each task's index in it; a legend explains the
    start and goal markers and a colour bar the step count along the paths. ``aggregate`` =
    (goal rate per rollout (R,) in [0, 1], number of lifetimes, what they are) adds a bottom row
    with that goal rate, to show where the drawn mazes stand among many.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    rollouts = tr.returns.shape[1]
    rows = len(tasks) + (aggregate is not None)
    grid = fig.add_gridspec(rows, rollouts, height_ratios=[1] * len(tasks) + ([0.55] if aggregate else []))
    ids = tasks.meta.get("task_ids", range(len(tasks)))
    longest = max(1, max(len(p) - 1 for paths in tr.paths for p in paths))
    for t, task_id in zip(range(len(tasks)), ids):
        for r in range(rollouts):
            ax = fig.add_subplot(grid[t, r])
            draw_path(ax, tasks.walls[t], tr.paths[t][r], tasks.start[t], tasks.goal[t], vmax=longest)
            ax.set_title(f"rollout {r + 1}: {tr.returns[t, r]:+.2f}, {tr.steps[t, r]} steps"
                         + (" (goal)" if tr.reached[t, r] else ""), fontsize="small")
            if r == 0:
                ax.set_ylabel(f"{tasks.name}\ntask #{task_id}")
    fig.colorbar(ScalarMappable(Normalize(0, longest), colormaps["plasma"]), ax=fig.axes, shrink=0.6,
                 label="step along the path")
    fig.legend(handles=[Line2D([], [], ls="", marker="o", color="tab:green", ms=9, label="start"),
                        Line2D([], [], ls="", marker="*", color="tab:red", ms=13, label="goal")],
               loc="outside right lower", fontsize="small")
    if aggregate is not None:
        rate, n, what = aggregate
        ax = fig.add_subplot(grid[-1, :])
        x = np.arange(1, rollouts + 1)
        ax.plot(x, 100 * np.asarray(rate), marker="o", color="tab:blue")
        for xi, yi in zip(x, 100 * np.asarray(rate)):
            ax.annotate(f"{yi:.0f}%", (xi, yi), textcoords="offset points", xytext=(0, 6), ha="center",
                        fontsize="small")
        ax.set_xticks(x, [f"rollout {i}" for i in x])
        ax.set_ylim(0, 115)
        ax.set_ylabel("goal reached (%)")
        ax.set_title(f"the same genome over {n:,} lifetimes: {what}", fontsize="small")


def draw_path(ax, walls: np.ndarray, cells: np.ndarray, start: np.ndarray, goal: np.ndarray,
              vmax: int | None = None) -> None:
    """Walls in grey, the path coloured by step from dark (first) to yellow (``vmax``, default its
    last step), start o, goal *."""
    from matplotlib.collections import LineCollection

    ax.imshow(walls, cmap="Greys", vmin=0, vmax=1.6, interpolation="nearest")
    xy = cells[:, ::-1].astype(float)  # (row, column) -> (x, y)
    if len(xy) > 1:
        segments = np.stack([xy[:-1], xy[1:]], axis=1)
        lc = LineCollection(segments, cmap="plasma", linewidths=2.0, alpha=0.8)
        lc.set_array(np.arange(len(segments)))
        lc.set_clim(0, vmax if vmax is not None else len(segments))
        ax.add_collection(lc)
    ax.plot(start[1], start[0], "o", color="tab:green", ms=9)
    ax.plot(goal[1], goal[0], "*", color="tab:red", ms=13)
    ax.set_xticks([])
    ax.set_yticks([])
