"""``evoplastic merge``: Evolving & Merging (Pedersen & Risi, GECCO 2021; Wang et al. 2022, Table 1).

Take a trained PRNN (per-connection alpha-ABCD rules, method §3), cluster its ``H (H + 15)`` rule
vectors ``(A, B, C, D)`` with K-means (``scipy.cluster.vq.kmeans2``, k-means++ seeding, the best
of ``n_init`` seeded restarts by inertia) and write

- ``<config stem>.tying.npz`` beside the config: the assignment of every connection to a cluster,
  the centres, the tied initial genome, the source run, the source genome's sha256 and the
  assignment's checksum (:class:`evoplastic.models.tied.Tying`);
- the config: the source run's config with ``model.id: <prnn id>-tied@<tying file>``; training it
  starts the strategy's mean at the tied initial genome (the centres plus the source genome's
  other tensors, e.g. its output head and modulator).

K defaults to ``3 H + 15`` (207 for H = 64), which gives the tied PRNN(PostDN) the N_Gene of
DecPRNN(PostDN), 1,347 (see :mod:`evoplastic.models.tied`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from evoplastic.models.abcd import PRNN
from evoplastic.models.base import F32
from evoplastic.models.tied import RULES, SUFFIX, TiedPRNN, Tying, default_k


def rule_vectors(model: PRNN, genome: np.ndarray) -> np.ndarray:
    """The per-connection rules of a PRNN genome: (H * (H + 15), 4) float32, rows in C order over
    the fused memory ``[W_h | W_x]`` (row ``i * (H + 15) + j`` is connection (i, j)), columns A, B, C, D."""
    p = model.unpack(genome)
    return np.stack([np.concatenate([p[f"h.{r}"][0], p[f"x.{r}"][0]], axis=1) for r in RULES],
                    axis=-1).reshape(-1, 4)


def kmeans(vectors: np.ndarray, k: int, seed: int = 0, n_init: int = 8, iters: int = 100
           ) -> tuple[np.ndarray, np.ndarray, float]:
    """K-means of ``vectors`` (N, d): (centres (k, d) float64, labels (N,) int32, inertia).

    ``scipy.cluster.vq.kmeans2`` with k-means++ seeding; ``n_init`` restarts from one
    ``numpy.random.Generator(seed)``, the one with the least inertia (sum of squared distances
    to the centres) kept. Deterministic for a given seed.

    Raises:
        ValueError: ``k`` is not in [1, N].
    """
    from scipy.cluster.vq import kmeans2

    x = np.asarray(vectors, np.float64)
    if not 1 <= k <= len(x):
        raise ValueError(f"K-means needs 1 <= clusters <= {len(x)} (the number of rule vectors), got {k}")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(n_init):
        centres, labels = kmeans2(x, k, iter=iters, minit="++", missing="warn", rng=rng)
        inertia = float(((x - centres[labels]) ** 2).sum())
        if best is None or inertia < best[2]:
            best = (centres, labels.astype(np.int32), inertia)
    return best


def tie(model: PRNN, genome: np.ndarray, k: int, seed: int = 0, n_init: int = 8) -> Tying:
    """Cluster a PRNN genome's rules into ``k`` tied rules (see the module docstring).

    Returns:
        A :class:`Tying` whose ``init_genome`` is the tied genome: ``rules`` = the centres (float32),
        every other tensor copied from ``genome``. ``meta`` holds the K-means settings and inertia.
    """
    if type(model) is not PRNN:
        raise ValueError(f"Evolving & Merging ties the per-connection rules of a PRNN (prnn, prnn-predn, "
                         f"prnn-postdn), not {model.id}")
    centres, labels, inertia = kmeans(rule_vectors(model, genome), k, seed, n_init)
    h = model.hidden
    assignment = labels.reshape(h, h + 15)
    tied = TiedPRNN(h, model.modulation, Tying(assignment, centres.astype(F32), np.zeros(0, F32)))
    src = model.unpack(genome)
    params = {name: (centres[None].astype(F32) if name == "rules" else src[name])
              for name, _ in tied.param_shapes()}
    used = int(len(np.unique(labels)))
    meta = {"model": model.id + SUFFIX, "kmeans": "scipy.cluster.vq.kmeans2 (k-means++)", "seed": int(seed),
            "n_init": int(n_init), "inertia": inertia, "clusters_used": used}
    return Tying(assignment, centres.astype(F32), tied.pack(params)[0], meta)


def merge_run(run_dir: str | Path, out_config: str | Path, k: int | None = None, which: str = "best",
              seed: int = 0, n_init: int = 8) -> tuple[Path, Path, Tying]:
    """Tie the rules of a PRNN run's genome and write the tying file and the re-evolution config.

    Args:
        run_dir: a training run directory of a ``prnn*`` model.
        out_config: the config YAML to write; the tying goes beside it as ``<stem>.tying.npz``.
        k: clusters (default :func:`evoplastic.models.tied.default_k`).
        which: "best" (best-validated) or "mean" genome of the run.

    Returns:
        (config path, tying path, the tying).

    Raises:
        ValueError: not a PRNN run, no such genome yet, or a bad K.
    """
    from evoplastic import evaluate
    from evoplastic.models import get_model

    run_dir, out_config = Path(run_dir), Path(out_config)
    if not evaluate.is_run_dir(run_dir):
        raise ValueError(f"{run_dir}: not a run directory (no checkpoints/)")
    (src,) = evaluate.resolve(str(run_dir), which)
    model = get_model(src.model, src.hidden)
    generation = int(src.meta["generation"])
    if which == "best":  # the checkpoint's generation is not the best genome's
        from evoplastic import checkpoint as ckpt

        generation = int(ckpt.load_latest(run_dir)[1]["best_generation"])
    k = default_k(model.hidden) if k is None else int(k)
    tying = tie(model, src.genome, k, seed, n_init)
    tying = Tying(tying.assignment, tying.centres, tying.init_genome, dict(
        tying.meta, source_run=str(run_dir.resolve()), source_genome=which,
        source_generation=generation,
        source_genome_sha256=hashlib.sha256(np.asarray(src.genome, F32).tobytes()).hexdigest()))
    tying_path = tying.save(out_config.with_name(out_config.stem + ".tying.npz"))
    data = yaml.safe_load((run_dir / "config.yaml").read_text())
    data["name"] = f"{data.get('name', run_dir.name)}-tied-k{k}"
    data["model"]["id"] = f"{model.id}{SUFFIX}@{tying_path.name}"
    head = (f"# Evolving & Merging: re-evolve {k} tied rules of {src.model} from {run_dir} "
            f"({which} genome, generation {generation}).\n"
            f"# Written by `evoplastic merge`; the assignment is in {tying_path.name} (beside this file).\n")
    out_config.parent.mkdir(parents=True, exist_ok=True)
    out_config.write_text(head + yaml.safe_dump(data, sort_keys=False))
    return out_config, tying_path, tying


def describe(tying: Tying) -> dict[str, Any]:
    """A one-line-able summary of a tying (for the command line)."""
    sizes = np.bincount(tying.assignment.ravel(), minlength=tying.k)
    return {"k": tying.k, "connections": int(tying.assignment.size), "clusters_used": int((sizes > 0).sum()),
            "largest_cluster": int(sizes.max()), "inertia": tying.meta.get("inertia"),
            "n_gene": int(tying.init_genome.size)}
