"""The ask/tell interface every evoplastic strategy implements, and the checks they share.

Contract (fitness is higher-is-better everywhere in evoplastic):

- ``ask()`` gives this generation's genomes, ``(popsize, dim)`` float32. Asking again before
  ``tell`` gives the same genomes (no new random draws).
- ``tell(fitness)`` takes ``(popsize,)`` float64, one value per genome of the last ``ask``.
  Non-finite values (NaN, +-inf) mark failed evaluations: they never count as good; how each
  strategy keeps them out of the update is in its docstring; their count comes back as
  ``stats["dropped"]``. An all-non-finite generation raises ``ValueError`` and changes nothing.
- ``state()`` is everything needed to continue exactly: plain arrays (numbers as 0-d arrays,
  strings and JSON as 0-d str arrays), savable with ``np.savez`` and loadable with
  ``allow_pickle=False``, including the random generator. Take it at a generation boundary
  (after ``tell``, before the next ``ask``). ``Strategy.from_state(state, **options)`` (or
  ``evoplastic.strategies.restore_strategy``) rebuilds the strategy; the continuation is
  bit-for-bit the uninterrupted run's.

Internally the strategies work in float64. The genomes handed out are float32 roundings of the
float64 samples, and the update uses the float64 samples: the two differ by less than 1e-7
relative, far below any step the search takes.
"""

from __future__ import annotations

import difflib
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

STATE_FORMAT = 1
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64")  # JSON-serialisable states


class Strategy(ABC):
    """An evolution strategy behind one ask/tell interface (see the module docstring)."""

    name: ClassVar[str]
    DEFAULTS: ClassVar[dict[str, Any]]  # option name -> default value
    MIN_POPSIZE: ClassVar[int] = 2

    def __init__(self, dim: int, popsize: int, sigma0: float, mean0: np.ndarray, rng: np.random.Generator,
                 **options: Any) -> None:
        self.dim, self.popsize, self.sigma0 = int(dim), int(popsize), float(sigma0)
        self._check_sizes(mean0)
        self.options = self.resolve_options(self.dim, self.popsize, options)
        self._rng = rng
        self._pending: np.ndarray | None = None  # (popsize, dim) float64 of the last ask, until tell

    # -- the interface -------------------------------------------------------------------------

    @property
    @abstractmethod
    def mean(self) -> np.ndarray:
        """(dim,) float32: the distribution mean."""

    @property
    @abstractmethod
    def sigma(self) -> float:
        """The global step size."""

    def ask(self) -> np.ndarray:
        """(popsize, dim) float32: the genomes to evaluate this generation."""
        if self._pending is None:
            self._pending = self._sample()
        return self._pending.astype(np.float32)

    def tell(self, fitness: np.ndarray) -> dict[str, float]:
        """Update from ``fitness`` (popsize,) float64, higher is better, of the last ``ask``.

        Returns stats: ``dropped`` (non-finite values), ``fitness_best``, ``fitness_best_index``,
        ``fitness_mean`` (over finite values), ``sigma`` (after the update), and per-strategy extras.
        """
        if self._pending is None:
            raise RuntimeError(f"{self.name}: tell() without a pending ask(); call ask() first")
        f, valid = self._check_fitness(fitness)
        extra = self._update(self._pending, f, valid)
        self._pending = None
        best = int(np.argmax(np.where(valid, f, -np.inf)))
        return {"dropped": int(np.sum(~valid)), "fitness_best": float(f[best]), "fitness_best_index": best,
                "fitness_mean": float(np.mean(f[valid])), "sigma": self.sigma, **extra}

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to continue exactly, as plain arrays (see the module docstring)."""
        if self._pending is not None:
            raise RuntimeError(f"{self.name}: state() between ask() and tell(); take it after tell()")
        common = {"format": np.array(STATE_FORMAT), "name": np.array(self.name), "dim": np.array(self.dim),
                  "popsize": np.array(self.popsize), "sigma0": np.array(self.sigma0),
                  "options": np.array(json.dumps(self.options, sort_keys=True)),
                  "rng": np.array(json.dumps(self._rng.bit_generator.state))}
        return {**common, **self._state()}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], **options: Any) -> Strategy:
        """Rebuild a strategy from ``state()``; ``options``, if given, must equal the saved ones.

        The state is self-contained; ``options`` (e.g. the run config's) are only checked, so that
        a run is not silently resumed with other settings.
        """
        fmt, name = int(state_item(state, "format")), str(state_item(state, "name"))
        if fmt != STATE_FORMAT or name != cls.name:
            raise ValueError(f"strategy state is {name!r} format {fmt}; expected {cls.name!r} format {STATE_FORMAT}")
        dim, popsize = int(state_item(state, "dim")), int(state_item(state, "popsize"))
        saved = json.loads(str(state_item(state, "options")))
        if options:
            given = cls.resolve_options(dim, popsize, options)
            diff = [k for k in given if k in options and given[k] != saved.get(k)]
            if diff:
                raise ValueError(f"{cls.name}: option {diff[0]!r}={given[diff[0]]!r} differs from the saved "
                                 f"state's {saved.get(diff[0])!r}; resuming must use the same settings")
        rng = _rng_from_json(state_item(state, "rng"))
        strategy = cls(dim, popsize, float(state_item(state, "sigma0")), state_item(state, "mean"), rng, **saved)
        strategy._load(state)
        return strategy

    # -- what each strategy implements ---------------------------------------------------------

    @abstractmethod
    def _sample(self) -> np.ndarray:
        """(popsize, dim) float64: draw this generation's genomes."""

    @abstractmethod
    def _update(self, population: np.ndarray, fitness: np.ndarray, valid: np.ndarray) -> dict[str, float]:
        """Update from population (popsize, dim) float64, fitness (popsize,), valid (popsize,) bool."""

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Strategy-specific state arrays, including "mean" (dim,) float64 and "sigma"."""

    @abstractmethod
    def _load(self, state: dict[str, np.ndarray]) -> None:
        """Overwrite the freshly built strategy's dynamic state with ``state``."""

    @classmethod
    def _check_option_values(cls, dim: int, popsize: int, options: dict[str, Any]) -> dict[str, Any]:
        """Validate option values (defaults filled in); return them JSON-able."""
        return options

    # -- checks ----------------------------------------------------------------------------------

    @classmethod
    def resolve_options(cls, dim: int, popsize: int, options: dict[str, Any]) -> dict[str, Any]:
        """Options with defaults filled in, validated; a clear ValueError for unknown names or bad values."""
        for key in options:
            if key not in cls.DEFAULTS:
                close = difflib.get_close_matches(key, list(cls.DEFAULTS), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown option {key!r} for strategy {cls.name!r}{hint}; "
                                 f"valid options: {', '.join(sorted(cls.DEFAULTS))}")
        resolved = {**cls.DEFAULTS, **options}
        resolved["segments"] = _check_segments(resolved["segments"], dim)
        return cls._check_option_values(dim, popsize, resolved)

    def _check_sizes(self, mean0: np.ndarray) -> None:
        if self.dim < 1:
            raise ValueError(f"{self.name}: dim must be >= 1, got {self.dim}")
        if self.popsize < self.MIN_POPSIZE:
            raise ValueError(f"{self.name}: popsize must be >= {self.MIN_POPSIZE}, got {self.popsize}")
        if not (np.isfinite(self.sigma0) and self.sigma0 > 0):
            raise ValueError(f"{self.name}: sigma0 must be finite and > 0, got {self.sigma0}")
        m = np.asarray(mean0)
        if m.shape != (self.dim,) or not np.isfinite(m).all():
            raise ValueError(f"{self.name}: mean0 must be a finite ({self.dim},) vector, got shape {m.shape}")

    def _check_fitness(self, fitness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = np.asarray(fitness, dtype=np.float64)
        if f.shape != (self.popsize,):
            raise ValueError(f"{self.name}.tell: expected fitness of shape ({self.popsize},), one value per "
                             f"genome of the last ask(), got shape {f.shape}")
        valid = np.isfinite(f)
        if not valid.any():
            raise ValueError(f"{self.name}.tell: all {f.size} fitness values are NaN or infinite; check the "
                             f"evaluator (genomes with NaN outputs, failed workers)")
        return f, valid


def _check_segments(segments: list[int] | None, dim: int) -> list[int]:
    """Sizes of the genome's parameter tensors, in genome order (None: one segment, the whole genome)."""
    if segments is None:
        return [dim]
    seg = [int(s) for s in segments]
    if not seg or min(seg) < 1 or sum(seg) != dim:
        raise ValueError(f"option 'segments' must be positive tensor sizes summing to dim={dim}, "
                         f"got {len(seg)} sizes summing to {sum(seg)}")
    return seg


def state_item(state: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in state:
        raise ValueError(f"strategy state lacks {key!r}; is this a strategy state (format {STATE_FORMAT})?")
    return state[key]


def state_vector(state: dict[str, np.ndarray], key: str, dim: int) -> np.ndarray:
    """state[key] as a fresh (dim,) float64 array; a clear error if it is missing or misshapen."""
    v = np.array(state_item(state, key), dtype=np.float64)
    if v.shape != (dim,):
        raise ValueError(f"strategy state: {key!r} has shape {v.shape}, expected ({dim},)")
    return v


def _rng_from_json(text: np.ndarray) -> np.random.Generator:
    """A Generator continuing exactly where the one saved as ``json.dumps(bit_generator.state)`` stopped."""
    st = json.loads(str(text))
    if st.get("bit_generator") not in _BIT_GENERATORS:
        raise ValueError(f"strategy state: unsupported bit generator {st.get('bit_generator')!r}")
    bit_generator = getattr(np.random, st["bit_generator"])()
    bit_generator.state = st
    return np.random.Generator(bit_generator)
