"""NeuronML's structure measures for masked models (``<id>+mask``).

NeuronML (Neuromodulated Meta-Learning) judges an evolved structure by three measures. For a
genome of a masked recurrent model, over a fixed task set (lifetimes with fixed seeds):

- **frugality**: the fraction of active hidden units (mask gene > 0; ``Model.active_fraction``,
  the quantity the frugality cost pays for);
- **plasticity**: how much the set of units a task *activates* changes across tasks. Unit j is
  activated in a task when its mean ``|h_j|`` over the task's lifetimes (every agent step) exceeds
  ``threshold``. Reported as the **overlap**: the mean Jaccard index of the activated sets over
  all pairs of tasks (1: every task activates the same units; two empty sets count as 1), and
  per unit, the fraction of tasks that activate it;
- **sensitivity**: each unit's contribution to the score, by ablation: the mean weighted rollout
  score (method §2, no cost terms) of the genome minus that of the genome with the unit's mask gene
  switched off, on the same lifetimes (common random numbers: every variant uses the seeds of
  genome id 0). A unit that is already off has sensitivity exactly 0. Per genome: the mean over
  units of ``|sensitivity|``.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from evoplastic import lifetime
from evoplastic.analysis.memory import record
from evoplastic.envs.tasks import TaskSet
from evoplastic.models.base import Model

F32 = np.float32


def _mask_of(model: Model) -> None:
    if "mask" not in dict(model.param_shapes()) or "h" not in model.memory_shapes():
        raise ValueError(f"structure measures need a masked recurrent model with a hidden state h "
                         f"(<id>+mask), not {model.id}")


def task_activation(model: Model, genome: np.ndarray, tasks: TaskSet, repeats: int = 2,
                    rollouts: int | None = None, seed: int = 0, profile: str = "evoplastic") -> np.ndarray:
    """Mean ``|h_j|`` per task and unit over every agent step of the task's lifetimes: (T, H) float64."""
    rec = record(model, genome, tasks, repeats, rollouts, seed, profile, plastic=False)
    act = np.zeros((len(tasks), model.hidden))
    for t in range(len(tasks)):
        act[t] = np.abs(rec.h[rec.task == t]).mean(0, dtype=np.float64)
    return act


def overlap(active: np.ndarray) -> float:
    """Mean pairwise Jaccard index of the rows of a (T, H) bool matrix (two empty rows: 1); 1.0 for T < 2."""
    scores = []
    for a, b in combinations(np.asarray(active, bool), 2):
        union = (a | b).sum()
        scores.append(1.0 if union == 0 else (a & b).sum() / union)
    return float(np.mean(scores)) if scores else 1.0


def sensitivity(model: Model, genome: np.ndarray, tasks: TaskSet, repeats: int = 2, rollouts: int | None = None,
                seed: int = 0, profile: str = "evoplastic") -> tuple[np.ndarray, float]:
    """Per-unit ablation effect (H,) float64 (score of the genome minus score without the unit) and
    the genome's own score, on the same lifetimes (see the module docstring)."""
    _mask_of(model)
    g = np.asarray(genome, F32)
    p = model.unpack(g)
    mask_at = int(np.flatnonzero([n == "mask" for n, _ in model.param_shapes()])[0])
    start = sum(int(np.prod(s)) for _, s in model.param_shapes()[:mask_at])
    variants = np.repeat(g[None], model.hidden + 1, axis=0)
    on = p["mask"][0] > 0
    for j in np.flatnonzero(on):
        variants[1 + j, start + j] = -abs(variants[1 + j, start + j]) - 1.0  # unit j off
    res = lifetime.evaluate(model, variants, tasks, repeats=repeats, rollouts=rollouts, seed=seed,
                            profile=profile, genome_ids=np.zeros(len(variants), int))
    score = (res.returns @ res.weights / res.weights.sum()).mean(1)  # (H + 1,): no cost terms
    return score[0] - score[1:], float(score[0])


def measures(model: Model, genome: np.ndarray, tasks: TaskSet, repeats: int = 2, rollouts: int | None = None,
             seed: int = 0, profile: str = "evoplastic", threshold: float = 0.05) -> dict[str, Any]:
    """All three measures of one genome, per genome and per unit (lists of H)."""
    _mask_of(model)
    act = task_activation(model, genome, tasks, repeats, rollouts, seed, profile)
    active_in = act > threshold
    sens, score = sensitivity(model, genome, tasks, repeats, rollouts, seed, profile)
    mask_on = model.unpack(genome)["mask"][0] > 0
    return {"model": model.id, "tasks": len(tasks), "repeats": repeats, "threshold": threshold, "score": score,
            "frugality": float(mask_on.mean()), "overlap": overlap(active_in),
            "sensitivity_mean_abs": float(np.abs(sens).mean()),
            "units": {"mask_on": mask_on.tolist(), "task_fraction": active_in.mean(0).tolist(),
                      "mean_abs_h": act.mean(0).tolist(), "sensitivity": sens.tolist()},
            "activation": act.tolist()}


def draw(fig, m: dict[str, Any], title: str) -> None:
    """Per unit: activation by task (heat map), the fraction of tasks activating it, its sensitivity."""
    axes = fig.subplots(3, 1, sharex=True, height_ratios=[2, 1, 1])
    act = np.asarray(m["activation"])
    u = m["units"]
    im = axes[0].imshow(act, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=axes[0], label="mean |h| in task")
    axes[0].set_ylabel("task")
    off = np.flatnonzero(~np.asarray(u["mask_on"]))
    axes[0].plot(off, np.full(len(off), -0.8), "rv", ms=4, label="masked off", clip_on=False)
    axes[0].legend(loc="upper right", fontsize=8)
    x = np.arange(len(u["sensitivity"]))
    axes[1].bar(x, u["task_fraction"], color="tab:green")
    axes[1].set_ylabel(f"tasks activating\n(|h| > {m['threshold']:g})")
    axes[1].set_ylim(0, 1)
    s = np.asarray(u["sensitivity"])
    axes[2].bar(x, s, color=np.where(s >= 0, "tab:blue", "tab:red"))
    axes[2].axhline(0, color="k", lw=0.5)
    axes[2].set_ylabel("sensitivity\n(score drop if ablated)")
    axes[2].set_xlabel("hidden unit")
    fig.suptitle(f"{title}\nfrugality (active fraction) {m['frugality']:.3f}, task overlap {m['overlap']:.3f}, "
                 f"mean |sensitivity| {m['sensitivity_mean_abs']:.4f}, score {m['score']:+.3f}")


def format_table(m: dict[str, Any], title: str) -> str:
    """Markdown: the genome's three measures and the per-unit values."""
    u = m["units"]
    lines = [f"### {title}", "", f"{m['tasks']} tasks x {m['repeats']} lifetimes; unit activated in a task when "
             f"its mean |h| > {m['threshold']:g}", "", "| frugality (active fraction) | task overlap (mean Jaccard) "
             "| mean \\|sensitivity\\| | score |", "|---|---|---|---|",
             f"| {m['frugality']:.3f} | {m['overlap']:.3f} | {m['sensitivity_mean_abs']:.4f} | {m['score']:+.3f} |", "",
             "| unit | mask | tasks activating | mean \\|h\\| | sensitivity |", "|---|---|---|---|---|"]
    for j, (on, frac, h, s) in enumerate(zip(u["mask_on"], u["task_fraction"], u["mean_abs_h"], u["sensitivity"])):
        lines.append(f"| {j} | {'on' if on else 'off'} | {frac:.2f} | {h:.3f} | {s:+.4f} |")
    return "\n".join(lines) + "\n"


def write_analysis(model: Model, genome: np.ndarray, tasks: TaskSet, out_dir, title: str, repeats: int = 2,
                   rollouts: int | None = None, profile: str = "evoplastic", seed: int = 0,
                   threshold: float = 0.05) -> tuple[list, dict[str, Any]]:
    """:func:`measures`, then ``structure.png``, ``structure.md`` and ``structure.json`` in ``out_dir``."""
    import json
    from pathlib import Path

    from matplotlib.figure import Figure

    from evoplastic.atomic import write_atomic

    m = measures(model, genome, tasks, repeats, rollouts, seed, profile, threshold)
    fig = Figure(figsize=(max(8.0, 0.16 * model.hidden + 3), 7.5), layout="constrained")
    draw(fig, m, title)
    out = Path(out_dir)
    return [write_atomic(out / "structure.png", lambda f: fig.savefig(f, format="png", dpi=100)),
            write_atomic(out / "structure.md", lambda f: f.write(format_table(m, title).encode())),
            write_atomic(out / "structure.json", lambda f: f.write(json.dumps(m, indent=1).encode()))], m


def over_checkpoints(run_dir, model: Model, tasks: TaskSet, repeats: int = 1, rollouts: int | None = None,
                     profile: str = "evoplastic", seed: int = 0, threshold: float = 0.05) -> list[dict[str, Any]]:
    """:func:`measures` of the strategy's mean genome at every checkpoint a run kept, oldest first
    (``checkpoint.keep`` of the config decides how many). Unreadable checkpoints are skipped."""
    from evoplastic import checkpoint as ckpt

    out = []
    for path in ckpt.list_checkpoints(run_dir):
        try:
            arrays, meta = ckpt.load(path)
        except ckpt.CheckpointError:
            continue
        m = measures(model, arrays["mean_genome"], tasks, repeats, rollouts, seed, profile, threshold)
        out.append({"generation": int(meta["generation"]), **{k: m[k] for k in
                    ("frugality", "overlap", "sensitivity_mean_abs", "score")}})
    return out


def draw_over_generations(fig, rows: list[dict[str, Any]], title: str) -> None:
    """Frugality and task overlap (left axis) and mean |sensitivity| (right axis) per checkpoint."""
    ax = fig.subplots()
    gens = [r["generation"] for r in rows]
    ax.plot(gens, [r["frugality"] for r in rows], "o-", color="tab:green", label="frugality (active fraction)")
    ax.plot(gens, [r["overlap"] for r in rows], "s-", color="tab:purple", label="task overlap (plasticity)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("generation (checkpoints kept)")
    ax2 = ax.twinx()
    ax2.plot(gens, [r["sensitivity_mean_abs"] for r in rows], "^--", color="tab:blue", label="mean |sensitivity|")
    ax2.set_ylabel("mean |sensitivity| (score)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower left", fontsize=8)
    ax.set_title(title)
