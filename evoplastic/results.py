"""The results schema of every evaluation command, its table and its JSON file.

A result is a plain dict::

    {"tasks": N, "lifetimes": L, "rollouts": R, "weights": [...],
     "rollout_mean": [...], "rollout_se": [...], "goal_rate": [...], "steps_mean": [...],
     "weighted_mean": x, "weighted_se": y, ...metadata (suite, seed, profile, versions)}

Standard errors are over lifetimes (``std(ddof=1) / sqrt(L)``); the weighted score of a lifetime
is ``sum_r w_r R_r / sum_r w_r`` (method §2) and its mean and standard error are taken over lifetimes.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic.atomic import write_atomic
from evoplastic.errors import UserError

# method §2 rollout weights.
WEIGHTS = {3: (0.0, 0.0, 1.0), 8: (0.0, 0.0, 0.16, 0.22, 0.36, 0.64, 0.8, 1.0)}


def default_weights(rollouts: int) -> tuple[float, ...]:
    """method §2's weights for 3 and 8 rollouts; otherwise the paper's ``0.8^(R-1-i)`` for ``i >= 2``
    (zero for the first two rollouts, or for all but the last when R <= 2)."""
    if rollouts < 1:
        raise UserError(f"rollouts must be >= 1, got {rollouts}")
    if rollouts in WEIGHTS:
        return WEIGHTS[rollouts]
    if rollouts <= 2:
        return (0.0,) * (rollouts - 1) + (1.0,)
    return (0.0, 0.0) + tuple(round(0.8 ** (rollouts - 1 - i), 6) for i in range(2, rollouts))


def check_weights(weights: tuple[float, ...] | list[float], rollouts: int) -> np.ndarray:
    """Validated (R,) float64 weights: R non-negative finite numbers with a positive sum."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (rollouts,):
        raise UserError(f"need {rollouts} rollout weights, got {len(w)}: {list(weights)}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise UserError(f"rollout weights must be finite, >= 0 and not all 0, got {list(weights)}")
    return w


def _se(x: np.ndarray, axis: int = 0) -> np.ndarray:
    n = x.shape[axis]
    return x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(x.mean(axis=axis))


def weighted_scores(returns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(L,) weighted score of each lifetime from returns (L, R) (method §2, without the RMS term)."""
    return returns @ weights / weights.sum()


def summarize(
    returns: np.ndarray, reached: np.ndarray, steps: np.ndarray, weights: np.ndarray, n_tasks: int,
    **meta: Any,
) -> dict[str, Any]:
    """Build a result from per-lifetime, per-rollout arrays, each (L, R)."""
    returns = np.asarray(returns, dtype=np.float64)
    lifetimes, rollouts = returns.shape
    w = check_weights(weights, rollouts)
    score = weighted_scores(returns, w)
    out: dict[str, Any] = {
        "tasks": int(n_tasks),
        "lifetimes": int(lifetimes),
        "rollouts": int(rollouts),
        "weights": [float(x) for x in w],
        "rollout_mean": _floats(returns.mean(0)),
        "rollout_se": _floats(_se(returns)),
        "goal_rate": _floats(np.asarray(reached, dtype=np.float64).mean(0)),
        "steps_mean": _floats(np.asarray(steps, dtype=np.float64).mean(0)),
        "weighted_mean": float(score.mean()),
        "weighted_se": float(_se(score)),
    }
    out.update(meta)
    out.setdefault("versions", versions())
    return out


def _floats(a: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in a]


def versions() -> dict[str, str]:
    """Versions that matter for reproducing a result."""
    from evoplastic import __version__
    from evoplastic.envs.generator import GENERATOR_VERSION

    return {"evoplastic": __version__, "generator": str(GENERATOR_VERSION), "numpy": np.__version__,
            "python": platform.python_version()}


def format_table(results: list[dict[str, Any]], title: str = "") -> str:
    """Human-readable table: one row per result, mean +- standard error per rollout."""
    rollouts = max(r["rollouts"] for r in results)
    head = f"{'tasks':<20} {'n':>5} " + " ".join(f"{'rollout ' + str(i + 1):>15}" for i in range(rollouts))
    head += f" {'weighted':>15} {'goal % (last)':>13} {'steps (last)':>12}"
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for r in results:
        cells = [f"{m:+.3f} ± {s:.3f}" for m, s in zip(r["rollout_mean"], r["rollout_se"])]
        cells += [""] * (rollouts - len(cells))
        row = f"{str(r.get('suite', r.get('name', '?')))[:20]:<20} {r['tasks']:>5} "
        row += " ".join(f"{c:>15}" for c in cells)
        row += f" {r['weighted_mean']:+.3f} ± {r['weighted_se']:.3f}".rjust(16)
        row += f" {100 * r['goal_rate'][-1]:>13.1f} {r['steps_mean'][-1]:>12.1f}"
        lines.append(row)
    return "\n".join(lines)


def write_json(obj: Any, out: str | Path) -> None:
    """Write ``obj`` as JSON to ``out`` atomically, or to stdout if ``out`` is "-"."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    if str(out) == "-":
        sys.stdout.write(text)
        return
    write_atomic(out, lambda f: f.write(text.encode()))
