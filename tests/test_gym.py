"""Gymnasium front ends: API compliance, registry, lifetime semantics, native vector == sync of singles."""

from __future__ import annotations

import importlib
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import evoplastic.envs  # noqa: F401  (registers the env id)
from evoplastic.envs import tasks as tasks_mod
from evoplastic.envs.gym_env import MetaMaze2DEnv, MetaMaze2DVectorEnv
from evoplastic.envs.tasks import TaskSet

ENV_ID = "evoplastic/MetaMaze2D-v0"
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3


def open_room(starts: list[tuple[int, int]], goals: list[tuple[int, int]], n: int = 7) -> TaskSet:
    """Hand-made n x n mazes with no interior wall (one task per start/goal pair)."""
    walls = np.ones((len(starts), n, n), np.uint8)
    walls[:, 1:-1, 1:-1] = 0
    return TaskSet(walls, np.array(starts, np.int16), np.array(goals, np.int16), {"name": "room"})


@pytest.fixture(scope="module")
def mazes9() -> TaskSet:
    return tasks_mod.generate(6, 9, 0.30, seed=11)


# ---------------------------------------------------------------- API compliance and registry


def test_check_env_passes_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        check_env(gymnasium.make(ENV_ID).unwrapped)  # has a spec: also checks every render mode
        check_env(MetaMaze2DEnv(tasks=open_room([(1, 1), (3, 3)], [(5, 5), (1, 5)])),
                  skip_render_check=True)


def test_registry_gives_single_and_native_vector_env() -> None:
    env = gymnasium.make(ENV_ID, size=15, crowd_ratio=0.35)
    assert type(env.unwrapped) is MetaMaze2DEnv
    assert env.unwrapped.size == 15
    venv = gymnasium.make_vec(ENV_ID, num_envs=8, vectorization_mode="vector_entry_point")
    assert type(venv) is MetaMaze2DVectorEnv
    assert venv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert venv.observation_space.shape == (8, 9) and venv.observation_space.dtype == np.float32
    assert venv.action_space == gymnasium.spaces.MultiDiscrete([4] * 8)
    assert venv.single_action_space == gymnasium.spaces.Discrete(4)
    assert type(gymnasium.make_vec(ENV_ID, num_envs=2)) is MetaMaze2DVectorEnv  # the default mode
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(evoplastic.envs)  # registering again is guarded: no "Overriding" warning
    assert gymnasium.registry[ENV_ID].vector_entry_point.endswith(":MetaMaze2DVectorEnv")
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (8, 9) and obs.dtype == np.float32 and obs in venv.observation_space


def test_bad_arguments_and_options_are_errors(mazes9: TaskSet) -> None:
    with pytest.raises(ValueError, match="encoding"):
        MetaMaze2DEnv(encoding="v3")
    with pytest.raises(ValueError, match="size"):
        MetaMaze2DEnv(size=8)
    with pytest.raises(ValueError, match="render_mode"):
        MetaMaze2DEnv(render_mode="human")
    env = MetaMaze2DEnv()
    with pytest.raises(RuntimeError):
        env.step(0)
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"new_taks": True})
    with pytest.raises(ValueError, match="tasks="):
        env.reset(options={"task_index": 0})
    env = MetaMaze2DEnv(tasks=mazes9)
    with pytest.raises(ValueError, match="task_index"):
        env.reset(options={"task_index": len(mazes9)})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(4)
    venv = MetaMaze2DVectorEnv(num_envs=3)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        venv.step(np.array([0, 1, -1]))
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.array([1, 0, 1])})


# ---------------------------------------------------------------- lifetime semantics (single env)


def rollout(env: MetaMaze2DEnv, actions: list[int]) -> list[tuple]:
    return [env.step(a)[:4] for a in actions]


def test_same_seed_same_maze_and_trajectory() -> None:
    actions = list(np.random.default_rng(0).integers(0, 4, 60))
    a, b = MetaMaze2DEnv(), MetaMaze2DEnv()
    obs_a, info_a = a.reset(seed=123)
    obs_b, info_b = b.reset(seed=123)
    assert a.current_task.digest() == b.current_task.digest()
    assert np.array_equal(obs_a, obs_b) and data_equivalence(info_a, info_b, exact=True)
    traj_a, traj_b = rollout(a, actions), rollout(b, actions)
    assert data_equivalence(traj_a, traj_b, exact=True)
    b.reset(seed=124)
    assert a.current_task.digest() != b.current_task.digest()


def test_reset_keeps_the_maze_seed_and_new_task_change_it(mazes9: TaskSet) -> None:
    env = MetaMaze2DEnv()
    obs0, info0 = env.reset(seed=5)
    digest = env.current_task.digest()
    moved = [info for *_, info in (env.step(a) for a in (DOWN, RIGHT, UP, RIGHT, DOWN, LEFT))]
    assert any(not np.array_equal(i["agent"], info0["start"]) for i in moved)  # it did move
    obs1, info1 = env.reset()  # next rollout of the same lifetime
    assert env.current_task.digest() == digest
    assert np.array_equal(obs1, obs0) and data_equivalence(info1, info0, exact=True)
    _, _, _, _, info = env.step(UP)
    assert info["steps"] == 1  # the step counter restarted
    env.reset(options={"new_task": True})
    assert env.current_task.digest() != digest
    env.reset(seed=6)
    assert env.current_task.digest() != digest

    env = MetaMaze2DEnv(tasks=mazes9)
    _, info = env.reset(options={"task_index": 4})
    assert np.array_equal(env.current_task.walls[0], mazes9.walls[4])
    assert np.array_equal(info["start"], mazes9.start[4]) and info["task_index"] == 4
    drawn = {env.reset(seed=s)[1]["task_index"] for s in range(30)}
    assert drawn <= set(range(len(mazes9))) and len(drawn) > 2  # uniform draws from the set


def test_tasks_by_suite_name_and_file(tmp_path, mazes9: TaskSet) -> None:
    env = MetaMaze2DEnv(tasks="maze15-val")
    env.reset(seed=0)
    assert env.size == 15 and env.current_task.size == 15
    path = tasks_mod.save(mazes9, tmp_path / "t.npz")
    env = MetaMaze2DEnv(tasks=str(path))
    env.reset(options={"task_index": 2})
    assert np.array_equal(env.current_task.walls[0], mazes9.walls[2])


# ---------------------------------------------------------------- terminated / truncated (method §1)


def test_adjacent_goal_terminates_with_reward_099() -> None:
    env = MetaMaze2DEnv(tasks=open_room([(1, 1)], [(1, 2)]), encoding="v1")
    obs, info = env.reset(seed=0)
    # v1: wall +1, free 0, goal -1; the goal is right of the agent (window index 5)
    assert obs.tolist() == [1, 1, 1, 1, 0, -1, 1, 0, 0]
    obs, reward, terminated, truncated, info = env.step(RIGHT)
    assert terminated and not truncated
    assert reward == pytest.approx(0.99)
    assert info["goal_reached"] and info["steps"] == 1 and info["agent"].tolist() == [1, 2]


def test_200_wall_bumps_truncate_with_return_minus_2() -> None:
    env = MetaMaze2DEnv(tasks=open_room([(1, 1)], [(5, 5)]))
    obs0, _ = env.reset(seed=0)
    total = 0.0
    for t in range(1, 201):
        obs, reward, terminated, truncated, info = env.step(UP)  # the border: a bump, still a step
        total += reward
        assert np.array_equal(obs, obs0) and not terminated
        assert truncated == (t == 200)
    assert info["steps"] == 200 and not info["goal_reached"]
    assert total == pytest.approx(-2.0)


# ---------------------------------------------------------------- native vector env


def sync_of_singles(tasks: TaskSet, index: np.ndarray, **kw) -> tuple[SyncVectorEnv, np.ndarray]:
    """Gymnasium's own SAME_STEP vectorisation of single envs, each reset onto task ``index[i]``."""
    sync = SyncVectorEnv([lambda: MetaMaze2DEnv(tasks=tasks, **kw) for _ in index],
                         autoreset_mode=AutoresetMode.SAME_STEP)
    sync.reset(seed=0)
    obs = np.stack([e.reset(options={"task_index": int(i)})[0] for e, i in zip(sync.envs, index)])
    return sync, obs


@pytest.mark.parametrize("which", ["generated9", "rooms"])
def test_vector_step_equals_sync_vector_of_single_envs(which: str, mazes9: TaskSet) -> None:
    if which == "generated9":
        tasks, max_steps = mazes9, 15
    else:  # close goals: terminations happen often under random actions
        tasks = open_room([(1, 1), (3, 3), (5, 5), (2, 4)], [(1, 2), (3, 5), (4, 5), (1, 4)])
        max_steps = 9
    index = np.array([3, 1, 0, 2, 1])
    venv = MetaMaze2DVectorEnv(num_envs=len(index), tasks=tasks, max_steps=max_steps)
    obs, info = venv.reset(options={"task_index": index})
    sync, sync_obs = sync_of_singles(tasks, index, max_steps=max_steps)
    assert np.array_equal(obs, sync_obs)
    assert np.array_equal(info["start"], tasks.start[index]) and info["_start"].all()
    assert np.array_equal(info["task_index"], index)

    rng = np.random.default_rng(1)
    n_term = n_trunc = 0
    for _ in range(120):
        actions = rng.integers(0, 4, len(index))
        got, want = venv.step(actions), sync.step(actions)
        for name, g, w in zip(("obs", "reward", "terminated", "truncated", "infos"), got, want):
            assert data_equivalence(g, w, exact=True), (name, g, w)
        n_term += got[2].sum()
        n_trunc += got[3].sum()
    assert n_trunc > 0  # the autoreset path was exercised
    if which == "rooms":
        assert n_term > 0


def test_vector_same_step_autoreset_restarts_the_same_maze() -> None:
    tasks = open_room([(1, 1), (3, 3)], [(1, 2), (5, 5)])
    venv = MetaMaze2DVectorEnv(num_envs=2, tasks=tasks, max_steps=3)
    obs0, _ = venv.reset(options={"task_index": np.array([0, 1])})
    single = MetaMaze2DEnv(tasks=tasks)
    single.reset(options={"task_index": 0})
    final_single, *_ = single.step(RIGHT)  # sub-env 0 reaches its adjacent goal

    obs, reward, terminated, truncated, infos = venv.step(np.array([RIGHT, RIGHT]))
    assert terminated.tolist() == [True, False] and not truncated.any()
    assert reward == pytest.approx([0.99, -0.01])
    assert np.array_equal(obs[0], obs0[0])  # already the first obs of the next rollout
    assert infos["agent"][1].tolist() == [3, 4]  # sub-env 1 moved on
    assert infos["_final_obs"].tolist() == [True, False] and infos["final_obs"][1] is None
    assert np.array_equal(infos["final_obs"][0], final_single)
    assert infos["final_info"]["goal_reached"].tolist() == [True, False]
    assert infos["final_info"]["agent"][0].tolist() == [1, 2]
    assert infos["_start"].tolist() == [True, False] and infos["start"][0].tolist() == [1, 1]
    assert infos["_steps"].tolist() == [False, True] and infos["steps"][1] == 1
    assert np.array_equal(venv.current_tasks.walls, tasks.walls)  # same mazes after the autoreset

    venv.step(np.array([UP, UP]))
    _, _, terminated, truncated, infos = venv.step(np.array([UP, UP]))
    assert truncated.tolist() == [False, True] and not terminated.any()  # 3-step cap for sub-env 1
    assert infos["final_info"]["steps"][1] == 3
    assert not infos["final_info"]["goal_reached"][1]


def test_vector_reset_semantics() -> None:
    venv = MetaMaze2DVectorEnv(num_envs=4)
    obs0, _ = venv.reset(seed=3)
    walls0 = venv.current_tasks.walls
    twin = MetaMaze2DVectorEnv(num_envs=4)
    twin.reset(seed=3)
    assert np.array_equal(twin.current_tasks.walls, walls0)  # same seed, same mazes

    for a in (DOWN, RIGHT, DOWN, RIGHT):
        venv.step(np.full(4, a))
    obs, info = venv.reset()  # next rollout: same mazes, agents back on start
    assert np.array_equal(obs, obs0) and np.array_equal(venv.current_tasks.walls, walls0)
    assert info["_start"].all()

    venv.step(np.full(4, DOWN))
    venv.step(np.full(4, RIGHT))
    before = venv.step(np.full(4, DOWN))[4]
    mask = np.array([True, False, True, False])
    _, info = venv.reset(seed=9, options={"reset_mask": mask})
    walls1 = venv.current_tasks.walls
    changed = [not np.array_equal(walls1[i], walls0[i]) for i in range(4)]
    assert changed == [True, False, True, False]
    assert info["_start"].tolist() == mask.tolist()
    after = venv.step(np.full(4, UP))[4]
    # masked sub-envs restarted (1 step), the others continued their rollout
    assert after["steps"][mask].tolist() == [1, 1]
    assert np.array_equal(after["steps"][~mask], before["steps"][~mask] + 1)

    venv.reset(options={"new_task": True})
    assert not np.array_equal(venv.current_tasks.walls, walls1)


# ---------------------------------------------------------------- rendering


def test_render_modes() -> None:
    tasks = open_room([(1, 1)], [(5, 5)])
    env = MetaMaze2DEnv(tasks=tasks, render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    lines = text.splitlines()
    assert len(lines) == 7 and lines[1] == "# A . . . . #" and lines[5] == "# . . . . G #"
    env.step(DOWN)
    assert env.render().splitlines()[1:3] == ["# S . . . . #", "# A . . . . #"]

    env = MetaMaze2DEnv(tasks=tasks, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(RIGHT)
    img = env.render()
    assert img.shape == (56, 56, 3) and img.dtype == np.uint8
    wall, free, agent = img[4, 4], img[8 + 4, 8 + 20], img[8 + 4, 16 + 4]
    assert wall.tolist() != free.tolist()
    assert agent.tolist() == [220, 50, 47]  # agent on cell (1, 2)
    assert img[8 + 4, 16 + 0].tolist() == free.tolist()  # the agent square is inset by 1 px

    venv = MetaMaze2DVectorEnv(num_envs=3, render_mode="ansi")
    venv.reset(seed=0)
    frames = venv.render()
    assert len(frames) == 3 and all(f.count("A") == 1 and f.count("G") == 1 for f in frames)
