"""Oracle and Random baselines, the results schema and rollout weights."""

from collections import deque

import numpy as np
import pytest

from evoplastic import baselines, results
from evoplastic.envs import tasks


def _bfs_length(walls: np.ndarray, start, goal) -> int:
    """Shortest path length by a plain breadth-first search."""
    n = walls.shape[0]
    seen = {tuple(start): 0}
    queue = deque([tuple(start)])
    while queue:
        i, j = queue.popleft()
        if (i, j) == tuple(goal):
            return seen[(i, j)]
        for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            c = (i + di, j + dj)
            if 0 <= c[0] < n and 0 <= c[1] < n and walls[c] == 0 and c not in seen:
                seen[c] = seen[(i, j)] + 1
                queue.append(c)
    raise AssertionError("goal unreachable")


@pytest.mark.parametrize("size,crowd", [(9, 0.3), (15, 0.45), (21, 0.35)])
def test_oracle_walks_the_shortest_path_every_rollout(size: int, crowd: float) -> None:
    ts = tasks.generate(40, size, crowd, seed=5)
    ret, reached, steps = baselines.run_lifetimes(ts, baselines.oracle_policy(ts), rollouts=2)
    expected = np.array([_bfs_length(ts.walls[i], ts.start[i], ts.goal[i]) for i in range(len(ts))])
    assert reached.all()
    assert np.array_equal(steps, np.stack([expected, expected], 1))
    assert np.allclose(ret, 1 - 0.01 * expected[:, None])


def test_random_baseline_is_split_invariant_and_seeded() -> None:
    ts = tasks.generate(24, 9, 0.3, seed=2)
    full = baselines.evaluate("random", ts, rollouts=2, repeats=2, seed=11)
    again = baselines.evaluate("random", ts, rollouts=2, repeats=2, seed=11)
    other = baselines.evaluate("random", ts, rollouts=2, repeats=2, seed=12)
    assert full["rollout_mean"] == again["rollout_mean"]
    assert full["rollout_mean"] != other["rollout_mean"]
    # the first 8 tasks alone give exactly the per-lifetime numbers of the first 8 within the 24
    policy_all = baselines.random_policy(baselines.crng.keys(11, np.repeat(np.arange(24), 2), np.tile([0, 1], 24)))
    policy_part = baselines.random_policy(baselines.crng.keys(11, np.repeat(np.arange(8), 2), np.tile([0, 1], 8)))
    r_all = baselines.run_lifetimes(ts, policy_all, 2, repeats=2)
    r_part = baselines.run_lifetimes(ts.head(8), policy_part, 2, repeats=2)
    for a, b in zip(r_all, r_part):
        assert np.array_equal(a[:16], b)


def test_random_is_far_below_oracle() -> None:
    ts = tasks.generate(64, 15, 0.35, seed=3)
    rand = baselines.evaluate("random", ts, rollouts=1, seed=0)
    orac = baselines.evaluate("oracle", ts, rollouts=1)
    assert orac["goal_rate"] == [1.0]
    assert rand["weighted_mean"] < orac["weighted_mean"] - 1.0


def test_summarize_by_hand() -> None:
    ret = np.array([[0.0, 1.0], [-2.0, 0.5], [1.0, 0.0]])
    reached = ret > 0
    steps = np.array([[10, 20], [200, 50], [0, 100]])
    res = results.summarize(ret, reached, steps, np.array([1.0, 3.0]), n_tasks=3, suite="x")
    assert res["tasks"] == 3 and res["rollouts"] == 2 and res["lifetimes"] == 3
    assert res["rollout_mean"] == [pytest.approx(-1 / 3, abs=1e-6), 0.5]
    assert res["rollout_se"][1] == pytest.approx(np.std([1.0, 0.5, 0.0], ddof=1) / np.sqrt(3), abs=1e-6)
    assert res["goal_rate"] == [pytest.approx(1 / 3, abs=1e-6), pytest.approx(2 / 3, abs=1e-6)]
    assert res["steps_mean"] == [70.0, pytest.approx(170 / 3, abs=1e-5)]
    per_life = [(0 + 3) / 4, (-2 + 1.5) / 4, (1 + 0) / 4]
    assert res["weighted_mean"] == pytest.approx(np.mean(per_life))
    assert res["weighted_se"] == pytest.approx(np.std(per_life, ddof=1) / np.sqrt(3))
    assert res["suite"] == "x"


def test_default_weights_follow_spec() -> None:
    assert results.default_weights(3) == (0.0, 0.0, 1.0)
    assert results.default_weights(8) == (0.0, 0.0, 0.16, 0.22, 0.36, 0.64, 0.8, 1.0)
    assert results.default_weights(1) == (1.0,)
    assert results.default_weights(5) == (0.0, 0.0, 0.64, 0.8, 1.0)
    with pytest.raises(ValueError, match="need 3 rollout weights"):
        results.check_weights((1.0, 1.0), 3)
    with pytest.raises(ValueError, match="not all 0"):
        results.check_weights((0.0, 0.0), 2)
