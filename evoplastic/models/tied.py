"""Tied alpha-ABCD rules: Evolving & Merging (Pedersen & Risi, GECCO 2021; Wang et al. 2022, Table 1).

A PRNN (method §3, ``models/abcd.py``) has one rule vector ``(A, B, C, D)`` per plastic connection:
``H * (H + 15)`` of them. Evolving & Merging clusters those vectors with K-means
(:mod:`evoplastic.merge`) and re-evolves only the ``K`` cluster centres: connection ``(i, j)`` of
the fused memory ``[W_h | W_x]`` uses rule ``assignment[i, j]``, fixed for the whole run.

Genome (``TiedPRNN``): the PRNN's non-rule tensors (output head, bias, modulators) and
``rules`` (K, 4) holding ``(A, B, C, D)`` per cluster. With PostDN and H = 64 that is
``519 + 4 K`` genes; K = 3 H + 15 = 207 gives 1,347, DecPRNN(PostDN)'s N_Gene (the Dec rules
hold 4 rank-1 terms of ``H + H`` numbers for W_h and ``H + 15`` for W_x: ``4 (3 H + 15)`` genes,
exactly what 207 tied 4-vectors hold). The step is the PRNN's, on rule matrices gathered from the
K rules once per batch (``prepare``).

Model ids: ``prnn-postdn-tied@FILE`` (also ``prnn-tied``, ``prnn-predn-tied``) where ``FILE`` is the
tying file written by ``evoplastic merge`` (``.npz``: the assignment, the centres, the initial
genome, the source run and checksums). The bare id (no ``@FILE``) describes the default size
(K = 3 H + 15) for ``evoplastic models`` but cannot run.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic.models.abcd import PRNN
from evoplastic.models.base import F32, N_IN, N_OUT
from evoplastic.models.dec import _modulator_shapes

SUFFIX = "-tied"
TIED_IDS = ("prnn-tied", "prnn-predn-tied", "prnn-postdn-tied")
FORMAT = "evoplastic-tying"
FORMAT_VERSION = 1
RULES = "ABCD"


def default_k(hidden: int) -> int:
    """K for which the tied PRNN has the N_Gene of the DecPRNN with the same modulation: 3 H + 15."""
    return 3 * hidden + N_IN


def assignment_sha256(assignment: np.ndarray) -> str:
    """Checksum of an assignment: sha256 of its int32 C-order bytes and shape."""
    a = np.ascontiguousarray(assignment, dtype=np.int32)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()


@dataclass(frozen=True)
class Tying:
    """A fixed rule assignment and where it came from.

    Attributes:
        assignment: (H, H + 15) int32, cluster id in [0, K) of each connection of ``[W_h | W_x]``.
        centres: (K, 4) float32, the K-means centres (A, B, C, D) of the source genome's rules.
        init_genome: (N_Gene,) float32, the tied genome to start re-evolving from (centres and the
            source genome's other tensors).
        meta: JSON-able provenance (source run, genome, checksums, K-means settings).
        path: the file it was read from ('' when not from a file).
    """

    assignment: np.ndarray
    centres: np.ndarray
    init_genome: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    @property
    def k(self) -> int:
        return int(len(self.centres))

    def save(self, path: str | Path) -> Path:
        """Write the tying atomically as ``.npz`` (no pickles); the meta gets the checksum."""
        from evoplastic.atomic import write_atomic

        meta = dict(self.meta, format=FORMAT, format_version=FORMAT_VERSION, k=self.k,
                    hidden=int(self.assignment.shape[0]),
                    assignment_sha256=assignment_sha256(self.assignment))
        arrays = {"assignment": np.asarray(self.assignment, np.int32), "centres": np.asarray(self.centres, F32),
                  "init_genome": np.asarray(self.init_genome, F32), "meta": np.array(json.dumps(meta, sort_keys=True))}
        return write_atomic(Path(path), lambda f: np.savez(f, **arrays))


def load_tying(path: str | Path) -> Tying:
    """Read a tying file; checks its format and that the assignment matches its checksum.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a tying file, or the assignment does not match its checksum or K.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such tying file (write one with `evoplastic merge`)")
    st = path.stat()
    return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int, _size: int) -> Tying:
    try:
        with np.load(path, allow_pickle=False) as z:
            a, c, g, meta = z["assignment"], z["centres"], z["init_genome"], json.loads(str(z["meta"]))
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable tying file ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tying file (format {meta.get('format')!r})")
    if assignment_sha256(a) != meta.get("assignment_sha256"):
        raise ValueError(f"{path}: the assignment does not match its checksum (file changed or corrupt)")
    h = a.shape[0]
    if a.shape != (h, h + N_IN) or c.shape != (meta["k"], 4) or a.min() < 0 or a.max() >= len(c):
        raise ValueError(f"{path}: inconsistent tying (assignment {a.shape}, centres {c.shape})")
    a.setflags(write=False), c.setflags(write=False), g.setflags(write=False)
    return Tying(a, c, g, meta, path)


@dataclass(frozen=True)
class TiedPRNN(PRNN):
    """PRNN whose per-connection alpha-ABCD rules are K shared rules (see the module docstring).

    ``tying`` None: the default K (:func:`default_k`), for sizes only (``prepare`` raises).
    """

    tying: Tying | None = field(default=None, compare=False, hash=False)

    @property
    def k(self) -> int:
        return default_k(self.hidden) if self.tying is None else self.tying.k

    @property
    def id(self) -> str:  # type: ignore[override]
        base = super().id + SUFFIX
        return base if self.tying is None or not self.tying.path else f"{base}@{self.tying.path}"

    doc = "Evolving & Merging: PRNN with K tied alpha-ABCD rules (needs @FILE from `evoplastic merge`)"

    def param_shapes(self):
        h = self.hidden
        return ([("W_o", (N_OUT, h)), ("b_o", (N_OUT,)), ("b", (h,)), ("rules", (self.k, 4))]
                + _modulator_shapes(self.modulation, 2, N_IN, h))

    def initial_genome(self) -> np.ndarray:
        """(N_Gene,) float32: the cluster centres and the source genome's other tensors."""
        if self.tying is None:
            raise ValueError(f"{self.id} has no tying file: use {self.id}@FILE (see `evoplastic merge`)")
        return np.array(self.tying.init_genome, F32)

    def prepare(self, p):
        """Gather the full rule matrices ``A..D`` (B, H, H + 15) from ``rules`` (B, K, 4), once per batch."""
        if self.tying is None:
            raise ValueError(f"{self.id} has no rule assignment: use {self.id}@FILE (see `evoplastic merge`)")
        q = dict(p)
        gathered = p["rules"][:, self.tying.assignment]  # (B, H, H + 15, 4)
        for i, r in enumerate(RULES):
            q[r] = np.ascontiguousarray(gathered[..., i])
        return self._compiled_parts(q)


def make_tied(model_id: str, hidden: int) -> TiedPRNN:
    """The tied model for ``prnn[-predn|-postdn]-tied[@FILE]``.

    Raises:
        ValueError: unknown base id, or ``hidden`` differs from the file's.
    """
    base, at, path = model_id.partition("@")
    modulation = {"prnn-tied": "none", "prnn-predn-tied": "pre", "prnn-postdn-tied": "post"}.get(base)
    if modulation is None:
        raise ValueError(f"unknown tied model {base!r}; tied models: {', '.join(TIED_IDS)}")
    if not at:
        return TiedPRNN(hidden, modulation)
    tying = load_tying(path)
    if tying.meta.get("model") not in (None, base):
        raise ValueError(f"{path} ties a {tying.meta['model']} model, not {base}")
    h = int(tying.assignment.shape[0])
    if hidden != h:
        raise ValueError(f"{path} ties a model with {h} hidden units, not {hidden}")
    return TiedPRNN(h, modulation, Tying(tying.assignment, tying.centres, tying.init_genome, tying.meta, path))


def resolve_id(model_id: str, base_dir: str | Path) -> str:
    """``model_id`` with a relative ``@FILE`` made absolute against ``base_dir`` (a config's folder)."""
    base, at, path = model_id.partition("@")
    if not at:
        return model_id
    mask = ""
    if "+" in path:  # "<id>@FILE+mask"
        path, mask = path.split("+", 1)
        mask = "+" + mask
    p = Path(path)
    return f"{base}@{p if p.is_absolute() else (Path(base_dir) / p).resolve()}{mask}"
