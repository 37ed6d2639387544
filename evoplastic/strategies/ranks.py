"""Centred ranks: a fitness vector mapped to [-0.5, 0.5] by rank, the best at +0.5."""

from __future__ import annotations

import numpy as np


def centered_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks of ``fitness`` (higher is better) scaled to [-0.5, 0.5].

    Args:
        fitness: (n,) values, higher is better.

    Returns:
        (n,) float64: ``rank / (n - 1) - 0.5`` with rank 0 for the worst; tied values share the
        average of their ranks. Non-finite values (NaN, +inf, -inf) mean a broken evaluation: they
        all tie for the worst ranks. ``n == 1`` gives ``[0.0]``.
    """
    f = np.asarray(fitness, dtype=np.float64).reshape(-1)
    n = f.size
    if n <= 1:
        return np.zeros(n)
    f = np.where(np.isfinite(f), f, -np.inf)  # one tie group below every finite value
    _, inverse, counts = np.unique(f, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # rank of each distinct value's first member
    average = first + (counts - 1) / 2.0
    return average[inverse.reshape(-1)] / (n - 1) - 0.5
