"""Run checkpoints: one ``.npz`` per checkpoint (arrays + a JSON metadata string), no pickles.

``RUN_DIR/checkpoints/ckpt-0000120.npz`` holds the state after 120 completed generations: the
strategy's state (``es/...`` arrays, including its random generator), the best-validated genome,
counters and the resolved config with its hash. Files are written atomically (temp file, fsync,
rename), so a kill at any moment leaves the previous checkpoints intact; the newest ``keep`` are
kept. A truncated or corrupt file is detected (zip CRC, a SHA-256 of the arrays in the metadata)
and :func:`load_latest` falls back to the previous good one, saying so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic import safenpz
from evoplastic.atomic import write_atomic
from evoplastic.errors import UserError

FORMAT = "evoplastic-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{7})\.npz$")

log = logging.getLogger("evoplastic.checkpoint")


class CheckpointError(UserError):
    """No usable checkpoint (missing, truncated, corrupt or of another format)."""


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def ckpt_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save(run_dir: str | Path, generation: int, arrays: dict[str, np.ndarray], meta: dict[str, Any],
         keep: int = 3) -> Path:
    """Write checkpoint ``generation`` atomically and delete all but the newest ``keep``."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    info = dict(meta, format=FORMAT, format_version=FORMAT_VERSION, generation=int(generation),
                arrays_sha256=_digest(arrays))
    path = ckpt_dir(run_dir) / f"ckpt-{generation:07d}.npz"
    write_atomic(path, lambda f: np.savez(f, __meta__=np.array(json.dumps(info, sort_keys=True)), **arrays))
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    for tmp in ckpt_dir(run_dir).glob("*.tmp"):  # left by a process killed mid-write
        tmp.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files of a run, oldest first."""
    d = ckpt_dir(run_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if _NAME.match(p.name))


def load(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify one checkpoint: (arrays, metadata)."""
    path = Path(path)
    try:
        arrays = safenpz.read(path, "checkpoint")
        meta = json.loads(str(arrays.pop("__meta__")))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except UserError as exc:  # corrupt, or over a size limit: already one line naming the file
        raise CheckpointError(str(exc)) from None
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an evoplastic checkpoint (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('format_version')}, this "
                              f"evoplastic reads version {FORMAT_VERSION}")
    if meta.get("arrays_sha256") != _digest(arrays):
        raise CheckpointError(f"{path}: corrupt checkpoint (array checksum mismatch)")
    return arrays, meta


def load_latest(run_dir: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
    """The newest good checkpoint of a run; corrupt newer ones are reported and skipped."""
    problems = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            arrays, meta = load(path)
        except CheckpointError as exc:
            log.warning("%s; falling back to the previous checkpoint", exc)
            problems.append(str(exc))
            continue
        return arrays, meta, path
    if problems:
        raise CheckpointError(f"{run_dir}: no good checkpoint ({'; '.join(problems)})")
    raise CheckpointError(f"{run_dir}: no checkpoint found in {ckpt_dir(run_dir)} (is this a run directory?)")
