"""method §7 baselines run as lifetimes: Oracle (shortest path, full knowledge) and Random (uniform).

Both run through the same vectorized maze as the learners, with the same rollout loop, so their
tables are directly comparable with evolved genomes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from evoplastic import rng as crng
from evoplastic.envs.maze import VectorMaze
from evoplastic.envs.tasks import TaskSet
from evoplastic.errors import UserError
from evoplastic.results import default_weights, summarize

Policy = Callable[[VectorMaze, int], np.ndarray]  # (maze, global step counter) -> (B,) actions

_INF = np.iinfo(np.int32).max // 2


def distance_to_goal(tasks: TaskSet) -> np.ndarray:
    """(T, n, n) int32 shortest-path length from every free cell to the goal (walls: large).

    Breadth-first search run as a vectorized relaxation over all tasks at once.
    """
    free = tasks.walls == 0
    t = len(tasks)
    dist = np.full(free.shape, _INF, dtype=np.int32)
    dist[np.arange(t), tasks.goal[:, 0], tasks.goal[:, 1]] = 0
    while True:
        nb = np.full_like(dist, _INF)
        nb[:, 1:, :] = np.minimum(nb[:, 1:, :], dist[:, :-1, :])
        nb[:, :-1, :] = np.minimum(nb[:, :-1, :], dist[:, 1:, :])
        nb[:, :, 1:] = np.minimum(nb[:, :, 1:], dist[:, :, :-1])
        nb[:, :, :-1] = np.minimum(nb[:, :, :-1], dist[:, :, 1:])
        new = np.where(free, np.minimum(dist, nb + 1), _INF)
        if np.array_equal(new, dist):
            return dist
        dist = new


def oracle_policy(tasks: TaskSet) -> Policy:
    """Step to a neighbour one cell closer to the goal (ties: the lowest action index)."""
    dist = distance_to_goal(tasks)
    n = tasks.size

    def act(maze: VectorMaze, counter: int) -> np.ndarray:
        cell = maze.agent
        d = dist[maze.task_index]  # (B, n, n)
        b = np.arange(maze.batch)
        i, j = cell[:, 0], cell[:, 1]
        around = np.stack([d[b, np.maximum(i - 1, 0), j], d[b, np.minimum(i + 1, n - 1), j],
                           d[b, i, np.maximum(j - 1, 0)], d[b, i, np.minimum(j + 1, n - 1)]], 1)
        return np.argmin(around, axis=1)

    return act


def random_policy(keys: np.ndarray) -> Policy:
    """Uniform random actions from each lifetime's own counter-based stream."""

    def act(maze: VectorMaze, counter: int) -> np.ndarray:
        return crng.integers(keys, counter, 4)

    return act


def run_lifetimes(
    tasks: TaskSet, policy: Policy, rollouts: int, repeats: int = 1, encoding: str = "v2",
    max_steps: int = 200,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``len(tasks) * repeats`` lifetimes of ``rollouts`` episodes with a fixed policy.

    Lifetime ``l`` is task ``l // repeats``, repeat ``l % repeats``. Returns (returns, reached,
    steps), each (L, R).
    """
    task_index = np.repeat(np.arange(len(tasks)), repeats)
    maze = VectorMaze(tasks.walls, tasks.start, tasks.goal, task_index, encoding, max_steps,
                      validate=False)
    shape = (maze.batch, rollouts)
    returns, reached, steps = np.zeros(shape), np.zeros(shape, bool), np.zeros(shape, np.int32)
    counter = 0
    for r in range(rollouts):
        maze.reset()
        while not maze.done.all():
            maze.step(policy(maze, counter), check=False)
            counter += 1
        returns[:, r], reached[:, r], steps[:, r] = maze.episode_return(), maze.reached, maze.steps
    return returns, reached, steps


def evaluate(
    kind: str, tasks: TaskSet, rollouts: int = 3, repeats: int = 1, seed: int = 0,
    weights: tuple[float, ...] | None = None, encoding: str = "v2",
) -> dict[str, Any]:
    """Run the ``kind`` ("oracle" or "random") baseline and return a result (results schema)."""
    if kind == "oracle":
        policy = oracle_policy(tasks)
    elif kind == "random":
        lifetime = np.arange(len(tasks) * repeats)
        policy = random_policy(crng.keys(seed, lifetime // repeats, lifetime % repeats))
    else:
        raise UserError(f"unknown baseline {kind!r}; choose oracle or random")
    returns, reached, steps = run_lifetimes(tasks, policy, rollouts, repeats, encoding)
    w = default_weights(rollouts) if weights is None else tuple(weights)
    return summarize(returns, reached, steps, np.asarray(w), len(tasks), suite=tasks.name,
                     baseline=kind, seed=seed, repeats=repeats, tasks_digest=tasks.digest()[:16],
                     task_meta={k: v for k, v in tasks.meta.items() if k != "name"})
