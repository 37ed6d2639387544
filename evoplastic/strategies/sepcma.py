"""``sepcma``: separable CMA-ES (Ros & Hansen 2008) through pycma, every choice made explicitly.

pycma's ``CMAEvolutionStrategy`` with these settings (``_FIXED_OPTIONS`` and the two options):

- **Diagonal covariance in every iteration** (``CMA_diagonal=True``): linear time and memory. In this
  mode pycma keeps the diagonal as a multiplicative scaling ``es.sigma_vec`` (diagonal decoding,
  learning rates ``c1_sep, cmu_sep, cc_sep``) while its sampler ``es.sm`` stays the identity.
- **Step-size adaptation**, option ``step_size``: ``"csa"`` (default) or ``"tpa"``. Left to itself
  (``AdaptSigma=True``) pycma switches from CSA to two-point adaptation (TPA) at dimension >= 300
  (``cma.evolution_strategy.TPA_dimension``), that is for every genome here. We choose: CSA, the
  step-size rule sep-CMA-ES was defined and analysed with (Ros & Hansen 2008) and the one the
  paper's runs used; TPA on request. TPA spends the first two genomes of each generation on a
  mirrored pair along the last mean shift.
- **Active CMA**, option ``active`` (default True, as pycma): the worst genomes get negative weights
  in the covariance update (Jastrebski & Arnold 2006), which shrinks variances in useless
  directions faster. pycma's diagonal update is multiplicative, so variances stay positive whatever
  the weights. ``active=False`` zeroes the negative weights.
- **No mirrored sampling** (pycma mirrors when popsize < 6), **no condition alleviation** (it only acts
  on a full covariance; off, so no hidden genotype-phenotype transform can enter the state),
  **no termination** (the training loop stops the run: ``es.stop()`` is never called and its
  criteria are switched off anyway), **no output** (verbose -9, no display, no data files).
- **Sampling from our Generator**: pycma draws its standard normals through the ``randn`` option, set
  to this strategy's ``numpy.random.Generator``; ``seed=NaN`` keeps pycma away from numpy's global
  seed. pycma's TPA consistency check draws from global ``np.random`` and only ever warns: disabled.

**Fitness.** pycma minimises and is rank-based: its updates use only the order of the values. It is
told ``-centered_ranks(fitness)``: the one sign flip of evoplastic's higher-is-better fitness, and
the ranks put non-finite values (failed evaluations) on the worst rank, tied, rather than pycma's
replacement by the median. They are reported as ``dropped`` but stay in the update as the worst
genomes (with active CMA they push the distribution away): rows cannot be removed because TPA
needs its first two rows in place.

**State.** Every pycma attribute that ask/tell read and change between generations is saved:
``mean, sigma, countiter, countevals, pc, pc2, sigma_vec`` (scaling and identity flag), the
sampler's ``standard_deviations`` (only ever set if sigma exceeds 1e9 * sigma0), the TPA mirror
directions ``pop_injection_directions``, and every numeric attribute of ``adapt_sigma`` (CSA: ``ps,
delta, cs, damps, _ps_updated_iteration, is_initialized``...; TPA: ``s, delta, ps, ...``). What is
derived from (dim, popsize, options) — recombination weights, learning rates, damping — comes from
constructing a fresh CMAEvolutionStrategy with the same options; the weights are saved anyway and
checked on restore, so that a pycma upgrade that changed them cannot resume silently.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cma
import numpy as np
from cma.sigma_adaptation import CMAAdaptSigmaCSA, CMAAdaptSigmaTPA

from evoplastic.strategies.base import Strategy, state_item, state_vector
from evoplastic.strategies.ranks import centered_ranks


class _TPA(CMAAdaptSigmaTPA):
    """pycma's TPA without its consistency check (which draws from global np.random and only warns)."""

    def check_consistency(self, es: Any) -> None:
        pass


_STEP_SIZE = {"csa": CMAAdaptSigmaCSA, "tpa": _TPA}
_FIXED_OPTIONS: dict[str, Any] = {
    "CMA_diagonal": True,  # sep-CMA: diagonal C in every iteration
    "CMA_mirrors": 0,
    "conditioncov_alleviate": False,
    "seed": np.nan,  # pycma leaves np.random's global seed alone; sampling is ours (randn)
    "verbose": -9, "verb_disp": 0, "verb_log": 0, "verb_plot": 0, "verb_time": False,
    # termination is the training loop's; es.stop() is never called, and its criteria are off anyway
    "maxiter": np.inf, "maxfevals": np.inf, "timeout": np.inf, "tolfun": 0, "tolfunhist": 0, "tolx": 0,
    "tolstagnation": np.inf, "tolflatfitness": np.inf, "tolconditioncov": np.inf, "tolfacupx": np.inf,
}
_TYPES = (bool, int, float, np.number, np.bool_, np.ndarray)  # attribute types saved as state


class SepCMA(Strategy):
    """sep-CMA-ES by pycma (module docstring). Options: ``step_size`` ("csa"|"tpa"), ``active`` (bool).

    ``segments`` is accepted (and checked) like for every strategy, but not used.
    """

    name: ClassVar[str] = "sepcma"
    DEFAULTS: ClassVar[dict[str, Any]] = {"segments": None, "step_size": "csa", "active": True}
    MIN_POPSIZE: ClassVar[int] = 4

    def __init__(self, dim: int, popsize: int, sigma0: float, mean0: np.ndarray, rng: np.random.Generator,
                 **options: Any) -> None:
        super().__init__(dim, popsize, sigma0, mean0, rng, **options)
        self._es = cma.CMAEvolutionStrategy(np.array(mean0, dtype=np.float64), self.sigma0, self.cma_options())

    @classmethod
    def _check_option_values(cls, dim: int, popsize: int, options: dict[str, Any]) -> dict[str, Any]:
        if options["step_size"] not in _STEP_SIZE:
            raise ValueError(f"{cls.name}: option 'step_size' must be one of {', '.join(_STEP_SIZE)}, "
                             f"got {options['step_size']!r}")
        if not isinstance(options["active"], (bool, np.bool_)):
            raise ValueError(f"{cls.name}: option 'active' must be true or false, got {options['active']!r}")
        return {**options, "active": bool(options["active"])}

    def cma_options(self) -> dict[str, Any]:
        """The complete pycma options this strategy runs with."""
        return {**_FIXED_OPTIONS, "popsize": self.popsize, "CMA_active": self.options["active"],
                "AdaptSigma": _STEP_SIZE[self.options["step_size"]], "randn": self._randn}

    def _randn(self, *shape: int) -> np.ndarray:
        """pycma's ``randn(n, dim)``, from this strategy's Generator."""
        return self._rng.standard_normal(shape)

    @property
    def mean(self) -> np.ndarray:
        return self._es.mean.astype(np.float32)

    @property
    def sigma(self) -> float:
        """pycma's global step size; coordinate stds are ``sigma * es.sigma_vec.scaling``."""
        return float(self._es.sigma)

    def _sample(self) -> np.ndarray:
        return np.array(self._es.ask(), dtype=np.float64)

    def _update(self, population: np.ndarray, fitness: np.ndarray, valid: np.ndarray) -> dict[str, float]:
        ranks = centered_ranks(np.where(valid, fitness, np.nan))  # non-finite: tied worst
        # pycma minimises: the one place where evoplastic's higher-is-better fitness is negated.
        # The float64 rows pycma sampled: its archive recognises them (a float32 copy would be "repaired").
        self._es.tell(list(population), (-ranks).tolist())
        return {}

    def _state(self) -> dict[str, np.ndarray]:
        es = self._es
        out = {"mean": np.array(es.mean, dtype=np.float64), "sigma": np.array(float(es.sigma)),
               "pycma.mean_old": np.array(getattr(es, "mean_old", es.mean), dtype=np.float64),
               "pycma.version": np.array(cma.__version__),
               "pycma.countiter": np.array(es.countiter), "pycma.countevals": np.array(es.countevals),
               "pycma.pc": np.array(es.pc, dtype=np.float64), "pycma.pc2": np.array(es.pc2, dtype=np.float64),
               "pycma.sm_stds": np.array(getattr(es.sm, "standard_deviations", np.empty(0)), dtype=np.float64),
               "pycma.injection_directions": np.array(es.pop_injection_directions, dtype=np.float64
                                                      ).reshape(-1, self.dim),
               "pycma.weights": np.array(es.sp.weights, dtype=np.float64)}
        out.update(_numeric_attributes(es.sigma_vec, "pycma.sigma_vec."))
        out.update(_numeric_attributes(es.adapt_sigma, "pycma.adapt_sigma."))
        return out

    def _load(self, state: dict[str, np.ndarray]) -> None:
        es = self._es
        if not np.array_equal(state_item(state, "pycma.weights"), np.asarray(es.sp.weights)):
            raise ValueError(f"{self.name}: this pycma ({cma.__version__}) computes other recombination weights "
                             f"than the one that saved the state ({state_item(state, 'pycma.version')})")
        es.mean = state_vector(state, "mean", self.dim)
        es.mean_after_tell = es.mean.copy()
        es.mean_old = state_vector(state, "pycma.mean_old", self.dim)
        es.sigma = float(state_item(state, "sigma"))
        es.countiter = int(state_item(state, "pycma.countiter"))
        es.timer = cma.utilities.utils.ElapsedWCTime()  # ask() expects one once countiter > 0
        es.countevals = int(state_item(state, "pycma.countevals"))
        es.pc, es.pc2 = (state_vector(state, k, self.dim) for k in ("pycma.pc", "pycma.pc2"))
        _set_attributes(es.sigma_vec, state, "pycma.sigma_vec.")  # scaling, dim, is_identity
        _set_attributes(es.adapt_sigma, state, "pycma.adapt_sigma.")
        stds = state_item(state, "pycma.sm_stds")
        if stds.size:
            es.sm.standard_deviations = np.array(stds, dtype=np.float64)
            es._updateBDfromSM(es.sm)
        es.pop_injection_directions = [np.array(d) for d in state_item(state, "pycma.injection_directions")]


def _numeric_attributes(obj: Any, prefix: str) -> dict[str, np.ndarray]:
    """Every number, flag or array attribute of a pycma object, keyed ``prefix + name``."""
    return {prefix + k: np.array(v) for k, v in vars(obj).items() if isinstance(v, _TYPES)}


def _set_attributes(obj: Any, state: dict[str, np.ndarray], prefix: str) -> None:
    """Undo ``_numeric_attributes``: arrays (also 0-d ones) stay arrays, numbers go back to scalars."""
    for key, value in state.items():
        if key.startswith(prefix):
            name = key.removeprefix(prefix)
            keep_array = value.ndim > 0 or isinstance(getattr(obj, name, None), np.ndarray)
            setattr(obj, name, np.array(value) if keep_array else value.item())
