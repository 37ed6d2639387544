"""What the memories hold (Wang et al. 2022, Figure 7 and Appendix A.4).

A recurrent plastic model carries two memories through a lifetime: the plastic weights ``W``
(every memory array but ``h``: DecPRNN's and PRNN's ``[W_h | W_x]``, ET's ``W_h`` and trace ``E``)
and the hidden state ``h``. The paper's claim: ``W`` carries slow, task-level information (which
maze this is), ``h`` fast, short-term information. This module

1. records both at every agent step of lifetimes in several mazes (:func:`record`: the model's
   own ``memory_state`` after each step, through the ordinary ``lifetime.evaluate``);
2. embeds them (:func:`embed`: PCA by default; t-SNE with scikit-learn, the ``analysis`` extra);
3. quantifies the claim (:func:`analyse`): at each step ``t`` of the lifetime, decode the maze from
   ``W_t`` and from ``h_t`` with a held-out nearest-centroid classifier (leave one repeat out:
   centroids from the other lifetimes in the same mazes); and the autocorrelation time of each
   (lags until the lifetime's normalised autocorrelation drops below 1/e).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evoplastic import lifetime
from evoplastic.envs.tasks import TaskSet
from evoplastic.models.base import Model

F32 = np.float32


def plastic_keys(model: Model) -> list[str]:
    """The memory arrays that are plastic weights (all but ``h``).

    Raises:
        ValueError: the model has no hidden state ``h`` or no plastic weights.
    """
    keys = list(model.memory_shapes())
    if "h" not in keys or len(keys) < 2:
        raise ValueError(f"the memory analysis needs a recurrent plastic model (plastic weights and a hidden "
                         f"state h); {model.id} has memories {keys or 'none'}")
    return [k for k in keys if k != "h"]


@dataclass
class Recording:
    """Memories along lifetimes, one row per agent step (live steps only).

    Attributes:
        W: (N, D) float32, the plastic weights after each step, flattened (D = their total size).
        h: (N, H) float32, the hidden state after each step.
        x: (N, 15) float32, the network input of that step.
        lifetime, task, repeat, rollout, step: (N,) int, the step's lifetime (task-major flat
            index), task, repeat, rollout and index within its lifetime (0, 1, ... across rollouts).
        returns: (L, R) float64, each lifetime's rollout returns.
    """

    W: np.ndarray
    h: np.ndarray
    x: np.ndarray
    lifetime: np.ndarray
    task: np.ndarray
    repeat: np.ndarray
    rollout: np.ndarray
    step: np.ndarray
    returns: np.ndarray


class _Tap:
    """The model with ``step`` wrapped so that the recorder sees what the evaluator passed."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self.last: tuple | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def step(self, p, mem, x, live=None):
        y = self._model.step(p, mem, x, live)
        self.last = (p, mem, x.copy(), live)
        return y


def record(model: Model, genome: np.ndarray, tasks: TaskSet, repeats: int = 4, rollouts: int | None = None,
           seed: int = 0, profile: str = "evoplastic", plastic: bool = True) -> Recording:
    """Run ``len(tasks) * repeats`` lifetimes of one genome and record the memories at every step.

    The lifetimes are exactly those of ``lifetime.evaluate(model, genome, tasks, repeats, ...,
    seed=seed)`` (same seeds, same returns); the memories are ``model.memory_state`` after each
    step. Batches of at most ``lifetime.COMPACT_MIN`` lifetimes keep every row in place.
    ``plastic`` False: any model with a hidden state ``h``; ``W`` is then (N, 0).

    Raises:
        ValueError: not a recurrent plastic model (see :func:`plastic_keys`), or no ``h``.
        RuntimeError: the evaluator stepped a subset of the batch (rows could not be matched).
    """
    if plastic:
        keys = plastic_keys(model)
    elif "h" in model.memory_shapes():
        keys = []
    else:
        raise ValueError(f"{model.id} has no hidden state h to record")
    tap = _Tap(model)
    rows: dict[str, list] = {k: [] for k in ("W", "h", "x", "lifetime", "rollout")}

    def on_step(lives: np.ndarray, r: int, maze) -> None:
        p, mem, x, live = tap.last
        if len(x) != len(lives):
            raise RuntimeError(f"the evaluator stepped {len(x)} of {len(lives)} lifetimes; cannot match rows")
        state = model.memory_state(p, mem)
        sel = np.arange(len(lives)) if live is None else np.flatnonzero(live)
        rows["W"].append(np.concatenate([state[k][sel].reshape(len(sel), -1) for k in keys]
                                        or [np.zeros((len(sel), 0), F32)], axis=1))
        rows["h"].append(state["h"][sel])
        rows["x"].append(x[sel])
        rows["lifetime"].append(lives[sel])
        rows["rollout"].append(np.full(len(sel), r))

    res = lifetime.evaluate(tap, np.asarray(genome, F32)[None], tasks, repeats=repeats, rollouts=rollouts,
                            seed=seed, profile=profile, batch=lifetime.COMPACT_MIN, on_step=on_step)
    cat = {k: np.concatenate(v) for k, v in rows.items()}
    order = np.argsort(cat["lifetime"], kind="stable")  # lifetime-major, time order kept
    cat = {k: v[order] for k, v in cat.items()}
    life = cat["lifetime"]
    start = np.searchsorted(life, life, side="left")
    return Recording(cat["W"].astype(F32), cat["h"].astype(F32), cat["x"].astype(F32), life,
                     life // repeats, life % repeats, cat["rollout"], np.arange(len(life)) - start, res.returns[0])


# -- embedding -----------------------------------------------------------------------------------

def pca(x: np.ndarray, n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of ``x`` (N, D): (scores (N, n) float64, explained variance ratio (n,)).

    Centred, via SVD (``scipy.sparse.linalg.svds`` for wide data, where a full SVD would be slow);
    signs fixed so that each component's largest loading is positive.
    """
    xc = np.asarray(x, np.float64) - np.mean(x, axis=0, dtype=np.float64)
    total = float((xc ** 2).sum()) or 1.0
    if min(xc.shape) > 256:
        from scipy.sparse.linalg import svds

        u, s, vt = svds(xc, k=n, rng=np.random.default_rng(0))  # seeded start vector
        idx = np.argsort(s)[::-1]
        u, s, vt = u[:, idx], s[idx], vt[idx]
    else:
        u, s, vt = np.linalg.svd(xc, full_matrices=False)
        u, s, vt = u[:, :n], s[:n], vt[:n]
    sign = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
    return u * s * sign, s ** 2 / total


def embed(x: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D embedding (N, 2) of ``x`` (N, D): "pca" (default) or "tsne" (scikit-learn, extra ``analysis``).

    Raises:
        ImportError: t-SNE without scikit-learn installed.
        ValueError: unknown method.
    """
    if method == "pca":
        return pca(x, 2)[0]
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise ImportError("t-SNE needs scikit-learn: pip install 'evoplastic[analysis]'") from None
        z = pca(x, min(50, *np.shape(x)))[0]  # the usual PCA to 50 dimensions first
        return TSNE(2, init="pca", random_state=seed, perplexity=min(30.0, (len(x) - 1) / 3)).fit_transform(z)
    raise ValueError(f"unknown embedding {method!r}; use pca or tsne")


# -- measures ------------------------------------------------------------------------------------

def decode_accuracy(features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """Held-out nearest-centroid accuracy of ``labels`` from ``features`` (N, D), leaving one group out.

    For each group g: class centroids from the rows not in g, then each row of g gets the label of
    the nearest centroid (Euclidean). Rows whose label has no training row are skipped. Returns the
    fraction correct over the scored rows (NaN if none).
    """
    f = np.asarray(features, np.float64).reshape(len(labels), -1)
    right = total = 0
    for g in np.unique(groups):
        test = groups == g
        classes = np.unique(labels[~test])
        if not len(classes):
            continue
        cent = np.stack([f[~test & (labels == c)].mean(0) for c in classes])
        scored = test & np.isin(labels, classes)
        d = ((f[scored][:, None, :] - cent[None]) ** 2).sum(-1)
        right += int((classes[d.argmin(1)] == labels[scored]).sum())
        total += int(scored.sum())
    return right / total if total else float("nan")


def decoding_by_step(rec: Recording, what: str) -> np.ndarray:
    """Maze decoding accuracy from memory ``what`` ("W" or "h") at each lifetime step: (T,) float64.

    T is the shortest lifetime's length, so that every step is scored on all lifetimes (later
    steps would be scored only on the slow lifetimes, a biased subset).
    """
    feats = getattr(rec, what)
    t_max = int(np.bincount(rec.lifetime)[np.unique(rec.lifetime)].min())
    out = np.full(t_max, np.nan)
    for t in range(t_max):
        at = rec.step == t
        out[t] = decode_accuracy(feats[at], rec.task[at], rec.repeat[at])
    return out


def autocorrelation_time(x: np.ndarray) -> float:
    """Lags until the normalised autocorrelation of a trajectory ``x`` (T, D) drops below 1/e.

    ``rho(k) = mean_t <z_t, z_{t+k}> / mean_t |z_t|^2`` with ``z = x - mean_t x``. NaN when it
    stays above 1/e for every lag up to T/2 (the trajectory is slower than the lifetime) or
    the trajectory is constant.
    """
    z = np.asarray(x, np.float64).reshape(len(x), -1)
    z = z - z.mean(0)
    var = (z ** 2).sum(1).mean()
    if var == 0:
        return float("nan")
    for k in range(1, len(z) // 2 + 1):
        if (z[:-k] * z[k:]).sum(1).mean() / var < np.exp(-1):
            return float(k)
    return float("nan")


def analyse(rec: Recording) -> dict[str, Any]:
    """The table: decoding accuracy (per step and averaged over early/late thirds) and median
    autocorrelation times of W and h, with the chance level and the counts."""
    mazes = len(np.unique(rec.task))
    acc = {w: decoding_by_step(rec, w) for w in ("W", "h")}
    out: dict[str, Any] = {"mazes": mazes, "lifetimes": int(len(np.unique(rec.lifetime))),
                           "steps": int(len(rec.step)), "chance": 1.0 / mazes,
                           "decoding": {w: a.tolist() for w, a in acc.items()}}
    valid = ~np.isnan(acc["W"]) & ~np.isnan(acc["h"])
    thirds = np.array_split(np.flatnonzero(valid), 3)
    for w in ("W", "h"):
        out[f"decode_{w}_mean"] = float(np.nanmean(acc[w][valid])) if valid.any() else float("nan")
        out[f"decode_{w}_first_third"] = float(np.mean(acc[w][thirds[0]])) if len(thirds[0]) else float("nan")
        out[f"decode_{w}_last_third"] = float(np.mean(acc[w][thirds[2]])) if len(thirds[2]) else float("nan")
        taus = [autocorrelation_time(getattr(rec, w)[rec.lifetime == life]) for life in np.unique(rec.lifetime)]
        out[f"autocorr_{w}_median"] = float(np.nanmedian(taus)) if not np.isnan(taus).all() else float("nan")
        out[f"autocorr_{w}_undefined"] = int(np.isnan(taus).sum())
    return out


def format_table(stats: dict[str, Any], title: str) -> str:
    """Markdown table of :func:`analyse`'s scalars."""
    rows = [("maze decoding, mean over steps", "decode_{}_mean", "{:.3f}"),
            ("maze decoding, first third of the steps", "decode_{}_first_third", "{:.3f}"),
            ("maze decoding, last third of the steps", "decode_{}_last_third", "{:.3f}"),
            ("autocorrelation time (steps, median over lifetimes)", "autocorr_{}_median", "{:.1f}"),
            ("lifetimes whose autocorrelation stays above 1/e", "autocorr_{}_undefined", "{}")]
    lines = [f"### {title}", "", f"{stats['mazes']} mazes, {stats['lifetimes']} lifetimes, {stats['steps']} steps; "
             f"chance level {stats['chance']:.3f} (held-out nearest centroid, leave one repeat out)", "",
             "| measure | plastic weights W | hidden state h |", "|---|---|---|"]
    for name, key, fmt in rows:
        cells = ["—" if stats[key.format(w)] != stats[key.format(w)] else fmt.format(stats[key.format(w)])
                 for w in ("W", "h")]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


# -- figure --------------------------------------------------------------------------------------

FAMILIES = ("Blues", "Oranges", "Greens", "Reds", "Purples", "Greys", "YlOrBr", "BuGn", "RdPu", "GnBu")


def draw(fig, rec: Recording, stats: dict[str, Any], method: str = "pca", seed: int = 0) -> None:
    """Figure 7 style: the embedded trajectories of W and of h (one colour family per maze, light
    early, dark late in the lifetime), and the maze decoding accuracy per step with chance."""
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    axes = fig.subplots(1, 3)
    t_max = max(int(rec.step.max()), 1)
    for ax, what in zip(axes[:2], ("W", "h")):
        z = embed(getattr(rec, what), method, seed)
        for life in np.unique(rec.lifetime):
            sel = rec.lifetime == life
            cmap = colormaps[FAMILIES[int(rec.task[sel][0]) % len(FAMILIES)]]
            shade = 0.3 + 0.7 * rec.step[sel] / t_max
            pts = z[sel]
            segs = np.stack([pts[:-1], pts[1:]], axis=1)
            ax.add_collection(LineCollection(segs, colors=cmap(shade[1:]), linewidths=0.8 if what == "W" else 0.4))
            ax.scatter(pts[:, 0], pts[:, 1], c=cmap(shade), s=4, linewidths=0)
        ax.autoscale()
        name = {"W": "plastic weights W", "h": "hidden state h"}[what]
        ax.set_title(f"{name} ({method.upper()})")
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
    ax = axes[2]
    for what, color in (("W", "tab:blue"), ("h", "tab:red")):
        acc = np.asarray(stats["decoding"][what], float)
        ax.plot(np.arange(len(acc)), acc, color=color, lw=1, label=f"from {what}")
    ax.axhline(stats["chance"], color="k", ls=":", lw=1, label="chance")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step of the lifetime (while every lifetime runs)")
    ax.set_ylabel("held-out maze decoding accuracy")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("which maze: decoded from W vs h")


def write_analysis(model: Model, genome: np.ndarray, tasks: TaskSet, out_dir, title: str, repeats: int = 4,
                   rollouts: int | None = None, profile: str = "evoplastic", seed: int = 0,
                   method: str = "pca", stem: str = "memory") -> tuple[list, dict[str, Any]]:
    """Record, analyse and write ``<stem>.png``, ``<stem>.md`` and ``<stem>.json`` into ``out_dir``.

    Returns:
        (the paths written, the :func:`analyse` statistics with the run settings added).
    """
    import json
    from pathlib import Path

    from matplotlib.figure import Figure

    from evoplastic.atomic import write_atomic

    rec = record(model, genome, tasks, repeats, rollouts, seed, profile)
    stats = analyse(rec)
    stats.update(model=model.id, tasks=tasks.name, repeats=repeats, profile=profile, seed=seed, embedding=method,
                 mean_return_per_rollout=rec.returns.mean(0).tolist())
    out = Path(out_dir)
    fig = Figure(figsize=(15, 4.8), layout="constrained")
    draw(fig, rec, stats, method, seed)
    fig.suptitle(f"{title}: {stats['mazes']} mazes of {tasks.name} x {repeats} repeats, profile {profile}; "
                 f"one colour family per maze, light early -> dark late")
    png = write_atomic(out / f"{stem}.png", lambda f: fig.savefig(f, format="png", dpi=100))
    md = write_atomic(out / f"{stem}.md", lambda f: f.write(format_table(stats, title).encode()))
    js = write_atomic(out / f"{stem}.json", lambda f: f.write(json.dumps(stats, indent=1).encode()))
    return [png, md, js], stats
