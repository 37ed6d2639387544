"""MetaMaze2D task generator (method §1, "Generation"), vectorized over a block of tasks.

The reference algorithm works on one maze at a time: it shuffles the remaining interior walls every
round and scans them for the first one that qualifies. A shuffled scan that stops at the first
qualifying wall picks uniformly among the qualifying walls, so this module draws that choice directly
(method §1 allows it), for a whole block of mazes in lock step. The distributions are the same; the
literal algorithm lives in ``tests/test_generator.py`` and the two are compared there statistically.

Equivalences used (each per maze, per round):
- while more than one region is left, the considered wall is uniform over the walls whose open
  4-neighbours belong to >= 2 regions (one always exists while regions > 1), and it is removed;
- once one region is left, the considered wall is uniform over *all* remaining interior walls (the
  stopping position of a p=0.2 scan is independent of the shuffled order) and is removed only if it
  has an open neighbour; rounds that remove nothing change nothing, so the removed wall is uniform
  over the walls that have an open neighbour;
- the goal: each of the ``h*h`` draws (``h = (n-1)/2`` rounds of up to ``h`` draws) is uniform over
  the ``h*h`` odd cells; the goal is the last accepted far cell, i.e. uniform over the far cells,
  and the fallback ``(n-2, n-2)`` happens with probability ``(1 - q)^(h*h)``, ``q`` = far fraction.

Tasks are generated in blocks of ``BLOCK`` mazes, block ``b`` from its own stream
``SeedSequence(seed, spawn_key=(b,))``: task ``i`` of a set depends only on (seed, n, crowd_ratio, i),
so a set of 64 tasks is the prefix of the set of 2,048 with the same seed.
"""

from __future__ import annotations

import numpy as np

from evoplastic.errors import UserError
from evoplastic.limits import MAX_TASK_BYTES

GENERATOR_VERSION = 1
BLOCK = 256
GOAL_FACTOR = 0.45  # method §1: the goal must be farther than 0.45 n from the start

# Generation time grows about as n^5 (256 mazes: 21x21 0.13 s, 31x31 0.6 s, 41x41 1.9 s on one core);
# past this size a suite takes minutes with no use in sight (the paper stops at 21x21).
MAX_SIZE = 51
_BIG = np.int16(32000)  # label of a wall in the "low" label array (so min() ignores walls)


def check_size(n: int) -> None:
    """Raise UserError unless ``n`` is an odd maze size in 7..MAX_SIZE (method §1)."""
    if int(n) != n or n < 7 or n % 2 == 0:
        raise UserError(f"maze size must be an odd integer >= 7, got {n!r}")
    if n > MAX_SIZE:
        raise UserError(f"maze size {n} is over the limit of {MAX_SIZE}: generation time grows about as "
                        f"n^5 (256 mazes of 41x41 take ~2 s on one core, of 101x101 minutes)")


def _check_crowd(crowd_ratio: float) -> None:
    if not (0.0 <= float(crowd_ratio) < 1.0):
        raise UserError(f"crowd_ratio must be in [0, 1), got {crowd_ratio!r}")


def _draw_start_goal(rng: np.random.Generator, count: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """method §1 steps 2-3 for ``count`` mazes: start (count, 2) and goal (count, 2), int16."""
    h = (n - 1) // 2
    start = 2 * rng.integers(0, h, size=(count, 2)) + 1
    odd = 2 * np.stack(np.divmod(np.arange(h * h), h), axis=1) + 1  # (h*h, 2) odd cells
    d2 = ((odd[None, :, :] - start[:, None, :]) ** 2).sum(-1)  # (count, h*h)
    far = d2 > (GOAL_FACTOR * n) ** 2
    n_far = far.sum(1)
    p_none = (1.0 - n_far / (h * h)) ** (h * h)
    accepted = rng.random(count) >= p_none
    pick = np.minimum((rng.random(count) * n_far).astype(np.int64), np.maximum(n_far - 1, 0))
    idx = np.argmax(np.cumsum(far, axis=1) > pick[:, None], axis=1)
    goal = np.where(accepted[:, None], odd[idx], n - 2)
    return start.astype(np.int16), goal.astype(np.int16)


def _initial_labels(count: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Region labels of the starting grid: each odd cell its own region, everything else wall.

    Returns (lo, hi), both (count, n, n) int16: an open cell holds its label in both; a wall holds
    ``_BIG`` in ``lo`` and -1 in ``hi``, so min over ``lo`` and max over ``hi`` skip walls.
    """
    h = (n - 1) // 2
    hi = np.full((n, n), -1, dtype=np.int16)
    hi[1::2, 1::2] = np.arange(h * h, dtype=np.int16).reshape(h, h)
    lo = np.where(hi >= 0, hi, _BIG).astype(np.int16)
    return np.repeat(lo[None], count, 0), np.repeat(hi[None], count, 0)


def _neighbours(a: np.ndarray) -> tuple[np.ndarray, ...]:
    """The 4-neighbour views (up, down, left, right) of every interior cell of ``a`` (B, n, n)."""
    return a[:, :-2, 1:-1], a[:, 2:, 1:-1], a[:, 1:-1, :-2], a[:, 1:-1, 2:]


def _remove_walls(rng: np.random.Generator, count: int, n: int, crowd_ratio: float) -> np.ndarray:
    """method §1 step 4 for ``count`` mazes in lock step. Returns walls (count, n, n) uint8."""
    h = (n - 1) // 2
    m = n - 2
    lo, hi = _initial_labels(count, n)
    target = crowd_ratio * m * m
    regions = np.full(count, h * h, dtype=np.int64)
    n_walls = np.full(count, m * m - h * h, dtype=np.int64)
    rows = np.arange(count)
    while True:
        active = (regions > 1) | (n_walls > target)
        if not active.any():
            break
        wall = hi[:, 1:-1, 1:-1] < 0  # interior walls (odd-odd cells are never walls)
        up, down, left, right = _neighbours(lo)
        mn = np.minimum(np.minimum(up, down), np.minimum(left, right))
        up, down, left, right = _neighbours(hi)
        mx = np.maximum(np.maximum(up, down), np.maximum(left, right))
        multi = (regions > 1)[:, None, None]
        # method §1: >= 2 distinct regions among open neighbours, or (one region) any open neighbour.
        qual = (wall & np.where(multi, mx > mn, mx >= 0)).reshape(count, m * m)
        n_qual = qual.sum(1)
        pick = np.minimum((rng.random(count) * n_qual).astype(np.int64), np.maximum(n_qual - 1, 0))
        flat = np.argmax(np.cumsum(qual, axis=1, dtype=np.int16) > pick[:, None], axis=1)
        do = active & (n_qual > 0)
        if do.all():
            _open_cells(lo, hi, regions, n_walls, flat, m)
        else:
            r = rows[do]
            sub_lo, sub_hi = lo[r], hi[r]
            sub_regions, sub_walls = regions[r], n_walls[r]
            _open_cells(sub_lo, sub_hi, sub_regions, sub_walls, flat[r], m)
            lo[r], hi[r], regions[r], n_walls[r] = sub_lo, sub_hi, sub_regions, sub_walls
    return (hi < 0).astype(np.uint8)


def _open_cells(
    lo: np.ndarray, hi: np.ndarray, regions: np.ndarray, n_walls: np.ndarray, flat: np.ndarray, m: int
) -> None:
    """Open one interior cell per maze (``flat`` indexes the (n-2)^2 interior) and merge regions.

    Updates ``lo``, ``hi`` (B, n, n), ``regions`` and ``n_walls`` (B,) in place.
    """
    b = np.arange(len(flat))
    ci, cj = np.divmod(flat, m)
    ci += 1
    cj += 1
    nb = np.stack([hi[b, ci - 1, cj], hi[b, ci + 1, cj], hi[b, ci, cj - 1], hi[b, ci, cj + 1]], 1)
    nb_sorted = np.sort(nb, axis=1)
    distinct = ((nb_sorted >= 0) & (np.diff(nb_sorted, axis=1, prepend=-1) != 0)).sum(1)
    new = np.where(nb >= 0, nb, _BIG).min(1).astype(np.int16)
    # Every cell of a neighbouring region takes the smallest label (-2 never matches: walls are -1).
    nb = np.where(nb >= 0, nb, -2).astype(np.int16)[:, :, None, None]
    merge = (hi == nb[:, 0]) | (hi == nb[:, 1]) | (hi == nb[:, 2]) | (hi == nb[:, 3])
    merge[b, ci, cj] = True
    np.copyto(hi, new[:, None, None], where=merge)
    np.copyto(lo, new[:, None, None], where=merge)
    regions -= np.maximum(distinct - 1, 0)
    n_walls -= 1


def generate_block(
    rng: np.random.Generator, count: int, n: int, crowd_ratio: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate ``count`` mazes from ``rng``.

    Returns:
        walls: (count, n, n) uint8, 1 = wall.
        start: (count, 2) int16, (row, column).
        goal: (count, 2) int16.
    """
    check_size(n)
    _check_crowd(crowd_ratio)
    start, goal = _draw_start_goal(rng, count, n)
    walls = _remove_walls(rng, count, n, crowd_ratio)
    return walls, start, goal


def generate(
    count: int, n: int, crowd_ratio: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic task generation: ``count`` mazes of size ``n`` from ``seed``.

    Task ``i`` depends only on (seed, n, crowd_ratio, i): blocks of ``BLOCK`` mazes each come
    from their own seed sequence, and the last block is cut to size.
    """
    if count < 1:
        raise UserError(f"count must be >= 1, got {count}")
    if count * n * n > MAX_TASK_BYTES:
        raise UserError(f"{count:,} mazes of {n}x{n} take {count * n * n / 2**30:.3g} GiB, over the limit of "
                        f"{MAX_TASK_BYTES / 2**30:g} GiB")
    if int(seed) < 0:
        raise UserError(f"seed must be >= 0, got {seed}")
    parts = []
    for b in range(-(-count // BLOCK)):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(b,))))
        parts.append(generate_block(rng, BLOCK, n, crowd_ratio))
    walls, start, goal = (np.concatenate(p)[:count] for p in zip(*parts))
    return walls, start, goal
