"""Import the paper code's checkpoints (method §6) and map its genome layout (method §3) onto ours.

A reference checkpoint (WorldEditors/EvolvingPlasticANN, ``EStool.ESTool.save``) is 8 consecutive
pickles: the population ``[[vector, score], ...]``, ``(mean_vector, static_dict)`` (older files:
the bare mean vector), ``cov``, ``p_c``, ``p_sigma``, ``sigma``, ``dim``, ``generation``. They are
read only through :mod:`evoplastic.safepickle`.

The reference genome (``Parameters.to_vector`` in its ``parameters.py``) is the C-order
concatenation of named tensors in Python ``sorted()`` order of their names. The names come from
its ``models_zoo.py`` (layer prefixes) and ``epann/layers.py`` (tensor names): ``FC`` layers hold
``<prefix>/W`` of shape (out, in), applied as ``W @ x + b``, which is evoplastic's convention too,
so every tensor maps as it is (no transposition); only the order of the tensors differs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic import safepickle
from evoplastic.errors import UserError
from evoplastic.models import N_IN, N_OUT, Model, get_model

F32 = np.float32
_DEC = ("Ax", "Ay", "Bx", "By", "Cx", "Cy", "Dx", "Dy")  # Hebbian3 vectors (x: pre side, y: post side)

# One layout entry: (reference name, reference shape, evoplastic tensor name).
Entry = tuple[str, tuple[int, ...], str]


def _fc(prefix: str, out: int, inp: int, evo_w: str, evo_b: str) -> list[Entry]:
    """A reference ``FC`` layer: ``<prefix>/W`` (out, in) and ``<prefix>/b`` (out,)."""
    return [(f"{prefix}/W", (out, inp), evo_w), (f"{prefix}/b", (out,), evo_b)]


def _dec(prefix: str, d_y: int, d_x: int, evo: str) -> list[Entry]:
    """A reference ``Hebbian3`` (Dec rule): ``<prefix>//W_Ax`` ... ``<prefix>//W_Dy``."""
    return [(f"{prefix}//W_{v}", (d_y,) if v.endswith("y") else (d_x,), f"{evo}.{v}") for v in _DEC]


def _abcd(prefix: str, d_y: int, d_x: int, evo: str) -> list[Entry]:
    """A reference ``Hebbian`` (alpha-ABCD rule): full matrices ``<prefix>/A`` ... ``<prefix>/D``."""
    return [(f"{prefix}/{r}", (d_y, d_x), f"{evo}.{r}") for r in "ABCD"]


def _prnn(h: int, modulation: str, rule: str) -> list[Entry]:
    """ModelPRNN{NoMod,AfterMod,PreMod}: PlasticRNN ``PRNN_1``, head ``FC_1``, modulators."""
    plastic = _dec if rule == "dec" else _abcd
    out = (_fc("FC_1", N_OUT, h, "W_o", "b_o") + [("PRNN_1//b", (h,), "b")]
           + plastic("PRNN_1/hebbian_h", h, h, "h") + plastic("PRNN_1/hebbian_x", h, N_IN, "x"))
    if modulation == "post":  # mod[0] modulates W_h, mod[1] W_x
        out += _fc("FC_M", 2, h, "m.W", "m.b")
    elif modulation == "pre":  # the reference's names are swapped: FC_Mh reads x, FC_Mx reads h
        out += _fc("FC_Mh", 2, N_IN, "m_in.W", "m_in.b") + _fc("FC_Mx", 2, h, "m_h.W", "m_h.b")
    return out


def _pdnn(h: int, modulation: str) -> list[Entry]:
    """ModelPFC{NoMod,AfterMod,PreMod}: PlasticFC ``PFC_1``, ``PFC_2`` (bias in ``fc``), head ``FC_1``;
    ``FC_Mh`` modulates layer 1 and ``FC_Mx`` layer 2 (one output each)."""
    out = (_fc("FC_1", N_OUT, h, "W_o", "b_o")
           + [("PFC_1/fc/b", (h,), "b1")] + _dec("PFC_1/hebbian", h, N_IN, "l1")
           + [("PFC_2/fc/b", (h,), "b2")] + _dec("PFC_2/hebbian", h, h, "l2"))
    if modulation in ("pre", "post"):
        out += (_fc("FC_Mh", 1, N_IN if modulation == "pre" else h, "m1.W", "m1.b")
                + _fc("FC_Mx", 1, h, "m2.W", "m2.b"))
    return out


_LAYOUTS = {
    "decprnn": lambda h: _prnn(h, "none", "dec"),
    "decprnn-predn": lambda h: _prnn(h, "pre", "dec"),
    "decprnn-postdn": lambda h: _prnn(h, "post", "dec"),
    "decpdnn": lambda h: _pdnn(h, "none"),
    "decpdnn-predn": lambda h: _pdnn(h, "pre"),
    "decpdnn-postdn": lambda h: _pdnn(h, "post"),
    "prnn": lambda h: _prnn(h, "none", "abcd"),
    "prnn-predn": lambda h: _prnn(h, "pre", "abcd"),
    "prnn-postdn": lambda h: _prnn(h, "post", "abcd"),
    # ModelRNNBase1 / ModelLSTMBase1: one recurrent layer whose FC reads [x_t; h_{t-1}] (input
    # first), head FC_2. The LSTM splits its 4H pre-activations as (g, i, f, o), like ours.
    "meta-rnn": lambda h: _fc("FC_2", N_OUT, h, "W_o", "b_o") + _fc("RNN_1/fc", h, N_IN + h, "W", "b"),
    "meta-lstm": lambda h: _fc("FC_2", N_OUT, h, "W_o", "b_o") + _fc("LSTM_1/fc", 4 * h, N_IN + h, "W", "b"),
    # ModelFCBase2: FC_1, FC_2 (tanh), FC_3 (head).
    "meta-dnn": lambda h: (_fc("FC_1", h, N_IN, "W1", "b1") + _fc("FC_2", h, h, "W2", "b2")
                           + _fc("FC_3", N_OUT, h, "W_o", "b_o")),
    "dnn": lambda h: (_fc("FC_1", h, 9, "W1", "b1") + _fc("FC_2", h, h, "W2", "b2")
                      + _fc("FC_3", N_OUT, h, "W_o", "b_o")),
}
REFERENCE_MODELS = tuple(_LAYOUTS)


def reference_layout(model: Model) -> list[Entry]:
    """The reference genome layout of ``model``: entries in the reference vector's order."""
    try:
        entries = _LAYOUTS[model.id](model.hidden)
    except KeyError:
        raise UserError(f"no reference layout for model {model.id!r}; importable models: "
                         f"{', '.join(REFERENCE_MODELS)}") from None
    ours = dict(model.param_shapes())
    theirs = {evo: shape for _, shape, evo in entries}
    if ours != theirs:  # a programming error: the two layouts must name the same tensors
        raise RuntimeError(f"{model.id}: reference layout {theirs} does not match {ours}")
    return sorted(entries, key=lambda e: e[0])  # Parameters.to_vector: sorted(names)


def _as_batch(vectors: np.ndarray, n: int, what: str, model: Model) -> tuple[np.ndarray, bool]:
    v = np.asarray(vectors, dtype=F32)
    one = v.ndim == 1
    v = v[None] if one else v
    if v.ndim != 2 or v.shape[1] != n:
        raise UserError(f"{model.id} (hidden {model.hidden}) has {n} genes; got {what} of shape "
                         f"{np.shape(vectors)}")
    return v, one


def to_evoplastic(vectors: np.ndarray, model: Model) -> np.ndarray:
    """Reference-layout genome(s) (N,) or (P, N) -> evoplastic layout, same shape, float32."""
    entries = reference_layout(model)
    v, one = _as_batch(vectors, model.n_gene, "reference vectors", model)
    params, at = {}, 0
    for _, shape, evo in entries:
        size = int(np.prod(shape))
        params[evo] = v[:, at:at + size].reshape((len(v),) + shape)
        at += size
    out = model.pack(params)
    return out[0] if one else out


def to_reference(vectors: np.ndarray, model: Model) -> np.ndarray:
    """Inverse of :func:`to_evoplastic`: evoplastic-layout genome(s) -> reference layout."""
    entries = reference_layout(model)
    v, one = _as_batch(vectors, model.n_gene, "genomes", model)
    named = model.unpack(v)
    out = np.concatenate([named[evo].reshape(len(v), -1) for _, _, evo in entries], axis=1)
    return out[0] if one else out


# -- checkpoints ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReferenceCheckpoint:
    """The contents of one reference checkpoint, vectors in the reference layout.

    Attributes:
        mean: (N,) float32, the distribution mean (the genome the reference evaluates).
        population: (P, N) float32 and scores (P,) float64 (-1e8: not evaluated yet).
        source_format: ``"current"`` ((mean, static_dict)) or ``"bare-vector"`` (older files).
    """

    path: Path
    sha256: str
    source_format: str
    mean: np.ndarray
    static: dict[str, Any]
    population: np.ndarray
    scores: np.ndarray
    cov: np.ndarray
    p_c: np.ndarray
    p_sigma: np.ndarray
    sigma: float
    dim: int
    generation: int


def _vector(obj: Any, what: str, path: Path) -> np.ndarray:
    a = np.asarray(obj) if isinstance(obj, (np.ndarray, list)) else None
    if a is None or a.ndim != 1 or a.size == 0 or not np.issubdtype(a.dtype, np.number):
        raise UserError(f"{path}: not a reference checkpoint ({what} is {type(obj).__name__}, "
                         "expected a non-empty 1-D numeric array)")
    return a.astype(F32)


def read_checkpoint(path: str | Path) -> ReferenceCheckpoint:
    """Read a reference checkpoint with the restricted unpickler (method §6).

    Raises:
        FileNotFoundError: no such file.
        safepickle.UnsafePickleError: a pickle asks for anything but numpy arrays and containers.
        safepickle.CorruptPickleError: truncated or not a pickle.
        ValueError: readable, but not an 8-pickle checkpoint of consistent sizes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such reference checkpoint")
    objs = safepickle.load_all(path, max_objects=9)
    first = objs[0]
    if not isinstance(first, list) or not all(isinstance(m, (list, tuple)) and len(m) == 2 for m in first):
        kind = f"a list of {type(first[0]).__name__}" if isinstance(first, list) and first else type(first).__name__
        hint = " (a task file?)" if isinstance(first, list) and first and isinstance(first[0], dict) else ""
        raise UserError(f"{path}: not a reference checkpoint: its first pickle should be the population, "
                         f"a list of [vector, score], but is {kind}{hint}")
    if len(objs) != 8:
        raise UserError(f"{path}: not a complete reference checkpoint: it holds {len(objs)} pickle(s), "
                         "a checkpoint holds 8 (population, mean, cov, p_c, p_sigma, sigma, dim, "
                         "generation)" + (" (truncated?)" if len(objs) < 8 else ""))
    pop_raw, mean_raw, cov, p_c, p_s, sigma, dim, gen = objs
    if isinstance(mean_raw, tuple) and len(mean_raw) == 2 and isinstance(mean_raw[1], dict):
        fmt, (mean_raw, static) = "current", mean_raw
    else:
        fmt, static = "bare-vector", {}
    mean = _vector(mean_raw, "the mean", path)
    n = mean.size
    members = [_vector(v, "a population vector", path) for v, _ in pop_raw]
    if any(m.size != n for m in members) or not all(
            isinstance(s, (float, int, np.floating, np.integer)) for _, s in pop_raw):
        raise UserError(f"{path}: inconsistent reference checkpoint (population vectors must have the "
                         f"mean's {n} genes and numeric scores)")
    population = np.stack(members) if members else np.zeros((0, n), F32)
    scores = np.array([float(s) for _, s in pop_raw], dtype=np.float64)
    vecs = {"cov": _vector(cov, "cov", path), "p_c": _vector(p_c, "p_c", path),
            "p_sigma": _vector(p_s, "p_sigma", path)}
    sizes = {"mean": n, "population": population.shape[1], "dim": dim, **{k: v.size for k, v in vecs.items()}}
    if not isinstance(dim, (int, np.integer)) or len(set(int(s) for s in sizes.values())) != 1:
        raise UserError(f"{path}: inconsistent reference checkpoint (sizes {sizes})")
    if not isinstance(sigma, (float, int, np.floating, np.integer)) or not isinstance(gen, (int, np.integer)):
        raise UserError(f"{path}: not a reference checkpoint (sigma {type(sigma).__name__}, generation "
                         f"{type(gen).__name__}: expected numbers)")
    if not np.isfinite(mean).all():
        raise UserError(f"{path}: the checkpoint's mean vector holds NaN or infinite values")
    return ReferenceCheckpoint(path, hashlib.sha256(path.read_bytes()).hexdigest(), fmt, mean, static,
                               population, scores, vecs["cov"], vecs["p_c"], vecs["p_sigma"],
                               float(sigma), int(dim), int(gen))


def _length_hint(n: int, hidden: int) -> str:
    """Which importable models have ``n`` genes at this hidden size (or at 64)."""
    fits = [f"{m} (hidden {h})" for h in dict.fromkeys((hidden, 64)) for m in REFERENCE_MODELS
            if get_model(m, h).n_gene == n]
    if fits:
        return "; a genome of that length fits " + ", ".join(fits)
    # models_zoo.py's ModelPRNNPreMod gives FC_Mh and FC_Mx ONE output each (one modulator per
    # plastic matrix, not method §3's sum of two): 1,298 genes at hidden 64, the paper's Table 1 count.
    if n == get_model("decprnn", hidden).n_gene + (N_IN + 1) + (hidden + 1):
        return ("; that is the reference's DecPRNN(PreDN) with one output per modulator (the paper's "
                "1,298 at hidden 64), which evoplastic's decprnn-predn (2 outputs each, method §3) cannot hold")
    return ""


def import_genome(path: str | Path, model_id: str, hidden: int = 64) -> tuple[np.ndarray, dict[str, Any]]:
    """The mean vector of a reference checkpoint in evoplastic's layout, and genome metadata."""
    model = get_model(model_id, hidden)
    reference_layout(model)  # unsupported models fail before reading the file
    ck = read_checkpoint(path)
    if ck.mean.size != model.n_gene:
        raise UserError(f"{ck.path}: the checkpoint's genome has {ck.mean.size} genes, but {model.id} "
                         f"(hidden {model.hidden}) has {model.n_gene}{_length_hint(ck.mean.size, hidden)}")
    meta = {"source": str(ck.path), "source_sha256": ck.sha256, "source_format": ck.source_format,
            "source_layout": "reference (sorted tensor names, method §3)", "generation": ck.generation,
            "sigma": ck.sigma, "population": int(len(ck.population))}
    return to_evoplastic(ck.mean, model), meta


def import_to_file(path: str | Path, model_id: str, hidden: int, out: str | Path) -> tuple[Path, dict[str, Any]]:
    """Import a checkpoint's mean vector and save it as an evoplastic genome ``.npz``."""
    from evoplastic import genome as genome_io

    g, meta = import_genome(path, model_id, hidden)
    return genome_io.save(out, g, model_id, hidden, **meta), meta
