"""The maze generator (method §1, "Generation"): invariants, determinism, and fidelity.

Fidelity is checked two ways: against a slow, literal transcription of method §1 written here (the
fast generator draws the scan's choice directly instead of shuffling and scanning; the two must have
the same distribution), and against task files made by the paper's own MetaGym generator.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pytest

from evoplastic.envs import generator, tasks

from _paperfiles import paper_file

REF_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference"

# The paper's sizes and crowd ratios (method §1), plus the smallest size and one more.
CONFIGS = [(9, 0.30), (15, 0.35), (21, 0.35), (15, 0.45), (15, 0.15), (7, 0.30), (11, 0.30),
           (7, 0.0), (9, 0.9)]


# --------------------------------------------------------------------------------------------
# Helpers written from the method (docs/method.md), independent of the code under test.


def bfs(walls: np.ndarray, start) -> np.ndarray:
    """(n, n) shortest-path distance from ``start`` over free cells; -1 where unreachable."""
    n = walls.shape[0]
    dist = np.full((n, n), -1, dtype=np.int64)
    dist[tuple(start)] = 0
    queue = deque([tuple(int(v) for v in start)])
    while queue:
        i, j = queue.popleft()
        for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= a < n and 0 <= b < n and walls[a, b] == 0 and dist[a, b] < 0:
                dist[a, b] = dist[i, j] + 1
                queue.append((a, b))
    return dist


def expected_wall_count(n: int, crowd_ratio: float) -> int:
    """Final interior wall count implied by method §1's loop condition.

    Every removal while regions > 1 merges exactly two regions, so the last merge leaves a spanning
    tree of the h*h odd cells ("loop-free" count); after that one wall goes per removal while the
    count exceeds crowd_ratio * (n-2)^2.
    """
    m, h = n - 2, (n - 1) // 2
    walls = m * m - h * h - (h * h - 1)
    while walls > crowd_ratio * m * m:
        walls -= 1
    return walls


def literal_maze(rng: np.random.Generator, n: int, crowd_ratio: float, mutant: str | None = None):
    """One maze by a literal reading of method §1 (start; goal rounds; shuffle-and-scan wall removal).

    ``mutant`` deliberately breaks one rule, to show the statistical comparison has power:
    "one_goal_round" (a single round of goal draws), "phase1_any_open" (while regions > 1, stop at
    any wall with an open neighbour), "odd_even_only" (never consider even-even cells).

    Returns walls (n, n) uint8, start (2,), goal (2,), fallback (bool).
    """
    h = (n - 1) // 2
    walls = np.ones((n, n), dtype=np.uint8)
    walls[1::2, 1::2] = 0  # step 1
    start = (2 * int(rng.integers(h)) + 1, 2 * int(rng.integers(h)) + 1)  # step 2
    goal = None
    for _ in range(1 if mutant == "one_goal_round" else h):  # step 3
        for _ in range(h):
            cell = (2 * int(rng.integers(h)) + 1, 2 * int(rng.integers(h)) + 1)
            if np.hypot(cell[0] - start[0], cell[1] - start[1]) > 0.45 * n:
                goal = cell
                break
    fallback = goal is None
    if fallback:
        goal = (n - 2, n - 2)

    region = np.full((n, n), -1, dtype=np.int64)  # step 4
    region[1::2, 1::2] = np.arange(h * h).reshape(h, h)
    n_regions = h * h

    def open_labels(i: int, j: int) -> set[int]:
        return {int(region[a, b]) for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1))
                if walls[a, b] == 0}

    while True:
        remaining = [(i, j) for i in range(1, n - 1) for j in range(1, n - 1) if walls[i, j]
                     and not (mutant == "odd_even_only" and i % 2 == 0 and j % 2 == 0)]
        if not (n_regions > 1 or len(remaining) > crowd_ratio * (n - 2) ** 2):
            break
        order = rng.permutation(len(remaining))
        considered = remaining[order[-1]]  # if the scan ends without stopping
        for k in order:
            i, j = remaining[k]
            if n_regions > 1:
                need = 1 if mutant == "phase1_any_open" else 2
                if len(open_labels(i, j)) >= need:
                    considered = (i, j)
                    break
            elif rng.random() < 0.2:
                considered = (i, j)
                break
        labels = open_labels(*considered)
        if labels:
            new = min(labels)
            for label in labels:
                region[region == label] = new
            walls[considered] = 0
            region[considered] = new
            n_regions -= len(labels) - 1
    return walls, np.array(start), np.array(goal), fallback


def maze_stats(walls: np.ndarray, start, goal) -> dict[str, float]:
    """Statistics that expose a wrong generation algorithm."""
    n = walls.shape[0]
    free = walls == 0
    p = np.pad(free, 1).astype(np.int64)
    degree = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
    return {
        "dead_ends": float((free & (degree == 1)).sum()),
        "open_even_even": float(free[2:-1:2, 2:-1:2].sum()),
        "path_length": float(bfs(walls, start)[tuple(goal)]),
        "goal_at_corner": float(tuple(int(v) for v in goal) == (n - 2, n - 2)),
        "near_goal": float(np.hypot(*(np.asarray(goal, float) - start)) <= 0.45 * n),
        "start_goal_distance": float(np.hypot(*(np.asarray(goal, float) - start))),
    }


def stats_table(walls, start, goal) -> dict[str, np.ndarray]:
    rows = [maze_stats(walls[i], start[i], goal[i]) for i in range(len(walls))]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def z_scores(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """|mean difference| / its standard error, per statistic (0 if both are constant and equal)."""
    out = {}
    for k in a:
        diff = a[k].mean() - b[k].mean()
        se = np.sqrt(a[k].var(ddof=1) / len(a[k]) + b[k].var(ddof=1) / len(b[k]))
        out[k] = 0.0 if diff == 0 else float(abs(diff) / se) if se > 0 else float("inf")
    return out


def literal_set(count: int, n: int, crowd_ratio: float, seed: int, mutant: str | None = None):
    rng = np.random.default_rng(seed)
    mazes = [literal_maze(rng, n, crowd_ratio, mutant) for _ in range(count)]
    walls, start, goal, fallback = (np.array(x) for x in zip(*mazes))
    return walls, start, goal, fallback


# --------------------------------------------------------------------------------------------
# Invariants


def test_expected_wall_counts_by_hand() -> None:
    # (n-2)^2 - h^2 - (h^2 - 1) loop-free; floor(crowd (n-2)^2) if lower.
    assert expected_wall_count(9, 0.30) == 14  # 14.7 -> 14 (loop-free 18)
    assert expected_wall_count(15, 0.35) == 59  # 59.15 -> 59 (loop-free 72)
    assert expected_wall_count(21, 0.35) == 126  # 126.35 -> 126 (loop-free 200)
    assert expected_wall_count(15, 0.45) == 72  # 76.05 > loop-free 72
    assert expected_wall_count(15, 0.15) == 25  # 25.35 -> 25
    assert expected_wall_count(7, 0.30) == 7  # 7.5 -> 7 (loop-free 8)
    assert expected_wall_count(7, 0.0) == 0


@pytest.mark.parametrize("n,crowd", CONFIGS)
def test_generated_mazes_satisfy_spec_invariants(n: int, crowd: float) -> None:
    count = 300 if n <= 15 else 120
    for seed in (0, 977):
        walls, start, goal = generator.generate(count, n, crowd, seed)
        assert walls.shape == (count, n, n) and walls.dtype == np.uint8
        assert start.shape == goal.shape == (count, 2)
        assert np.isin(walls, (0, 1)).all()
        # border all walls; every odd-odd cell open
        assert walls[:, 0].all() and walls[:, -1].all() and walls[:, :, 0].all() and walls[:, :, -1].all()
        assert (walls[:, 1::2, 1::2] == 0).all()
        # start and goal on odd cells (inside the border)
        assert (start % 2 == 1).all() and (goal % 2 == 1).all()
        assert (start >= 1).all() and (start <= n - 2).all() and (goal >= 1).all() and (goal <= n - 2).all()
        # goal far from the start unless it is the fallback (n-2, n-2)
        dist = np.sqrt(((goal.astype(float) - start) ** 2).sum(1))
        fallback = (goal == n - 2).all(1)
        assert ((dist > 0.45 * n) | fallback).all()
        # exact interior wall count
        interior = walls[:, 1:-1, 1:-1].reshape(count, -1).sum(1)
        assert (interior == expected_wall_count(n, crowd)).all(), np.unique(interior)
        # every open cell reachable from the start
        for t in range(count):
            d = bfs(walls[t], start[t])
            assert ((d >= 0) == (walls[t] == 0)).all(), f"seed {seed} task {t}: unreachable cells"


def test_bad_arguments_are_rejected() -> None:
    for n in (8, 5, 7.5):
        with pytest.raises(ValueError, match="odd integer >= 7"):
            generator.generate(4, n, 0.3, 0)
    with pytest.raises(ValueError, match="crowd_ratio"):
        generator.generate(4, 9, 1.0, 0)
    with pytest.raises(ValueError, match="count"):
        generator.generate(0, 9, 0.3, 0)
    with pytest.raises(ValueError, match="seed"):
        generator.generate(4, 9, 0.3, -1)


# --------------------------------------------------------------------------------------------
# Determinism


def test_same_arguments_same_arrays_and_seeds_matter() -> None:
    a = generator.generate(100, 15, 0.35, 42)
    b = generator.generate(100, 15, 0.35, 42)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    c = generator.generate(100, 15, 0.35, 43)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[1], c[1])
    # other size parameters give other tasks too
    d = generator.generate(100, 15, 0.45, 42)
    assert not np.array_equal(a[0], d[0])


@pytest.mark.parametrize("k", [1, 5, 256, 300])
def test_prefix_property(k: int) -> None:
    """Task i depends only on (seed, n, crowd_ratio, i): a short set is a prefix of a long one."""
    long = generator.generate(600, 9, 0.30, 7)
    short = generator.generate(k, 9, 0.30, 7)
    for x, y in zip(short, long):
        assert len(x) == k
        assert np.array_equal(x, y[:k])


# --------------------------------------------------------------------------------------------
# Fidelity: the fast generator against the literal method §1 algorithm


def test_literal_implementation_satisfies_the_invariants() -> None:
    """The slow oracle itself must be right before it judges anything."""
    for n, crowd in ((7, 0.3), (9, 0.3), (15, 0.35)):
        walls, start, goal, fallback = literal_set(60, n, crowd, seed=3)
        interior = walls[:, 1:-1, 1:-1].reshape(len(walls), -1).sum(1)
        assert (interior == expected_wall_count(n, crowd)).all()
        for t in range(len(walls)):
            assert ((bfs(walls[t], start[t]) >= 0) == (walls[t] == 0)).all()
        dist = np.sqrt(((goal - start) ** 2).sum(1))
        assert ((dist > 0.45 * n) | fallback).all()
        assert (goal[fallback] == n - 2).all()


@pytest.mark.parametrize("n,crowd,count", [(9, 0.30, 800), (15, 0.35, 300)])
def test_fast_generator_matches_literal_algorithm(n: int, crowd: float, count: int) -> None:
    lit_walls, lit_start, lit_goal, _ = literal_set(count, n, crowd, seed=2024)
    fast = stats_table(*generator.generate(count, n, crowd, 11))
    lit = stats_table(lit_walls, lit_start, lit_goal)
    z = z_scores(lit, fast)
    assert max(z.values()) < 4.0, z
    # distributions, not only means: dead-end histograms agree (chi-square, p ~ 1e-4 threshold)
    bins = np.arange(0, max(lit["dead_ends"].max(), fast["dead_ends"].max()) + 2)
    ha, _ = np.histogram(lit["dead_ends"], bins)
    hb, _ = np.histogram(fast["dead_ends"], bins)
    keep = (ha + hb) >= 10
    ha, hb = ha[keep], hb[keep]
    chi2 = (((ha - hb) ** 2) / (ha + hb)).sum()
    dof = keep.sum() - 1
    assert chi2 < dof + 4.5 * np.sqrt(2 * dof), (chi2, dof)


def exact_goal_probabilities(n: int) -> dict[str, float]:
    """P(fallback), P(goal == (n-2, n-2)) and P(fallback goal within 0.45 n), exactly, from method §1.

    Each of the h*h draws is uniform over the h*h odd cells; the fallback happens when all miss the
    far set (probability (1-q)^(h*h)); otherwise the goal is uniform over the far cells.
    """
    h = (n - 1) // 2
    odd = [(2 * a + 1, 2 * b + 1) for a in range(h) for b in range(h)]
    corner = (n - 2, n - 2)
    p = {"fallback": 0.0, "corner": 0.0, "near": 0.0}
    for s in odd:
        far = [c for c in odd if np.hypot(c[0] - s[0], c[1] - s[1]) > 0.45 * n]
        fb = (1 - len(far) / (h * h)) ** (h * h)
        p["fallback"] += fb / len(odd)
        p["corner"] += (fb + ((1 - fb) / len(far) if corner in far else 0.0)) / len(odd)
        p["near"] += fb * (np.hypot(corner[0] - s[0], corner[1] - s[1]) <= 0.45 * n) / len(odd)
    return p


def test_goal_fallback_rate_matches_spec_exactly() -> None:
    """7x7 makes the fallback frequent (from the centre no odd cell is far enough)."""
    count, n = 3000, 7
    exact = exact_goal_probabilities(n)
    assert 0.1 < exact["fallback"] < 0.15 and 0.1 < exact["near"] < exact["fallback"]
    _, lit_start, lit_goal, lit_fallback = literal_set(count, n, 0.30, seed=99)
    _, start, goal = generator.generate(count, n, 0.30, 5)

    def within(observed: np.ndarray, p: float) -> bool:
        return abs(observed.mean() - p) < 4 * np.sqrt(p * (1 - p) / len(observed))

    for s, g in ((start, goal), (lit_start, lit_goal)):
        near = np.sqrt(((g - s) ** 2).sum(1)) <= 0.45 * n
        assert (g[near] == n - 2).all()  # a near goal can only be the fallback
        assert within(near, exact["near"]), (near.mean(), exact["near"])
        assert within((g == n - 2).all(1), exact["corner"]), ((g == n - 2).all(1).mean(), exact)
        # the start is uniform over the 9 odd cells
        counts = np.bincount((s[:, 0] // 2) * 3 + s[:, 1] // 2, minlength=9)
        assert ((counts - count / 9) ** 2 / (count / 9)).sum() < 26.1  # p = 0.001, 8 dof
    assert within(lit_fallback, exact["fallback"])


@pytest.mark.parametrize("mutant,n,count", [("phase1_any_open", 9, 800), ("odd_even_only", 9, 800),
                                            ("one_goal_round", 7, 3000)])
def test_fidelity_comparison_detects_wrong_algorithms(mutant: str, n: int, count: int) -> None:
    """The comparison above has power: each deliberately wrong variant is flagged clearly."""
    walls, start, goal, _ = literal_set(count, n, 0.30, seed=2024, mutant=mutant)
    z = z_scores(stats_table(walls, start, goal), stats_table(*generator.generate(count, n, 0.30, 11)))
    assert max(z.values()) > 8.0, z


# --------------------------------------------------------------------------------------------
# Fidelity: against task files of the paper's MetaGym generator


_PUBLISHED = {"maze9_c030_2048.dat": "paper-maze9", "maze15_c030_1024.dat": "paper-maze15"}


def _reference(name: str) -> tasks.TaskSet:
    """A MetaGym task file: the published ones from the cache (see _paperfiles), 21x21 from ../shared."""
    if name in _PUBLISHED:
        return tasks.load_reference(paper_file(_PUBLISHED[name]))
    path = REF_DIR / name
    if not path.exists():
        pytest.skip(f"reference task file {path} absent (../shared/reference is not checked out)")
    return tasks.load_reference(path)


@pytest.mark.parametrize("name,crowd", [("maze9_c030_2048.dat", 0.30), ("maze15_c030_1024.dat", 0.30),
                                        ("maze21_c035_1024.dat", 0.35)])
def test_generator_matches_metagym_reference(name: str, crowd: float) -> None:
    ref = _reference(name)
    n, count = ref.size, len(ref)
    walls, start, goal = generator.generate(count, n, crowd, 31)
    # the interior wall count is exactly the same in every maze
    ref_counts = ref.walls[:, 1:-1, 1:-1].reshape(count, -1).sum(1)
    ours = walls[:, 1:-1, 1:-1].reshape(count, -1).sum(1)
    assert set(ref_counts.tolist()) == set(ours.tolist()) == {expected_wall_count(n, crowd)}
    z = z_scores(stats_table(ref.walls, ref.start, ref.goal), stats_table(walls, start, goal))
    assert max(z.values()) < 4.0, z
    # and the reference's goal sits on (n-2, n-2) as often as method §1 predicts
    p = exact_goal_probabilities(n)["corner"]
    corner = (ref.goal == n - 2).all(1)
    assert abs(corner.mean() - p) < 4 * np.sqrt(p * (1 - p) / count), (corner.mean(), p)
