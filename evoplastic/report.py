"""Reports of a run or a sweep directory: the paper's figures and table from what a run wrote.

``write_report(RUN_OR_SWEEP_DIR)`` writes into ``DIR/report/``: ``learning_curves.png`` (fitness,
validation and sigma over generations and wall time), ``rollouts.png`` (Figure 2: return +- SE and
goal rate per rollout, from the ``eval/<suite>.json`` files of ``evoplastic eval``), ``table.md``
and ``table.csv`` (Table 1: N_Gene, N_Mem, N_Mem/N_Gene, best validation, score +- SE and
last-rollout goal rate per suite), ``trajectories.png`` (Figure 4: the best genome's paths in the
rollouts of one lifetime, in a few mazes) and ``index.md`` (what was written, skipped, and why).

A sweep directory holds ``sweep.yaml`` and one run directory per point (direct subdirectories
with a ``config.yaml``). matplotlib (the ``plots`` extra) is imported only here, and no pyplot
state is touched: figures are plain ``matplotlib.figure.Figure`` objects saved as PNG.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic import config as cfglib
from evoplastic.atomic import write_atomic

from evoplastic.rundir import CURVES, Run, discover, load_run, read_evals, read_metrics  # noqa: F401 (API)

MISSING_MATPLOTLIB = "matplotlib is needed for reports: pip install 'evoplastic[plots]'"


# -- figures ------------------------------------------------------------------------------------

def _matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise ImportError(MISSING_MATPLOTLIB) from None


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path: Path) -> Path:
    return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _line(ax, x: np.ndarray, y: np.ndarray, **kw) -> None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.any():
        ax.plot(x[ok], y[ok], **kw)


def plot_learning_curves(runs: list[Run], path: Path) -> Path:
    """Training fitness, validation and sigma against generations and cumulative wall time.

    One colour per run (runs without metrics keep theirs unused, so colours match the other
    figures)."""
    masked = any(not np.isnan(r.metrics.get("active_fraction", np.array([np.nan]))).all() for r in runs)
    fig = _figure(11, 11 if masked else 8.5)
    axes = fig.subplots(4 if masked else 3, 2, sharex="col")
    for run, color in zip(runs, _colors(len(runs))):
        m = run.metrics
        if not m:
            continue
        label = run.name if len(runs) > 1 else None
        clock = np.nancumsum(np.nan_to_num(m["seconds"], nan=0.0))
        k = smoothing_window(len(m["generation"]))
        for col, x in enumerate((m["generation"], clock)):
            for key, ls in (("best_fitness", "-"), ("mean_fitness", "--")):  # raw faint, smoothed bold
                _line(axes[0, col], x, m[key], color=color, ls=ls, alpha=0.25, lw=0.8)
                _line(axes[0, col], x, moving_average(m[key], k), color=color, ls=ls,
                      label=label if key == "best_fitness" else None)
            _errorbars(axes[1, col], x, m["validation"], m.get("validation_se"), color=color, label=label)
            _line(axes[1, col], x, m["best_validation"], color=color, ls=":", drawstyle="steps-post")
            _line(axes[2, col], x, m["sigma"], color=color, label=label)
            if masked and "active_fraction" in m:  # structure masks: the mean genome's
                _line(axes[3, col], x, m["active_fraction"], color=color, label=label)
    base = _validation_baselines(runs)
    for col, xlabel in enumerate(("generation", "wall time (s, cumulative)")):
        k = smoothing_window(max((len(r.metrics.get("generation", [])) for r in runs), default=1))
        axes[0, col].set_ylabel("training fitness (solid best,\ndashed mean"
                                + (f"; bold: mean of {k} gens)" if k > 1 else ")"))
        axes[1, col].set_ylabel("validation of the mean ± SE\n(dotted: best so far)")
        for name, (value, style) in base.items():
            axes[1, col].axhline(value, color="0.35", ls=style, lw=1, label=f"{name} {value:+.2f}")
        if base:
            axes[1, col].legend(fontsize="small", loc="best")
        axes[2, col].set_ylabel("sigma")
        axes[2, col].set_yscale("log")
        if masked:
            axes[3, col].set_ylabel("active fraction\nof the mean genome")
            axes[3, col].set_ylim(0, 1.05)
        axes[-1, col].set_xlabel(xlabel)
    if len(runs) > 1:
        axes[0, 1].legend(fontsize="small", loc="best")
    fig.suptitle(_title(runs))
    return _save(fig, path)


def smoothing_window(n: int) -> int:
    """Generations averaged by the bold training-fitness line: about 1/30 of the run, odd, >= 1."""
    return max(1, (n // 30) | 1)


def moving_average(values: np.ndarray, k: int) -> np.ndarray:
    """Centred mean over ``k`` points (fewer at the ends), NaNs ignored; (n,) -> (n,)."""
    v = np.asarray(values, dtype=float)
    if k <= 1 or v.size == 0:
        return v
    ok = np.isfinite(v)
    kernel = np.ones(k)
    total = np.convolve(np.where(ok, v, 0.0), kernel, mode="same")
    count = np.convolve(ok.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _errorbars(ax, x: np.ndarray, y: np.ndarray, se: np.ndarray | None, **kw) -> None:
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return
    err = None if se is None else np.nan_to_num(np.asarray(se, dtype=float)[ok], nan=0.0)
    ax.errorbar(x[ok], y[ok], yerr=err, marker=".", capsize=2, lw=1, **kw)


def _baseline(kind: str, tasks, rollouts: int, weights, profile: str) -> dict[str, Any]:
    """The Oracle or Random result on ``tasks`` under a lifetime profile's conventions (method §7)."""
    from evoplastic import baselines
    from evoplastic.lifetime import get_profile

    return baselines.evaluate(kind, tasks, rollouts, 1, 0, tuple(weights) if weights else None,
                              get_profile(profile).encoding)


def _validation_baselines(runs: list[Run]) -> dict[str, tuple[float, str]]:
    """Oracle and Random weighted scores on the first run's validation tasks: {name: (score, style)}."""
    from evoplastic.envs import tasks as tasklib

    c = runs[0].cfg
    try:
        ts = tasklib.load(c.validation.suite).head(c.validation.count)
    except (FileNotFoundError, ValueError):
        return {}
    lt = c.lifetime
    rollouts = lt.rollouts or _profile_rollouts(lt.profile)
    return {name: (_baseline(kind, ts, rollouts, lt.weights, lt.profile)["weighted_mean"], style)
            for name, kind, style in (("Oracle", "oracle", "-."), ("Random", "random", (0, (1, 2))))}


def _profile_rollouts(profile: str) -> int:
    from evoplastic.lifetime import get_profile

    return get_profile(profile).rollouts


def _title(runs: list[Run]) -> str:
    if len(runs) == 1:
        c = runs[0].cfg
        return f"{runs[0].name}: {c.model.id} (hidden {c.model.hidden}), {c.tasks.size}x{c.tasks.size} mazes"
    return f"sweep of {len(runs)} points: {runs[0].path.parent.name}"


def plot_rollouts(runs: list[Run], path: Path) -> Path:
    """Figure 2: mean return +- SE and goal rate per rollout, one column per evaluated suite, one
    colour per run; grey lines: the Oracle and Random baselines on the same tasks (method §7).
    Column titles say whether the suite is in the training distribution (maze size and crowd)."""
    colors = _colors(len(runs))
    panels = [(s, [(r, r.evals[s], c) for r, c in zip(runs, colors) if s in r.evals]) for s in _suites(runs)]
    fig = _figure(4.2 * len(panels) + 1.5, 6.8)
    axes = fig.subplots(2, len(panels), squeeze=False, sharey="row")
    for col, (suite, lines) in enumerate(panels):
        for run, res, color in lines:
            x = np.arange(1, len(res["rollout_mean"]) + 1)
            mean, se = np.array(res["rollout_mean"]), np.array(res["rollout_se"])
            label = f"{run.name} (n={res.get('lifetimes', '?')})"
            axes[0, col].plot(x, mean, marker="o", color=color, label=label)
            axes[0, col].fill_between(x, mean - se, mean + se, color=color, alpha=0.25)
            axes[1, col].plot(x, 100 * np.array(res["goal_rate"]), marker="o", color=color)
        ts = _eval_tasks(lines[0][1])
        for name, base, style in _eval_baselines(lines[0][1], ts):
            x = np.arange(1, len(base["rollout_mean"]) + 1)
            axes[0, col].plot(x, base["rollout_mean"], color="0.35", ls=style, lw=1, label=name)
            axes[1, col].plot(x, 100 * np.array(base["goal_rate"]), color="0.35", ls=style, lw=1)
        axes[0, col].set_title(f"{suite}: {_distribution(lines[0][0], ts)}", fontsize="medium")
        axes[0, col].legend(fontsize="small", loc="best")
        axes[1, col].set_xlabel("rollout in the lifetime")
        for ax in axes[:, col]:
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0, 0].set_ylabel("return (mean ± SE)")
    axes[1, 0].set_ylabel("goal reached (%)")
    fig.suptitle(_title(runs))
    return _save(fig, path)


def _eval_tasks(res: dict[str, Any]):
    """The task set an eval result was computed on (its first ``tasks``), or None if it cannot be
    loaded again (e.g. a task file that has moved)."""
    from evoplastic.envs import tasks as tasklib

    for spec in filter(None, (res.get("suite"), res.get("source"))):
        try:
            return tasklib.load(spec).head(res.get("tasks"))
        except (FileNotFoundError, ValueError):
            continue
    return None


def _eval_baselines(res: dict[str, Any], ts) -> list[tuple[str, dict[str, Any], Any]]:
    """Oracle and Random on ``ts`` with the eval result's rollouts, weights and profile."""
    if ts is None:
        return []
    profile = res.get("profile", "evoplastic")
    return [(name, _baseline(kind, ts, int(res["rollouts"]), res.get("weights"), profile), style)
            for name, kind, style in (("Oracle", "oracle", "-."), ("Random", "random", (0, (1, 2))))]


def _distribution(run: Run, ts) -> str:
    """"in distribution" or "OUT of distribution (...)": the suite's maze size and crowd ratio
    against the run's training tasks."""
    if ts is None:
        return "distribution unknown (task set not found)"
    t, size, crowd = run.cfg.tasks, ts.size, ts.meta.get("crowd_ratio")
    if size == t.size and (crowd is None or abs(float(crowd) - t.crowd_ratio) < 1e-9):
        return f"in distribution ({size}x{size})"
    crowd_text = "" if crowd is None else f", crowd {float(crowd):g}"
    return f"OUT of distribution ({size}x{size}{crowd_text};\ntrained on {t.size}x{t.size}, crowd {t.crowd_ratio:g})"


def _suites(runs: list[Run]) -> list[str]:
    """Evaluated suite names, in order of first appearance."""
    return list(dict.fromkeys(s for r in runs for s in r.evals))


def plot_trajectories(run: Run, path: Path, mazes: int = 3, suite: str | None = None,
                      seed: int = 0) -> tuple[Path, str]:
    """Figure 4: the best genome's path in each rollout (columns) of one lifetime per maze (rows).

    Mazes: the first ``mazes`` of ``suite``, or new ones of the run's training size and crowd
    ratio (generator seed ``seed``). Returns the file and a one-line description.
    """
    from evoplastic import lifetime, trajectory

    genome, model, source = _best_genome(run)
    tasks = _report_tasks(run.cfg, mazes, suite, seed)
    lt = run.cfg.lifetime
    tr = trajectory.trace(model, genome, tasks, rollouts=lt.rollouts, seed=seed, profile=lt.profile)
    many = _report_tasks(run.cfg, AGGREGATE_TASKS, suite, seed)
    res = lifetime.evaluate(model, genome[None], many, repeats=1, rollouts=lt.rollouts, seed=seed,
                            profile=lt.profile)
    aggregate = (res.reached[0].mean(axis=0), len(many), f"the first {len(many):,} tasks of {many.name}")
    fig = _figure(2.6 * tr.returns.shape[1] + 1.5, 2.7 * len(tasks) + 2.6)
    trajectory.draw(fig, tasks, tr, aggregate)
    what = f"{run.name}: {source} of {model.id} (hidden {model.hidden})\n{len(tasks)} mazes of {tasks.name}"
    fig.suptitle(f"{what}, profile {lt.profile}, seed {seed}\none lifetime per maze (row), its memories "
                 "kept across the rollouts (columns)")
    return _save(fig, path), what.replace("\n", " in ")


AGGREGATE_TASKS = 256  # lifetimes behind the trajectory figure's goal-rate row


def _best_genome(run: Run):
    from evoplastic import genome as genome_io
    from evoplastic.models import get_model

    for name, what in (("best.npz", "best-validated genome"), ("mean.npz", "mean genome")):
        if (run.path / name).exists():
            g, meta = genome_io.load(run.path / name)
            gen = f" (generation {meta['generation']})" if "generation" in meta else ""
            return g, get_model(run.cfg.model.id, run.cfg.model.hidden), what + gen
    raise FileNotFoundError(f"{run.path}: no best.npz or mean.npz genome yet")


def _report_tasks(cfg: cfglib.ExperimentConfig, count: int, suite: str | None, seed: int):
    from evoplastic.envs import tasks as tasklib

    if suite is not None:
        return tasklib.load(suite).head(count)
    t = cfg.tasks
    return tasklib.generate(count, t.size, t.crowd_ratio, seed, name=f"{t.size}x{t.size}, crowd {t.crowd_ratio:g}")


# -- table --------------------------------------------------------------------------------------

def table_rows(runs: list[Run]) -> tuple[list[str], list[dict[str, Any]]]:
    """Table 1: (suite names, one row of raw values per run)."""
    from evoplastic.models import get_model

    suites = _suites(runs)
    rows = []
    for run in runs:
        m = get_model(run.cfg.model.id, run.cfg.model.hidden)
        best = run.best_validation()
        gens = run.metrics.get("generation")
        row = {"run": run.name, "model": m.id, "hidden": m.hidden, "n_gene": m.n_gene, "n_mem": m.n_mem,
               "bottleneck": m.n_mem / m.n_gene, "generations": int(np.nanmax(gens)) if gens is not None else None,
               "best_validation": best[0] if best else None, "best_generation": best[1] if best else None,
               "active_fraction": _last(run.metrics.get("active_fraction"))}
        for s in suites:
            res = run.evals.get(s)
            row[f"{s}:mean"] = res["weighted_mean"] if res else None
            row[f"{s}:se"] = res["weighted_se"] if res else None
            row[f"{s}:goal_last"] = res["goal_rate"][-1] if res else None
        rows.append(row)
    return suites, rows


def _last(values: np.ndarray | None) -> float | None:
    """The last recorded value of a metrics column (None: never recorded)."""
    if values is None or np.isnan(values).all():
        return None
    return float(values[~np.isnan(values)][-1])


def format_markdown(suites: list[str], rows: list[dict[str, Any]]) -> str:
    """The table as Markdown: score ``mean ± SE`` and last-rollout goal rate per suite."""
    head = ["run", "model", "hidden", "N_Gene", "N_Mem", "N_Mem/N_Gene", "generations",
            "best validation (generation)"]
    masked = any(r.get("active_fraction") is not None for r in rows)
    if masked:
        head.append("active fraction (last)")
    for s in suites:
        head += [f"{s} score", f"{s} goal (last)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        best = "—" if r["best_validation"] is None else f"{r['best_validation']:+.3f} ({r['best_generation']})"
        cells = [r["run"], r["model"], str(r["hidden"]), f"{r['n_gene']:,}", f"{r['n_mem']:,}",
                 f"{r['bottleneck']:.3f}", "—" if r["generations"] is None else str(r["generations"]), best]
        if masked:
            cells.append("—" if r.get("active_fraction") is None else f"{r['active_fraction']:.3f}")
        for s in suites:
            if r[f"{s}:mean"] is None:
                cells += ["—", "—"]
            else:
                cells += [f"{r[f'{s}:mean']:+.3f} ± {r[f'{s}:se']:.3f}", f"{100 * r[f'{s}:goal_last']:.1f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(runs: list[Run], out: Path) -> list[Path]:
    """``table.md`` and ``table.csv`` (the same numbers, unrounded, one column per value)."""
    suites, rows = table_rows(runs)
    md = "# Results\n\nScore: the weighted rollout score (method §2) over lifetimes, mean ± standard " \
         "error; goal: the share of lifetimes whose last rollout reached the goal.\n\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return [_write_text(out / "table.md", md + format_markdown(suites, rows)),
            _write_text(out / "table.csv", buf.getvalue())]


def _write_text(path: Path, text: str) -> Path:
    return write_atomic(path, lambda f: f.write(text.encode()))


# -- the report ---------------------------------------------------------------------------------

def write_report(path: Path, out: Path | None = None, mazes: int = 3, suite: str | None = None,
                 seed: int = 0) -> list[Path]:
    """Write the report of a run or sweep directory ``path`` into ``out`` (default ``path/report``).

    Args:
        mazes, suite, seed: the trajectory figure's mazes (see :func:`plot_trajectories`).

    Returns:
        The files written, ``index.md`` last.

    Raises:
        ImportError: matplotlib is missing (a one-line message naming the ``plots`` extra).
    """
    _matplotlib()
    if mazes < 1:
        raise ValueError(f"mazes must be >= 1, got {mazes}")
    path = Path(path)
    kind, runs = discover(path)
    out = path / "report" if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[tuple[Path, str]] = []
    skipped: list[str] = []
    notes = [n for r in runs for n in r.notes]
    _add_curves(runs, out, written, skipped)
    _add_rollouts(runs, out, written, skipped)
    for p in write_table(runs, out):
        written.append((p, "Table 1: model sizes, best validation, scores per evaluated suite"))
    _add_trajectories(runs, out, written, skipped, (mazes, suite, seed))
    _add_memory(runs, out, written, skipped, (suite, seed))
    _add_structure(runs, out, written, (suite, seed))
    index = _write_text(out / "index.md", format_index(path, kind, runs, written, skipped, notes))
    return [p for p, _ in written] + [index]


def _add_curves(runs: list[Run], out: Path, written: list, skipped: list) -> None:
    skipped += [f"learning curves of `{r.name}`: no metrics.csv rows yet" for r in runs if not r.metrics]
    if not any(r.metrics for r in runs):
        _skip(out / "learning_curves.png", skipped, "no run has metrics.csv rows yet")
        return
    written.append((plot_learning_curves(runs, out / "learning_curves.png"),
                    "training fitness, validation and sigma over generations and wall time"))


def _skip(path: Path, skipped: list, why: str) -> None:
    """Note a figure not drawn, and remove an older report's copy so index.md tells the truth."""
    path.unlink(missing_ok=True)
    skipped.append(f"`{path.name}`: {why}")


def _add_rollouts(runs: list[Run], out: Path, written: list, skipped: list) -> None:
    if not any(r.evals for r in runs):
        where = f"`{runs[0].path}`" if len(runs) == 1 else "any point"
        _skip(out / "rollouts.png", skipped, f"no evaluation results (`eval/*.json`) in {where}; write "
              "them with `evoplastic eval RUN_DIR --tasks maze9,maze15` and report again")
        return
    written.append((plot_rollouts(runs, out / "rollouts.png"),
                    "Figure 2: return and goal rate per rollout, suites " + ", ".join(_suites(runs))))
    skipped += [f"`{r.name}` in `rollouts.png`: no `eval/*.json`" for r in runs if not r.evals]


def _add_trajectories(runs: list[Run], out: Path, written: list, skipped: list, opts: tuple) -> None:
    have = [r for r in runs if (r.path / "best.npz").exists() or (r.path / "mean.npz").exists()]
    if not have:
        _skip(out / "trajectories.png", skipped, "no genome file (best.npz or mean.npz) in any run")
        return
    run = max(have, key=lambda r: (r.best_validation() or (-math.inf,))[0])  # the first of equals
    p, what = plot_trajectories(run, out / "trajectories.png", *opts)
    best = " (the point with the best validation)" if len(runs) > 1 else ""
    written.append((p, f"Figure 4: {what}{best}"))


def _add_memory(runs: list[Run], out: Path, written: list, skipped: list, opts: tuple) -> None:
    """What the memories of the best run's genome hold (analysis/memory.py), for a
    recurrent plastic model: 6 mazes x 3 lifetimes of the run's task distribution (or ``suite``)."""
    from evoplastic.analysis import memory

    have = [r for r in runs if (r.path / "best.npz").exists() or (r.path / "mean.npz").exists()]
    if not have:
        return  # _add_trajectories has said why
    run = max(have, key=lambda r: (r.best_validation() or (-math.inf,))[0])
    genome, model, source = _best_genome(run)
    try:
        memory.plastic_keys(model)
    except ValueError as exc:
        _skip(out / "memory.png", skipped, str(exc))
        return
    suite, seed = opts
    lt = run.cfg.lifetime
    files, stats = memory.write_analysis(model, genome, _report_tasks(run.cfg, 6, suite, seed), out,
                                         f"{run.name}: {source}", 3, lt.rollouts, lt.profile, seed)
    written.append((files[0], f"Figure 7: W and h along lifetimes; maze decoded from W "
                              f"{stats['decode_W_mean']:.2f} vs h {stats['decode_h_mean']:.2f} (chance "
                              f"{stats['chance']:.2f}), autocorrelation {stats['autocorr_W_median']:g} vs "
                              f"{stats['autocorr_h_median']:g} steps"))
    written += [(files[1], "the memory analysis table"), (files[2], "the memory analysis numbers")]


def _add_structure(runs: list[Run], out: Path, written: list, opts: tuple) -> None:
    """NeuronML's structure measures of masked runs, per kept checkpoint, on 8 fixed mazes."""
    from evoplastic.analysis import structure
    from evoplastic.models import get_model

    suite, seed = opts
    for run in runs:
        model = get_model(run.cfg.model.id, run.cfg.model.hidden)
        if "mask" not in dict(model.param_shapes()) or "h" not in model.memory_shapes():
            continue
        lt = run.cfg.lifetime
        rows = structure.over_checkpoints(run.path, model, _report_tasks(run.cfg, 8, suite, seed), 1,
                                          lt.rollouts, lt.profile, seed)
        if not rows:
            continue
        fig = _figure(7, 4)
        structure.draw_over_generations(fig, rows, f"{run.name}: structure of the mean genome")
        written.append((_save(fig, out / f"structure_{run.name}.png"),
                        f"NeuronML structure measures of `{run.name}` over its {len(rows)} kept checkpoints"))


def format_index(path: Path, kind: str, runs: list[Run], written: list[tuple[Path, str]],
                 skipped: list[str], notes: list[str]) -> str:
    """index.md: the source directory, the files written, what was skipped and why."""
    what = "run directory" if kind == "run" else f"sweep directory ({len(runs)} points: " \
        + ", ".join(r.name for r in runs) + ")"
    lines = [f"# Report of `{path}`", "", f"A {what}.", "", "## Written", ""]
    for p, desc in written:
        lines += [f"- [{p.name}]({p.name}): {desc}"] + (["", f"  ![{p.stem}]({p.name})", ""]
                                                        if p.suffix == ".png" else [])
    lines += ["- [index.md](index.md): this file", ""]
    if skipped:
        lines += ["## Skipped", ""] + [f"- {s}" for s in skipped] + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)
