"""Genome files: one flat float32 vector and its metadata, as ``.npz`` (no pickles).

Arrays ``genome`` (N,) float32 and ``meta`` (a JSON string: model id, hidden size, source, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic import safenpz
from evoplastic.atomic import write_atomic
from evoplastic.errors import UserError

FORMAT = "evoplastic-genome"
FORMAT_VERSION = 1


def save(path: str | Path, genome: np.ndarray, model_id: str, hidden: int, **meta: Any) -> Path:
    """Write a genome atomically (temp file + rename)."""
    path = Path(path)
    g = np.asarray(genome, dtype=np.float32).reshape(-1)
    info = dict(meta, format=FORMAT, format_version=FORMAT_VERSION, model=model_id, hidden=int(hidden),
                n_gene=int(g.size))
    return write_atomic(path, lambda f: np.savez(f, genome=g, meta=np.array(json.dumps(info, sort_keys=True))))


def load(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a genome file: (genome (N,) float32, metadata). Clear errors for bad files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such genome file")
    arrays = safenpz.read(path, "genome file")
    if "genome" not in arrays or "meta" not in arrays:
        raise UserError(f"{path}: not an evoplastic genome file (needs arrays 'genome' and 'meta')")
    genome = arrays["genome"]
    try:
        meta = json.loads(str(arrays["meta"]))
    except ValueError as exc:
        raise UserError(f"{path}: corrupt genome file (metadata: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}: not an evoplastic genome file (format {meta!r:.60})")
    if genome.ndim != 1 or genome.dtype != np.float32 or genome.size != meta.get("n_gene"):
        raise UserError(f"{path}: corrupt genome file (genome shape {genome.shape}, dtype {genome.dtype})")
    if not np.isfinite(genome).all():
        raise UserError(f"{path}: the genome holds NaN or infinite values")
    return genome, meta
