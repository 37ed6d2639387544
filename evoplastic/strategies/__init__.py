"""Evolution strategies behind one ask/tell interface; fitness is higher-is-better.

- ``sepcma`` (:mod:`.sepcma`): separable CMA-ES by pycma, CSA step size by default, TPA selectable.
- ``reference-sepcma`` (:mod:`.reference`): the paper code's own variant, exactly as method §4 states it.

Typical use::

    es = make_strategy("sepcma", dim, popsize=360, sigma0=0.01, mean0=mean0, seed=seed_sequence)
    while ...:
        genomes = es.ask()                 # (popsize, dim) float32
        stats = es.tell(fitness(genomes))  # (popsize,) float64, NaN/inf = failed evaluation
    np.savez(path, **es.state())           # plain arrays, no pickles
    es = restore_strategy(dict(np.load(path, allow_pickle=False)))  # continues bit for bit

The interface contract is in :mod:`.base`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evoplastic.strategies.base import Strategy, state_item
from evoplastic.strategies.ranks import centered_ranks
from evoplastic.strategies.reference import ReferenceSepCMA
from evoplastic.strategies.sepcma import SepCMA

STRATEGIES: dict[str, type[Strategy]] = {SepCMA.name: SepCMA, ReferenceSepCMA.name: ReferenceSepCMA}

__all__ = ["STRATEGIES", "ReferenceSepCMA", "SepCMA", "Strategy", "centered_ranks", "make_strategy",
           "restore_strategy"]


def _strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def make_strategy(name: str, dim: int, popsize: int, sigma0: float, mean0: np.ndarray,
                  seed: int | np.random.SeedSequence, **options: Any) -> Strategy:
    """A new strategy.

    Args:
        name: "sepcma" or "reference-sepcma".
        dim: genome length.
        popsize: genomes per generation.
        sigma0: initial step size (paper: 0.01).
        mean0: (dim,) initial mean (paper: N(0, 0.05^2) per gene, drawn by the caller).
        seed: seeds the strategy's own ``numpy.random.Generator`` (PCG64).
        options: per strategy: ``segments`` (tensor sizes of the genome, both), ``step_size``
            ("csa"|"tpa") and ``active`` (bool) for sepcma; ``c_cov`` and ``top_k`` for
            reference-sepcma. Unknown names or bad values raise ValueError.
    """
    if not isinstance(seed, (int, np.integer, np.random.SeedSequence)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int or a numpy SeedSequence, got {type(seed).__name__}")
    cls = _strategy_class(name)
    return cls(dim, popsize, sigma0, mean0, np.random.default_rng(seed), **options)


def restore_strategy(state: dict[str, np.ndarray], **options: Any) -> Strategy:
    """The strategy saved as ``state`` (from ``Strategy.state()``), ready to continue exactly.

    ``options``, if given, are checked against the saved ones (see ``Strategy.from_state``).
    """
    return _strategy_class(str(state_item(state, "name"))).from_state(state, **options)
