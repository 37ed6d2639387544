"""``reference-sepcma``: the paper code's own sep-CMA-ES variant, exactly as method §4 states it, in numpy.

Per generation (n = dim, lambda = popsize, k = top_k, default lambda // 2):

- Sampling: rows 0..lambda-2 are ``mean + sigma * sqrt(cov) * s * z``, ``z ~ N(0, I)``, where ``s`` is
  drawn per genome and per parameter tensor (option ``segments``: the tensor sizes in genome order;
  default one segment, the whole genome) from {0.708, 1.0, 1.225} with probabilities
  {0.05, 0.90, 0.05}. The last row (lambda-1) is the current mean itself, evaluated as one member.
  Draw order (pinned by the tests): ``u = rng.random((lambda-1, n_segments))`` picks the scales
  (``s`` = first value whose cumulative probability is >= u), then
  ``z = rng.standard_normal((lambda-1, n))``.
- Selection: the top-k genomes by raw fitness (higher is better; ties: the higher row first, as the
  reference's reverse sort of (score, index) pairs). Non-finite fitness values are dropped before
  selection; if fewer than k genomes remain, the first m weights are renormalised to sum 1 and
  mu_eff keeps its k-genome value (as the reference).
- Update: the method §4 equations, commented line by line below, with ``gen`` = this generation's
  1-based number in ``h`` (the reference increments its step counter before using it), and
  ``c_cov`` = 0.02 (option). Clipping: cov to [1e-12, 1], sigma to [1e-6, 1].

Differences from the reference code, all deliberate (method §4, "not to copy"): float64 throughout
(it mixed float32 arrays in); its in-place renormalisation of the shared weight vector when
genomes were dropped (which altered all later generations) is not reproduced; ``state()`` resumes
exactly (it reset sigma and clipped cov to [0.64, 1] on load); randomness comes from our own
Generator, not the global numpy state.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from evoplastic.strategies.base import Strategy, state_item, state_vector

SCALES = np.array([0.708, 1.0, 1.225])  # method §4, per-tensor scale factor s
SCALE_PROBS = np.array([0.05, 0.90, 0.05])
COV_CLIP = (1e-12, 1.0)  # method §4
SIGMA_CLIP = (1e-6, 1.0)  # method §4


def reference_constants(dim: int, top_k: int) -> dict[str, Any]:
    """The method §4 constants: weights (top_k,), mu_eff, p_std, c_s, d_s, c_c (c_cov is an option)."""
    n = float(dim)
    w = np.log(top_k + 1) - np.log(np.arange(1, top_k + 1))  # method §4: w_i = ln(k+1) - ln(i+1), i from 0
    w = w / w.sum()
    mu_eff = 1.0 / float(np.sum(w * w))  # method §4
    p_std = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2))  # method §4: E|N(0, I_n)|
    c_s = (mu_eff + 2) / (n + mu_eff + 3)  # method §4
    d_s = 1 + c_s  # method §4, or with the extra term when mu_eff > n + 2:
    if mu_eff > n + 2:
        d_s = 1 + 2 * math.sqrt((mu_eff - n - 2) / (n + 1)) + c_s
    c_c = 4 / (n + 4)  # method §4
    return {"weights": w, "mu_eff": mu_eff, "p_std": p_std, "c_s": c_s, "d_s": d_s, "c_c": c_c}


class ReferenceSepCMA(Strategy):
    """The reference's sep-CMA-ES (module docstring). Options: ``segments``, ``c_cov``, ``top_k``."""

    name: ClassVar[str] = "reference-sepcma"
    DEFAULTS: ClassVar[dict[str, Any]] = {"segments": None, "c_cov": 0.02, "top_k": None}
    MIN_POPSIZE: ClassVar[int] = 2

    def __init__(self, dim: int, popsize: int, sigma0: float, mean0: np.ndarray, rng: np.random.Generator,
                 **options: Any) -> None:
        super().__init__(dim, popsize, sigma0, mean0, rng, **options)
        self.c = reference_constants(self.dim, self.options["top_k"])
        self._tensor_of_gene = np.repeat(np.arange(len(self.options["segments"])), self.options["segments"])
        self._mean = np.array(mean0, dtype=np.float64)
        self._sigma = self.sigma0
        self._cov = np.ones(self.dim)  # diagonal of C
        self._p_c = np.zeros(self.dim)
        self._p_s = np.zeros(self.dim)
        self._gen = 0  # completed updates

    @classmethod
    def _check_option_values(cls, dim: int, popsize: int, options: dict[str, Any]) -> dict[str, Any]:
        c_cov = float(options["c_cov"])
        if not 0 < c_cov <= 1:
            raise ValueError(f"{cls.name}: option 'c_cov' must be in (0, 1], got {c_cov}")
        top_k = popsize // 2 if options["top_k"] is None else int(options["top_k"])
        if not 1 <= top_k <= popsize:
            raise ValueError(f"{cls.name}: option 'top_k' must be in 1..popsize={popsize}, got {top_k}")
        return {**options, "c_cov": c_cov, "top_k": top_k}

    @property
    def mean(self) -> np.ndarray:
        return self._mean.astype(np.float32)

    @property
    def sigma(self) -> float:
        return self._sigma

    def _sample(self) -> np.ndarray:
        n_new = self.popsize - 1
        u = self._rng.random((n_new, len(self.options["segments"])))
        s = SCALES[np.searchsorted(np.cumsum(SCALE_PROBS), u, side="left")]  # method §4: one s per tensor
        z = self._rng.standard_normal((n_new, self.dim))
        samples = self._mean + self._sigma * np.sqrt(self._cov) * s[:, self._tensor_of_gene] * z  # method §4
        return np.vstack([samples, self._mean])  # method §4: the mean is a member too (the last row)

    def _select(self, fitness: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the top-k valid genomes, best first, and their weights (renormalised if fewer)."""
        rows = np.flatnonzero(valid)
        order = np.lexsort((-rows, -fitness[rows]))  # fitness descending; ties: higher row first
        top = rows[order[: self.options["top_k"]]]
        w = self.c["weights"][: top.size]
        return top, w / w.sum()

    def _update(self, population: np.ndarray, fitness: np.ndarray, valid: np.ndarray) -> dict[str, float]:
        c, n, c_cov = self.c, self.dim, self.options["c_cov"]
        mu_eff, c_s, c_c = c["mu_eff"], c["c_s"], c["c_c"]
        top, w = self._select(fitness, valid)
        x = population[top]
        sigma_old, p_c_old = self._sigma, self._p_c
        self._gen += 1  # gen = this generation's 1-based number
        new = w @ x  # method §4: new = sum w_i theta_i
        d = new - self._mean  # method §4: D = new - mean
        s_sq = w @ (x - self._mean) ** 2  # method §4: S = sum w_i (theta_i - mean)^2
        p_s = (1 - c_s) * self._p_s + math.sqrt(c_s * (2 - c_s) * mu_eff) / sigma_old * d / np.sqrt(self._cov)  # method §4
        norm_p_s = float(np.sqrt(np.sum(p_s * p_s)))
        sigma = sigma_old * float(np.exp(c_s / c["d_s"] * (norm_p_s / c["p_std"] - 1)))  # method §4 (inf: clipped)
        h = float(norm_p_s < math.sqrt(2 * c_s) * (1.4 + 2 / (n + 1)) * c["p_std"] * math.sqrt(self._gen + 1))  # method §4
        cov = ((1 - c_cov) * self._cov + c_cov / mu_eff * p_c_old**2  # method §4: the p_c of before this update
               + c_cov * (1 - 1 / mu_eff) / sigma_old**2 * s_sq)
        p_c = (1 - c_c) * p_c_old + h * math.sqrt(c_c * (2 - c_c) * mu_eff) / sigma_old * d  # method §4
        self._mean, self._p_s, self._p_c = new, p_s, p_c
        self._cov = np.clip(cov, *COV_CLIP)  # method §4
        self._sigma = float(np.clip(sigma, *SIGMA_CLIP))  # method §4
        return {"h": h, "norm_p_s": norm_p_s, "selected": int(top.size)}

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self._mean.copy(), "sigma": np.array(self._sigma), "cov": self._cov.copy(),
                "p_c": self._p_c.copy(), "p_s": self._p_s.copy(), "gen": np.array(self._gen)}

    def _load(self, state: dict[str, np.ndarray]) -> None:
        self._mean, self._sigma = state_vector(state, "mean", self.dim), float(state_item(state, "sigma"))
        self._cov, self._p_c, self._p_s = (state_vector(state, k, self.dim) for k in ("cov", "p_c", "p_s"))
        self._gen = int(state_item(state, "gen"))
