"""Genome files: one flat float32 vector and its metadata, as ``.npz`` (no pickles).

Arrays ``genome`` (N,) float32 and ``meta`` (a JSON string: model id, hidden size, source, ...).
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic.atomic import write_atomic

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
    try:
        with np.load(path, allow_pickle=False) as z:
            if "genome" not in z.files or "meta" not in z.files:
                raise KeyError("genome/meta")
            genome, meta = z["genome"], json.loads(str(z["meta"]))
    except KeyError:
        raise ValueError(f"{path}: not an evoplastic genome file (needs arrays 'genome' and 'meta')") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
        why = "it holds pickled objects" if "pickle" in str(exc) else f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{path}: unreadable or corrupt genome file ({why})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not an evoplastic genome file (format {meta!r:.60})")
    if genome.ndim != 1 or genome.dtype != np.float32 or genome.size != meta.get("n_gene"):
        raise ValueError(f"{path}: corrupt genome file (genome shape {genome.shape}, dtype {genome.dtype})")
    if not np.isfinite(genome).all():
        raise ValueError(f"{path}: the genome holds NaN or infinite values")
    return genome, meta
