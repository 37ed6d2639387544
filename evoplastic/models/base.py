"""What every model is: named parameter tensors in one flat float32 genome, memories, one step.

A model is stateless; a batch of lifetimes is explicit state:

- ``params``: dict name -> (B, *shape) float32, the genome tensors of each lifetime's genome
  (gathered once per batch by the evaluator, so broadcasting per genome is plain indexing);
- ``mem``: dict name -> (B, ...) float32, the memories (plastic weights, hidden state), zero at
  the start of a lifetime (method §2) unless a model says otherwise;
- ``step(params, mem, x, live)`` maps inputs (B, 15) to outputs (B, 5) and updates ``mem`` in
  place; lifetimes whose ``live`` is False keep their memories unchanged (their episode is over).

The genome layout is evoplastic's own: the C-order concatenation of ``param_shapes()`` in the order
listed (the reference code's sorted-name layout is mapped by the importer).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

N_IN = 15  # method §2: 9 observation values, one-hot previous action (4), previous reward, previous done
N_OUT = 5  # 4 action preferences and the greediness logit
F32 = np.float32


@dataclass(frozen=True)
class Model:
    """Base class. Subclasses set ``id``, ``param_shapes``, ``memory_shapes`` and ``step``."""

    hidden: int = 64

    id = "model"
    doc = ""
    # True when every hidden unit's activity passes through gate() right where it is computed,
    # so that a structure mask (models/masked.py, id "<id>+mask") can switch units off.
    maskable = False

    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        raise NotImplementedError

    def memory_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-lifetime memory arrays (without the batch axis)."""
        raise NotImplementedError

    def step(self, params: dict[str, np.ndarray], mem: dict[str, np.ndarray], x: np.ndarray,
             live: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    # -- genome <-> named tensors ---------------------------------------------------------------

    @cached_property
    def _offsets(self) -> list[tuple[str, tuple[int, ...], int, int]]:
        out, at = [], 0
        for name, shape in self.param_shapes():
            size = int(np.prod(shape, dtype=np.int64))
            out.append((name, tuple(shape), at, at + size))
            at += size
        return out

    @property
    def n_gene(self) -> int:
        """Genome length N_Gene."""
        return self._offsets[-1][3]

    @property
    def n_mem(self) -> int:
        """Memory size N_Mem: numbers a lifetime carries from step to step."""
        return int(sum(np.prod(s, dtype=np.int64) for s in self.memory_shapes().values()))

    def unpack(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of genomes (P, N) (or one genome (N,)): name -> (P, *shape)."""
        g = np.asarray(genomes)
        if g.ndim == 1:
            g = g[None]
        if g.ndim != 2 or g.shape[1] != self.n_gene:
            raise ValueError(f"{self.id} (hidden {self.hidden}) takes genomes of length "
                             f"{self.n_gene}, got shape {np.shape(genomes)}")
        g = np.ascontiguousarray(g, dtype=F32)
        return {name: g[:, a:b].reshape((len(g),) + shape) for name, shape, a, b in self._offsets}

    def pack(self, params: dict[str, np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`unpack`: name -> (P, *shape) to genomes (P, N) float32."""
        missing = {n for n, _ in self.param_shapes()} - set(params)
        extra = set(params) - {n for n, _ in self.param_shapes()}
        if missing or extra:
            raise ValueError(f"{self.id}: missing tensors {sorted(missing)}, unknown {sorted(extra)}")
        p = len(next(iter(params.values())))
        parts = [np.asarray(params[name], F32).reshape(p, -1) for name, _, _, _ in self._offsets]
        return np.concatenate(parts, axis=1)

    def init_memory(self, batch: int, params: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Memories of ``batch`` new lifetimes: zeros (method §2)."""
        return {k: np.zeros((batch,) + s, F32) for k, s in self.memory_shapes().items()}

    def memory_state(self, params: dict[str, np.ndarray], mem: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A copy of the memories as method §3 defines them after the last step (only the
        ``memory_shapes`` arrays; a model that defers work, like DecPRNN's pending update,
        completes it in the copy). ``params`` is what ``step`` was given."""
        return {k: mem[k].copy() for k in self.memory_shapes()}

    def active_fraction(self, genomes: np.ndarray) -> np.ndarray | None:
        """Fraction of active hidden units per genome (P,), or None for a model without a mask."""
        return None

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "hidden": self.hidden, "n_gene": self.n_gene, "n_mem": self.n_mem,
                "bottleneck": round(self.n_mem / self.n_gene, 3), "doc": self.doc}


# -- shared pieces ------------------------------------------------------------------------------

def sigmoid(z: np.ndarray) -> np.ndarray:
    """float32 logistic function, 1 / (1 + e^-z)."""
    out = np.negative(z, dtype=F32)
    np.exp(out, out=out)
    out += F32(1.0)
    return np.reciprocal(out, out=out)


def linear(w: np.ndarray, v: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Per-lifetime FC: w (B, o, i), v (B, i), b (B, o) -> (B, o)."""
    out = np.matmul(w, v[:, :, None])[:, :, 0]
    if b is not None:
        out += b
    return out


def keep_dead(new: np.ndarray, old: np.ndarray, live: np.ndarray | None) -> np.ndarray:
    """``new`` where the lifetime is live, ``old`` where its episode is over (rows of (B, ...))."""
    if live is None:
        return new
    return np.where(live.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)


def gate(p: dict[str, np.ndarray], v: np.ndarray) -> np.ndarray:
    """Structure mask (models/masked.py): ``v`` (B, H) where the unit's gene ``mask`` is > 0, else 0.

    Without a ``mask`` tensor (every unmasked model) ``v`` itself is returned: no copy and no
    arithmetic, so unmasked models compute exactly what they did before masks existed.
    """
    mask = p.get("mask")
    if mask is None:
        return v
    return np.where(mask > 0, v, F32(0))
