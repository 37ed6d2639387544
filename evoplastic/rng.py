"""Counter-based random numbers for lifetimes: results independent of how a batch is split.

Every lifetime gets a 64-bit key derived from its identity (run seed, genome, task, repeat, ...);
its i-th random number is a hash of (key, i). So lifetime L draws the same numbers whether it runs
alone, in a batch of 10,000, on one Ray worker or another. The hash is the SplitMix64 output
function (Steele, Lea & Flood 2014) applied to ``key + (i + 1) * golden``: that is exactly the
SplitMix64 generator started at ``key``, a generator that passes BigCrush. Keys are themselves
hashed, so streams of different lifetimes do not overlap in practice.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def keys(seed: int, *ids: np.ndarray | int) -> np.ndarray:
    """(B,) uint64 keys from a seed and one or more id arrays (broadcast together).

    ``keys(seed, genome, task, repeat)`` names one lifetime; the order of ids matters.
    """
    parts = np.broadcast_arrays(*[np.asarray(i, dtype=np.int64) for i in ids]) if ids else []
    with np.errstate(over="ignore"):
        k = mix64(np.full(parts[0].shape if parts else (), np.uint64(seed & (2**64 - 1))) + _GOLDEN)
        for p in parts:
            k = mix64(k ^ mix64(p.astype(np.uint64) + _GOLDEN))
    return np.atleast_1d(k)


def bits(key: np.ndarray, counter: int | np.ndarray) -> np.ndarray:
    """(B,) uint64 random bits: draw number ``counter`` of each key's stream."""
    with np.errstate(over="ignore"):
        return mix64(key + (np.asarray(counter, dtype=np.uint64) + np.uint64(1)) * _GOLDEN)


def uniform(key: np.ndarray, counter: int | np.ndarray) -> np.ndarray:
    """(B,) float64 uniform on [0, 1): draw number ``counter`` of each key's stream (53 bits)."""
    return (bits(key, counter) >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def integers(key: np.ndarray, counter: int | np.ndarray, high: int) -> np.ndarray:
    """(B,) int64 uniform on 0..high-1 (multiply-shift on 53 bits: bias below 2^-40 for small high)."""
    return (uniform(key, counter) * high).astype(np.int64)
