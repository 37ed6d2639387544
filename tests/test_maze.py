"""VectorMaze dynamics and observations (method §1, "Dynamics" and "Observation")."""

from __future__ import annotations

import numpy as np
import pytest

from evoplastic.envs import tasks
from evoplastic.envs.maze import VectorMaze, check_tasks

# A hand-made 7x7 maze, 1 = wall:
#   # # # # # # #
#   # S . . # . #      task 0: S = (1, 1), G = (5, 5); shortest path 8: down x4, right x4
#   # . # . # . #      task 1: start (1, 5), goal (3, 3); shortest path 4: down, down, left, left
#   # . # . . . #
#   # . # # # . #
#   # . . . . G #
#   # # # # # # #
W = np.array([
    [1, 1, 1, 1, 1, 1, 1],
    [1, 0, 0, 0, 1, 0, 1],
    [1, 0, 1, 0, 1, 0, 1],
    [1, 0, 1, 0, 0, 0, 1],
    [1, 0, 1, 1, 1, 0, 1],
    [1, 0, 0, 0, 0, 0, 1],
    [1, 1, 1, 1, 1, 1, 1],
], dtype=np.uint8)
WALLS = np.stack([W, W])
START = np.array([[1, 1], [1, 5]])
GOAL = np.array([[5, 5], [3, 3]])
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
PATH0 = [DOWN] * 4 + [RIGHT] * 4
PATH1 = [DOWN, DOWN, LEFT, LEFT]


def maze(task_index=None, encoding: str = "v1", **kw) -> VectorMaze:
    return VectorMaze(WALLS, START, GOAL, task_index=task_index, encoding=encoding, **kw)


def act(vm: VectorMaze, *actions: int):
    return vm.step(np.array(actions, dtype=np.int64))


# --------------------------------------------------------------------------------------------
# Hand-worked transitions


def test_moving_into_a_wall_stays_and_costs_a_step() -> None:
    vm = maze(task_index=[0])
    for a in (UP, LEFT):  # the border
        _, reward, done = act(vm, a)
        assert vm.agent.tolist() == [[1, 1]]
        assert reward.dtype == np.float32 and reward[0] == np.float32(-0.01)
        assert not done[0]
    act(vm, RIGHT)
    assert vm.agent.tolist() == [[1, 2]]
    _, reward, _ = act(vm, DOWN)  # (2, 2) is an interior wall
    assert vm.agent.tolist() == [[1, 2]] and reward[0] == np.float32(-0.01)
    assert vm.steps.tolist() == [4]
    assert vm.episode_return()[0] == pytest.approx(-0.04, abs=1e-12)


@pytest.mark.parametrize("bumps", [0, 3])
def test_reaching_the_goal_after_k_actions(bumps: int) -> None:
    vm = maze(task_index=[0])
    actions = [UP] * bumps + PATH0
    rewards = []
    for t, a in enumerate(actions):
        _, reward, done = act(vm, a)
        rewards.append(float(reward[0]))
        assert done[0] == (t == len(actions) - 1)
    k = len(actions)
    assert vm.agent.tolist() == [[5, 5]] and vm.reached[0] and vm.steps[0] == k
    assert rewards[:-1] == pytest.approx([-0.01] * (k - 1))
    assert rewards[-1] == pytest.approx(0.99)
    assert sum(rewards) == pytest.approx(1 - 0.01 * k, abs=1e-6)
    assert vm.episode_return()[0] == pytest.approx(1 - 0.01 * k, abs=1e-12)


def test_a_done_slot_does_not_move_and_gets_zero_reward() -> None:
    vm = maze(task_index=[0, 0, 1])
    for t in range(12):
        a0 = PATH0[t] if t < len(PATH0) else UP  # slot 0 reaches the goal at t = 7
        a2 = PATH1[t] if t < len(PATH1) else RIGHT  # slot 2 reaches its goal at t = 3
        _, reward, done = act(vm, a0, UP, a2)
        assert reward[1] == np.float32(-0.01) and not done[1]
        if t > 7:
            assert reward[0] == 0.0 and done[0]
        if t > 3:
            assert reward[2] == 0.0 and done[2]
    assert vm.agent.tolist() == [[5, 5], [1, 1], [3, 3]]
    assert vm.steps.tolist() == [8, 12, 4]
    assert vm.episode_return() == pytest.approx([0.92, -0.12, 0.96], abs=1e-12)


def test_two_hundred_steps_without_the_goal() -> None:
    vm = maze(task_index=[0, 1])
    total = np.zeros(2)
    for t in range(200):
        _, reward, done = act(vm, UP, UP)  # both slots stand against the border
        total += reward
        assert done.tolist() == [t == 199] * 2
    assert total == pytest.approx([-2.0, -2.0], abs=1e-5)
    assert vm.episode_return().tolist() == [-2.0, -2.0]
    assert not vm.reached.any()
    _, reward, done = act(vm, DOWN, DOWN)  # over: frozen
    assert reward.tolist() == [0.0, 0.0] and done.all() and vm.agent.tolist() == [[1, 1], [1, 5]]


def test_goal_on_the_last_allowed_step_counts() -> None:
    vm = maze(task_index=[0])
    for a in [UP] * 192 + PATH0:  # the 200th action enters the goal
        _, reward, done = act(vm, a)
    assert done[0] and vm.reached[0] and reward[0] == pytest.approx(0.99)
    assert vm.episode_return()[0] == pytest.approx(-1.0, abs=1e-12)


def test_max_steps_is_configurable() -> None:
    vm = maze(task_index=[0], max_steps=5)
    dones = [bool(act(vm, UP)[2][0]) for _ in range(5)]
    assert dones == [False] * 4 + [True]
    assert vm.episode_return()[0] == pytest.approx(-0.05, abs=1e-12)


def test_reset_with_a_mask_resets_only_those_slots() -> None:
    vm = maze(task_index=[0, 0, 1, 1])
    for a in PATH1:  # slots 2 and 3 reach their goal; slots 0 and 1 move down four
        act(vm, DOWN, DOWN, a, a)
    assert vm.done.tolist() == [False, False, True, True]
    obs = vm.reset(np.array([True, False, True, False]))
    assert vm.agent.tolist() == [[1, 1], [5, 1], [1, 5], [3, 3]]
    assert vm.steps.tolist() == [0, 4, 0, 4]
    assert vm.done.tolist() == [False, False, False, True]
    assert vm.reached.tolist() == [False, False, False, True]
    assert np.array_equal(obs, vm.observe())
    # the reset slot 2 plays again, the untouched slot 3 stays frozen
    _, reward, _ = act(vm, UP, UP, DOWN, UP)
    assert reward.tolist() == pytest.approx([-0.01, -0.01, -0.01, 0.0])
    vm.reset()
    assert vm.agent.tolist() == [[1, 1], [1, 1], [1, 5], [1, 5]] and not vm.done.any()


# --------------------------------------------------------------------------------------------
# Observation windows: row-major 3x3, agent at index 4; v1 wall +1, free 0, goal -1; v2 negated


@pytest.mark.parametrize("task,actions,cell,expected_v1", [
    (0, [], (1, 1), [1, 1, 1, 1, 0, 0, 1, 0, 1]),  # top-left corner
    (1, [], (1, 5), [1, 1, 1, 1, 0, 1, 1, 0, 1]),  # top-right corner, dead end
    (0, [DOWN] * 4 + [RIGHT], (5, 2), [0, 1, 1, 0, 0, 0, 1, 1, 1]),  # against the bottom border
    (0, [DOWN] * 4 + [RIGHT] * 3, (5, 4), [1, 1, 0, 0, 0, -1, 1, 1, 1]),  # goal to the right
    (1, [DOWN, DOWN, LEFT], (3, 4), [0, 1, 0, -1, 0, 0, 1, 1, 0]),  # goal to the left
    (0, [DOWN] * 3, (4, 1), [1, 0, 1, 1, 0, 1, 1, 0, 0]),  # left border, corridor
    (0, PATH0, (5, 5), [1, 0, 1, 0, -1, 1, 1, 1, 1]),  # standing on the goal
])
def test_observation_windows(task: int, actions: list[int], cell, expected_v1: list[int]) -> None:
    obs = {}
    for enc in ("v1", "v2"):
        vm = maze(task_index=[task], encoding=enc)
        o = vm.reset()
        for a in actions:
            o, _, _ = act(vm, a)
        assert vm.agent.tolist() == [list(cell)]
        assert o.shape == (1, 9) and o.dtype == np.float32
        assert np.array_equal(o, vm.observe())
        obs[enc] = o[0]
    assert obs["v1"].tolist() == expected_v1
    assert obs["v2"].tolist() == [-v for v in expected_v1]


def test_outside_the_grid_is_seen_as_wall() -> None:
    """Unreachable with valid mazes (the border is wall); seen here with validation off."""
    w = W.copy()
    w[0, 3] = 0  # a hole in the border, start on it
    for enc, sign in (("v1", 1), ("v2", -1)):
        vm = VectorMaze(w[None], np.array([[0, 3]]), np.array([[5, 5]]), encoding=enc, validate=False)
        assert vm.observe()[0].tolist() == [sign * v for v in (1, 1, 1, 1, 0, 1, 0, 0, 1)]
        act(vm, UP)  # cannot step outside
        assert vm.agent.tolist() == [[0, 3]]


# --------------------------------------------------------------------------------------------
# Batched == a plain Python loop over single mazes, written from method §1

MOVES = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}


class LoopMaze:
    """One episode, one maze, plain Python (method §1)."""

    def __init__(self, walls: np.ndarray, start, goal, encoding: str, max_steps: int = 200) -> None:
        self.walls, self.start, self.goal = walls, tuple(int(v) for v in start), tuple(int(v) for v in goal)
        self.sign = 1.0 if encoding == "v1" else -1.0
        self.max_steps = max_steps
        self.reset()

    def reset(self) -> None:
        self.pos, self.steps, self.done, self.ret = self.start, 0, False, 0.0

    def observe(self) -> list[float]:
        n = self.walls.shape[0]
        out = []
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                i, j = self.pos[0] + di, self.pos[1] + dj
                if not (0 <= i < n and 0 <= j < n):
                    v = 1.0  # outside
                elif (i, j) == self.goal:
                    v = -1.0
                else:
                    v = 1.0 if self.walls[i, j] else 0.0
                out.append(self.sign * v)
        return out

    def step(self, action: int) -> float:
        if self.done:
            return 0.0
        i, j = self.pos[0] + MOVES[action][0], self.pos[1] + MOVES[action][1]
        if self.walls[i, j] == 0:
            self.pos = (i, j)
        self.steps += 1
        reward = -0.01
        if self.pos == self.goal:
            reward += 1.0
            self.done = True
        if self.steps >= self.max_steps:
            self.done = True
        self.ret += reward
        return reward


@pytest.mark.parametrize("size,crowd,encoding", [(9, 0.30, "v1"), (9, 0.30, "v2"), (15, 0.15, "v1")])
def test_batched_step_equals_python_loop(size: int, crowd: float, encoding: str) -> None:
    ts = tasks.generate(6, size, crowd, seed=17)
    rng = np.random.default_rng(4)
    task_index = rng.integers(0, len(ts), size=64)
    vm = VectorMaze(ts.walls, ts.start, ts.goal, task_index=task_index, encoding=encoding)
    ref = [LoopMaze(ts.walls[t], ts.start[t], ts.goal[t], encoding) for t in task_index]
    obs = vm.reset()
    ever_reached = np.zeros(64, bool)
    timed_out = np.zeros(64, bool)
    for step in range(420):
        if step == 150:  # restart the finished slots (and only them) mid-run
            mask = vm.done.copy()
            assert mask.any() and not mask.all()
            obs = vm.reset(mask)
            for b in np.flatnonzero(mask):
                ref[b].reset()
        assert np.array_equal(obs, np.array([r.observe() for r in ref], np.float32)), step
        assert vm.agent.tolist() == [list(r.pos) for r in ref]
        actions = rng.integers(0, 4, size=64)
        obs, reward, done = vm.step(actions)
        expected = [r.step(int(a)) for r, a in zip(ref, actions)]
        assert np.allclose(reward, expected, atol=1e-6, rtol=0), step
        assert done.tolist() == [r.done for r in ref], step
        assert vm.steps.tolist() == [r.steps for r in ref]
        ever_reached |= vm.reached
        timed_out |= done & ~vm.reached
    assert np.allclose(vm.episode_return(), [r.ret for r in ref], atol=1e-9)
    # the run exercised both endings
    assert ever_reached.any() and timed_out.any()


# --------------------------------------------------------------------------------------------
# Bad input


def test_check_tasks_accepts_the_hand_made_maze() -> None:
    check_tasks(WALLS, START, GOAL)


@pytest.mark.parametrize("edit,match", [
    (lambda w, s, g: w[1].__setitem__((0, 3), 0), "task 1: the maze border must be all walls"),
    (lambda w, s, g: w[0].__setitem__((4, 6), 0), "task 0: the maze border must be all walls"),
    (lambda w, s, g: s.__setitem__(0, (2, 2)), "task 0: the start cell is a wall"),
    (lambda w, s, g: g.__setitem__(1, (4, 3)), "task 1: the goal cell is a wall"),
    (lambda w, s, g: s.__setitem__(1, (0, 3)), "start cells must lie inside the border"),
    (lambda w, s, g: g.__setitem__(0, (5, 7)), "goal cells must lie inside the border"),
    (lambda w, s, g: w[0].__setitem__((3, 3), 2), "only 0 .free. and 1 .wall."),
])
def test_check_tasks_rejects_bad_mazes(edit, match: str) -> None:
    w, s, g = WALLS.copy(), START.copy(), GOAL.copy()
    edit(w, s, g)
    with pytest.raises(ValueError, match=match):
        check_tasks(w, s, g)
    with pytest.raises(ValueError, match=match):
        VectorMaze(w, s, g)


@pytest.mark.parametrize("walls,start,goal,match", [
    (W, START[:1], GOAL[:1], r"walls must have shape \(tasks, n, n\), got \(7, 7\)"),
    (WALLS[:, :, :6], START, GOAL, r"walls must have shape \(tasks, n, n\)"),
    (WALLS, START[:1], GOAL, r"start and goal must have shape \(2, 2\)"),
    (WALLS, START, np.zeros((2, 3), int), r"start and goal must have shape \(2, 2\)"),
])
def test_check_tasks_rejects_wrong_shapes(walls, start, goal, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_tasks(walls, start, goal)


def test_vector_maze_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="encoding must be one of"):
        maze(encoding="v3")
    with pytest.raises(ValueError, match="task_index"):
        maze(task_index=[0, 2])
    with pytest.raises(ValueError, match="task_index"):
        maze(task_index=[-1])


def test_step_rejects_bad_actions() -> None:
    ts = tasks.generate(2, 9, 0.3, 0)
    vm = VectorMaze(ts.walls, ts.start, ts.goal)
    vm.reset()
    for bad, needle in (([0, 4], "in 0..3"), ([-1, 0], "in 0..3"), ([0], r"\(2,\) integers"),
                        ([0.0, 1.0], "integers")):
        with pytest.raises(ValueError, match=needle):
            vm.step(np.array(bad))
    assert (vm.steps == 0).all()


def test_large_maze_indices_do_not_overflow_and_v2_has_no_negative_zero() -> None:
    n = 201
    walls = np.ones((1, n, n), np.uint8)
    walls[0, 1:-1, 1:-1] = 0
    start = np.array([[199, 199]], np.int16)
    goal = np.array([[1, 1]], np.int16)
    vm = VectorMaze(walls, start, goal, encoding="v2")
    obs = vm.reset()
    assert vm.agent.tolist() == [[199, 199]]
    assert not np.signbit(obs[obs == 0]).any()
