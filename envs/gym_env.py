"""Gymnasium front ends of the MetaMaze2D maze (method §1), built on :class:`VectorMaze`.

Meta-learning semantics: a maze is the *task of a lifetime*, an episode is one *rollout* in it.
``reset(seed=...)`` reseeds the environment and draws a new maze; ``reset()`` without a seed starts
the next rollout in the same maze (the agent goes back to the start cell); the options
``{"new_task": True}`` and ``{"task_index": i}`` draw a new maze or pick row ``i`` of ``tasks``.

- :class:`MetaMaze2DEnv`: one maze (a :class:`VectorMaze` of batch 1).
- :class:`MetaMaze2DVectorEnv`: a native numpy vector env, one :class:`VectorMaze` of ``num_envs``
  slots, same-step autoreset into the next rollout of the same maze.

Both are registered as ``evoplastic/MetaMaze2D-v0`` by ``import evoplastic.envs``.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from evoplastic.envs import generator
from evoplastic.envs import tasks as tasks_mod
from evoplastic.envs.maze import ENCODINGS, MAX_STEPS, N_ACTIONS, OBS_SIZE, VectorMaze
from evoplastic.envs.tasks import TaskSet

RENDER_MODES = ["ansi", "rgb_array"]
CELL_PX = 8
# rgb_array palette: free, wall, start, goal; the agent is drawn on top.
_PALETTE = np.array([[235, 235, 235], [40, 40, 40], [100, 149, 237], [60, 179, 113]], np.uint8)
_AGENT_RGB = np.array([220, 50, 47], np.uint8)

TasksArg = TaskSet | str | os.PathLike | None


class _TaskSource:
    """Where new mazes come from: the generator, or uniform draws / explicit rows of a TaskSet."""

    def __init__(self, size: int, crowd_ratio: float, tasks: TasksArg) -> None:
        if tasks is not None and not isinstance(tasks, TaskSet):
            tasks = tasks_mod.load(tasks)
        self.tasks: TaskSet | None = tasks
        if tasks is None:
            generator.check_size(size)
            if not 0.0 <= float(crowd_ratio) < 1.0:
                raise ValueError(f"crowd_ratio must be in [0, 1), got {crowd_ratio!r}")
        self.size = int(size) if tasks is None else tasks.size  # a TaskSet fixes the size
        self.crowd_ratio = float(crowd_ratio)

    def draw(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]:
        """``count`` new mazes: walls (count, n, n), start/goal (count, 2) int64, index (count,).

        The index is the row of ``tasks``, or -1 for a generated maze.
        """
        if self.tasks is None:
            walls, start, goal = generator.generate_block(rng, count, self.size, self.crowd_ratio)
            # int64 cells: VectorMaze's flat index arithmetic overflows int16 for sizes >= 181.
            return walls, start.astype(np.int64), goal.astype(np.int64), np.full(count, -1, np.int64)
        return self.take(rng.integers(len(self.tasks), size=count))

    def take(self, index: np.ndarray) -> tuple[np.ndarray, ...]:
        """Rows ``index`` (k,) of ``tasks``, same layout as :meth:`draw`."""
        if self.tasks is None:
            raise ValueError("the 'task_index' option needs an env built with tasks=...")
        index = np.asarray(index)
        if not np.issubdtype(index.dtype, np.integer):
            raise ValueError(f"task_index must be integer, got dtype {index.dtype}")
        if (index < 0).any() or (index >= len(self.tasks)).any():
            raise ValueError(f"task_index must be in 0..{len(self.tasks) - 1}, got {index.tolist()}")
        t = self.tasks
        start, goal = t.start[index].astype(np.int64), t.goal[index].astype(np.int64)
        return t.walls[index], start, goal, index.astype(np.int64)


def _check_args(encoding: str, max_steps: int, render_mode: str | None) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    if int(max_steps) != max_steps or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")


def _options(options: dict[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; known: {list(allowed)}")
    return opts


def render_text(walls: np.ndarray, start: np.ndarray, goal: np.ndarray, agent: np.ndarray) -> str:
    """One maze as text, as :meth:`TaskSet.render` (``# . S G``) plus the agent as ``A``."""
    grid = np.where(walls != 0, "#", ".").astype("<U1")
    grid[tuple(start)] = "S"
    grid[tuple(goal)] = "G"
    grid[tuple(agent)] = "A"
    return "\n".join(" ".join(row) for row in grid)


def render_rgb(
    walls: np.ndarray, start: np.ndarray, goal: np.ndarray, agent: np.ndarray, px: int = CELL_PX
) -> np.ndarray:
    """One maze as a (n*px, n*px, 3) uint8 image; the agent is a red square inset by one pixel."""
    code = (walls != 0).astype(np.int64)
    code[tuple(start)] = 2
    code[tuple(goal)] = 3
    img = _PALETTE[code].repeat(px, axis=0).repeat(px, axis=1)
    i, j = int(agent[0]) * px, int(agent[1]) * px
    img[i + 1 : i + px - 1, j + 1 : j + px - 1] = _AGENT_RGB
    return img


class MetaMaze2DEnv(gymnasium.Env):
    """One MetaMaze2D maze (method §1) as a Gymnasium env; the maze is the task of a lifetime.

    Observation: (9,) float32, the 3x3 window around the agent (``encoding`` v1 or v2).
    Actions: Discrete(4), ``0: i-1, 1: i+1, 2: j-1, 3: j+1``. Reward -0.01 per step, +1 on
    entering the goal. ``terminated`` = goal reached; ``truncated`` = ``max_steps`` taken without it.

    Args:
        size: odd maze size >= 7 of generated mazes (ignored when ``tasks`` is given).
        crowd_ratio: wall density of generated mazes (method §1; ignored when ``tasks`` is given).
        encoding: "v1" or "v2" observation encoding.
        max_steps: episode (rollout) length cap.
        tasks: a :class:`TaskSet`, or a suite name / task file path for :func:`tasks.load`; new
            mazes are then drawn uniformly from it instead of generated.
        render_mode: None, "ansi" (text) or "rgb_array" (``8 px`` per cell).

    Reset: ``reset(seed=s)`` reseeds ``np_random`` and draws a new maze; ``reset()`` keeps the maze
    and puts the agent back on its start cell (next rollout); ``options={"new_task": True}`` draws a
    new maze; ``options={"task_index": i}`` uses row ``i`` of ``tasks``. The reset info holds
    ``start``, ``goal`` ((2,) int64) and ``task_index`` (-1 for a generated maze); the step info
    ``steps`` (actions this rollout), ``goal_reached`` and ``agent`` ((2,) int64 cell).
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 10}

    def __init__(
        self,
        size: int = 9,
        crowd_ratio: float = 0.30,
        encoding: str = "v2",
        max_steps: int = MAX_STEPS,
        tasks: TasksArg = None,
        render_mode: str | None = None,
    ) -> None:
        _check_args(encoding, max_steps, render_mode)
        self._source = _TaskSource(size, crowd_ratio, tasks)
        self.size, self.encoding, self.max_steps = self._source.size, encoding, int(max_steps)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-1.0, 1.0, (OBS_SIZE,), np.float32)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self._maze: VectorMaze | None = None
        # walls (1, n, n), start (1, 2), goal (1, 2), index (1,), as _TaskSource returns them
        self._task: tuple[np.ndarray, ...] = ()

    @property
    def current_task(self) -> TaskSet:
        """The maze of the current lifetime as a one-task :class:`TaskSet`."""
        if self._maze is None:
            raise RuntimeError("no maze yet: call reset() first")
        walls, start, goal, index = self._task
        return TaskSet(walls, start, goal, {"name": "current", "task_index": int(index[0])})

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        opts = _options(options, ("new_task", "task_index"))
        if "task_index" in opts:
            self._set_task(self._source.take(np.array([opts["task_index"]])))
        elif seed is not None or opts.get("new_task", False) or self._maze is None:
            self._set_task(self._source.draw(self.np_random, 1))
        obs = self._maze.reset()[0]
        _, start, goal, index = self._task
        info = {"start": start[0].copy(), "goal": goal[0].copy(), "task_index": int(index[0])}
        return obs, info

    def _set_task(self, task: tuple[np.ndarray, ...]) -> None:
        walls, start, goal, _ = task
        # Tasks come from the generator or a validated TaskSet, so skip re-validation.
        self._maze = VectorMaze(walls, start, goal, encoding=self.encoding,
                                max_steps=self.max_steps, validate=False)
        self._task = task

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._maze is None:
            raise RuntimeError("call reset() before step()")
        a = int(action)
        if not 0 <= a < N_ACTIONS:
            raise ValueError(f"action must be in 0..{N_ACTIONS - 1}, got {action!r}")
        maze = self._maze
        obs, reward, done = maze.step(np.array([a]))
        terminated = bool(maze.reached[0])
        truncated = bool(done[0]) and not terminated
        info = {"steps": int(maze.steps[0]), "goal_reached": terminated, "agent": maze.agent[0]}
        return obs[0], float(reward[0]), terminated, truncated, info

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called with render_mode=None; pass render_mode=...")
            return None
        if self._maze is None:
            raise RuntimeError("call reset() before render()")
        walls, start, goal, _ = self._task
        draw = render_text if self.render_mode == "ansi" else render_rgb
        return draw(walls[0], start[0], goal[0], self._maze.agent[0])


def _masked(info: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """Vector info in Gymnasium's layout: values where ``mask`` (else 0) plus a ``_key`` mask each.

    Empty if ``mask`` selects nobody (as ``VectorEnv._add_info`` never adds the key then).
    """
    out: dict[str, np.ndarray] = {}
    if not mask.any():
        return out
    for key, value in info.items():
        m = mask.reshape(-1, *([1] * (value.ndim - 1)))
        out[key] = np.where(m, value, np.zeros((), value.dtype))
        out[f"_{key}"] = mask.copy()
    return out


class MetaMaze2DVectorEnv(VectorEnv):
    """``num_envs`` MetaMaze2D mazes stepped as one numpy :class:`VectorMaze` (no per-env loop).

    Lifetime semantics: each sub-env holds one maze (the task of its lifetime); its episodes are
    the rollouts of that lifetime. ``reset(seed=s)`` reseeds ``np_random`` and draws new mazes for
    all sub-envs; ``reset()`` keeps the mazes and puts every agent back on its start cell. Options:
    ``reset_mask`` ((num_envs,) bool) restricts the reset to those sub-envs (the others keep their
    maze and position); ``new_task: True`` draws new mazes without reseeding; ``task_index`` (int or
    (num_envs,) ints) uses those rows of ``tasks``. The first reset always draws for all sub-envs.

    Autoreset: ``metadata["autoreset_mode"] = AutoresetMode.SAME_STEP``. When a sub-env's rollout ends
    (goal reached: ``terminated``; ``max_steps`` without it: ``truncated``), the observation returned
    by that same ``step()`` is already the first observation of the next rollout in the *same* maze
    (agent on the start cell). The last observation of the ended rollout is in
    ``infos["final_obs"]`` ((num_envs,) object array, ``None`` elsewhere, mask ``infos["_final_obs"]``)
    and its step info in ``infos["final_info"]`` (mask ``infos["_final_info"]``); the ended sub-envs'
    reset info (``start``, ``goal``, ``task_index``) is merged into the top-level infos, and the step
    keys ``steps``, ``goal_reached``, ``agent`` cover the sub-envs that did not end. This is exactly
    the layout of ``SyncVectorEnv(..., autoreset_mode=SAME_STEP)`` over :class:`MetaMaze2DEnv`.
    Rewards are float64, like the single env's Python floats.

    Args: as :class:`MetaMaze2DEnv`, plus ``num_envs``. ``reset(seed=s)`` seeds one generator for
    the whole batch (not ``s + i`` per sub-env as ``SyncVectorEnv`` does).
    """

    metadata = {
        "autoreset_mode": AutoresetMode.SAME_STEP,
        "render_modes": RENDER_MODES,
        "render_fps": 10,
    }

    def __init__(
        self,
        num_envs: int = 1,
        size: int = 9,
        crowd_ratio: float = 0.30,
        encoding: str = "v2",
        max_steps: int = MAX_STEPS,
        tasks: TasksArg = None,
        render_mode: str | None = None,
    ) -> None:
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        _check_args(encoding, max_steps, render_mode)
        self._source = _TaskSource(size, crowd_ratio, tasks)
        self.num_envs = int(num_envs)
        self.size, self.encoding, self.max_steps = self._source.size, encoding, int(max_steps)
        self.render_mode = render_mode
        self.single_observation_space = spaces.Box(-1.0, 1.0, (OBS_SIZE,), np.float32)
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._maze: VectorMaze | None = None
        n = self.size
        self._walls = np.zeros((self.num_envs, n, n), np.uint8)
        self._start = np.zeros((self.num_envs, 2), np.int64)
        self._goal = np.zeros((self.num_envs, 2), np.int64)
        self._task_index = np.full(self.num_envs, -1, np.int64)

    @property
    def current_tasks(self) -> TaskSet:
        """The sub-envs' mazes as a :class:`TaskSet` of ``num_envs`` tasks (row i = sub-env i)."""
        if self._maze is None:
            raise RuntimeError("no mazes yet: call reset() first")
        meta = {"name": "current", "task_index": self._task_index.tolist()}
        return TaskSet(self._walls.copy(), self._start.copy(), self._goal.copy(), meta)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        opts = _options(options, ("reset_mask", "new_task", "task_index"))
        mask = self._reset_mask(opts.get("reset_mask"))
        if "task_index" in opts:
            index = np.broadcast_to(np.asarray(opts["task_index"]), (self.num_envs,))
            self._set_tasks(mask, self._source.take(index[mask]))
        elif seed is not None or opts.get("new_task", False) or self._maze is None:
            self._set_tasks(mask, self._source.draw(self.np_random, int(mask.sum())))
        obs = self._maze.reset(mask)
        return obs, _masked(self._reset_info(), mask)

    def _reset_mask(self, mask: Any) -> np.ndarray:
        if mask is None or self._maze is None:
            return np.ones(self.num_envs, dtype=bool)
        shape_ok = isinstance(mask, np.ndarray) and mask.shape == (self.num_envs,)
        if not shape_ok or mask.dtype != np.bool_:
            raise ValueError(f"options['reset_mask'] must be a ({self.num_envs},) bool numpy array")
        if not mask.any():
            raise ValueError("options['reset_mask'] must select at least one sub-env")
        return mask.copy()

    def _set_tasks(self, mask: np.ndarray, task: tuple[np.ndarray, ...]) -> None:
        """Give the sub-envs of ``mask`` new mazes; rebuild the VectorMaze, keeping the others' state."""
        self._walls[mask], self._start[mask], self._goal[mask], self._task_index[mask] = task
        old = self._maze
        self._maze = VectorMaze(self._walls, self._start, self._goal, encoding=self.encoding,
                                max_steps=self.max_steps, validate=False)
        if old is not None and not mask.all():
            # VectorMaze has no partial rebuild. Slot i stays task row i, so flat positions remain valid.
            keep = ~mask
            for name in ("pos", "steps", "done", "reached"):
                getattr(self._maze, name)[keep] = getattr(old, name)[keep]

    def _reset_info(self) -> dict[str, np.ndarray]:
        return {"start": self._start.copy(), "goal": self._goal.copy(),
                "task_index": self._task_index.copy()}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env; ended rollouts restart in the same maze within this call (SAME_STEP).

        Args:
            actions: (num_envs,) int in 0..3.

        Returns:
            obs (num_envs, 9) float32, rewards (num_envs,) float64, terminated and truncated
            (num_envs,) bool, infos (see the class docstring).
        """
        if self._maze is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"actions must be ({self.num_envs},) integers, got {a.dtype} {a.shape}")
        if (a < 0).any() or (a >= N_ACTIONS).any():
            raise ValueError(f"actions must be in 0..{N_ACTIONS - 1}, got {a.tolist()}")
        maze = self._maze
        obs, reward, done = maze.step(a)  # every slot is live here: ended ones were reset last call
        terminated = maze.reached.copy()
        truncated = done & ~terminated
        step_info = {"steps": maze.steps.astype(np.int64), "goal_reached": terminated.copy(),
                     "agent": maze.agent}
        infos = _masked(step_info, ~done)
        if done.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            final_obs[done] = np.fromiter(obs[done], dtype=object, count=int(done.sum()))
            obs = maze.reset(done)
            infos.update(_masked(self._reset_info(), done))
            infos.update(final_obs=final_obs, _final_obs=done.copy(),
                         final_info=_masked(step_info, done), _final_info=done.copy())
        return obs, reward.astype(np.float64), terminated, truncated, infos

    def render(self) -> tuple[str | np.ndarray, ...] | None:
        """One frame per sub-env (render is not the hot path, so a loop is fine here)."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called with render_mode=None; pass render_mode=...")
            return None
        if self._maze is None:
            raise RuntimeError("call reset() before render()")
        draw = render_text if self.render_mode == "ansi" else render_rgb
        agent = self._maze.agent
        return tuple(draw(self._walls[i], self._start[i], self._goal[i], agent[i])
                     for i in range(self.num_envs))
