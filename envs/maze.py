"""The vectorized MetaMaze2D maze (method §1, "Dynamics" and "Observation").

State is numpy arrays with a leading batch axis, one row per running episode ("lifetime slot").
Several slots may share one maze: ``task_index`` maps each slot to a row of the task arrays, so a
population of genomes facing the same tasks stores every grid once.

Internally a maze is a padded ``(n+2) x (n+2)`` grid, flattened, and the agent is a flat index into
it; a move is one add and one gather, an observation one gather of the 3x3 window. The pad ring is
"outside the grid" (observed as a wall, method §1). Agents never reach it because the border is wall.
"""

from __future__ import annotations

import numpy as np

ENCODINGS = ("v1", "v2")
MAX_STEPS = 200
STEP_REWARD = -0.01
GOAL_REWARD = 1.0
N_ACTIONS = 4  # 0: i-1, 1: i+1, 2: j-1, 3: j+1
OBS_SIZE = 9

# v1 codes (method §1): wall +1, free 0, goal -1, outside +1; v2 is the exact negation.
_WALL, _FREE, _GOAL, _OUTSIDE = 1, 0, -1, 1


def check_tasks(walls: np.ndarray, start: np.ndarray, goal: np.ndarray) -> None:
    """Raise ValueError with a clear message unless the arrays form valid mazes.

    Args:
        walls: (T, n, n), 1 = wall, 0 = free; the border must be wall.
        start, goal: (T, 2) integer (row, column) of free cells.
    """
    if walls.ndim != 3 or walls.shape[1] != walls.shape[2]:
        raise ValueError(f"walls must have shape (tasks, n, n), got {walls.shape}")
    t, n, _ = walls.shape
    if start.shape != (t, 2) or goal.shape != (t, 2):
        raise ValueError(f"start and goal must have shape ({t}, 2), got {start.shape} and {goal.shape}")
    if not np.isin(walls, (0, 1)).all():
        raise ValueError("walls must hold only 0 (free) and 1 (wall)")
    border = np.concatenate([walls[:, 0], walls[:, -1], walls[:, :, 0], walls[:, :, -1]], axis=1)
    if not border.all():
        bad = int(np.flatnonzero(~border.all(1))[0])
        raise ValueError(f"task {bad}: the maze border must be all walls")
    for name, cell in (("start", start), ("goal", goal)):
        if (cell < 1).any() or (cell > n - 2).any():
            raise ValueError(f"{name} cells must lie inside the border (1..{n - 2})")
        on_wall = walls[np.arange(t), cell[:, 0], cell[:, 1]] != 0
        if on_wall.any():
            raise ValueError(f"task {int(np.flatnonzero(on_wall)[0])}: the {name} cell is a wall")


def check_solvable(walls: np.ndarray, start: np.ndarray, goal: np.ndarray) -> None:
    """Raise ValueError naming the first task whose goal is the start or cannot be reached from it.

    A flood fill from every start at once over the open cells (4-neighbours), one step per
    iteration, until no task's reachable set grows. Arrays as for :func:`check_tasks`, which must
    have passed.
    """
    t = len(walls)
    rows = np.arange(t)
    same = (start == goal).all(1)
    if same.any():
        raise ValueError(f"task {int(np.flatnonzero(same)[0])}: the start and the goal are the same cell "
                         f"{tuple(int(x) for x in start[same][0])}")
    open_ = walls == 0
    seen = np.zeros_like(open_)
    seen[rows, start[:, 0], start[:, 1]] = True
    while True:
        grown = seen.copy()
        grown[:, 1:] |= seen[:, :-1]
        grown[:, :-1] |= seen[:, 1:]
        grown[:, :, 1:] |= seen[:, :, :-1]
        grown[:, :, :-1] |= seen[:, :, 1:]
        grown &= open_
        if (grown == seen).all():
            break
        seen = grown
    cut_off = ~seen[rows, goal[:, 0], goal[:, 1]]
    if cut_off.any():
        i = int(np.flatnonzero(cut_off)[0])
        raise ValueError(f"task {i}: the goal {tuple(int(x) for x in goal[i])} cannot be reached from the start "
                         f"{tuple(int(x) for x in start[i])} ({int(cut_off.sum())} such task(s))")


class VectorMaze:
    """A batch of maze episodes stepped in lock step, with no Python loop over the batch.

    State (public, read-only for callers): ``pos`` (B,) flat padded index of the agent, ``steps``
    (B,) actions taken this episode, ``done`` (B,) episode over, ``reached`` (B,) goal entered.
    ``agent`` gives (B, 2) (row, column) cells.

    Args:
        walls: (T, n, n) uint8/bool, 1 = wall.
        start, goal: (T, 2) int cells.
        task_index: (B,) int rows of the task arrays, one per slot; default ``arange(T)``.
        encoding: "v1" or "v2" (method §1).
        max_steps: episode length cap (method §1: 200).
    """

    def __init__(
        self,
        walls: np.ndarray,
        start: np.ndarray,
        goal: np.ndarray,
        task_index: np.ndarray | None = None,
        encoding: str = "v2",
        max_steps: int = MAX_STEPS,
        validate: bool = True,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        # int64 cells: (row + 1) * (n + 2) overflows int16 for large mazes.
        walls, start, goal = np.asarray(walls), np.asarray(start, np.int64), np.asarray(goal, np.int64)
        if validate:
            check_tasks(walls, start, goal)
        t, n, _ = walls.shape
        self.n, self.n_tasks, self.encoding, self.max_steps = n, t, encoding, int(max_steps)
        self.task_index = np.arange(t) if task_index is None else np.asarray(task_index, np.int64)
        if self.task_index.ndim != 1 or (self.task_index < 0).any() or (self.task_index >= t).any():
            raise ValueError(f"task_index must be a 1-D array of rows in 0..{t - 1}")
        w = n + 2
        self._w = w
        codes = np.full((t, w, w), _OUTSIDE, dtype=np.int8)
        codes[:, 1:-1, 1:-1] = np.where(walls != 0, _WALL, _FREE)
        rows = np.arange(t)
        codes[rows, goal[:, 0] + 1, goal[:, 1] + 1] = _GOAL
        sign = 1.0 if encoding == "v1" else -1.0
        self._view = (sign * codes.reshape(-1) + 0.0).astype(np.float32)  # + 0.0: no -0.0 in v2
        self._blocked = codes.reshape(-1) == _WALL  # outside is never reached (border is wall)
        base = self.task_index * (w * w)
        self._start = base + (start[self.task_index, 0] + 1) * w + start[self.task_index, 1] + 1
        self._goal = base + (goal[self.task_index, 0] + 1) * w + goal[self.task_index, 1] + 1
        self._moves = np.array([-w, w, -1, 1], dtype=np.int64)
        self._window = ((np.arange(3)[:, None] - 1) * w + np.arange(3)[None, :] - 1).reshape(-1)
        b = len(self.task_index)
        self.batch = b
        self.pos = self._start.copy()
        self.steps = np.zeros(b, dtype=np.int32)
        self.done = np.zeros(b, dtype=bool)
        self.reached = np.zeros(b, dtype=bool)

    @property
    def agent(self) -> np.ndarray:
        """(B, 2) int (row, column) of each agent."""
        local = self.pos - self.task_index * (self._w * self._w)
        return np.stack(np.divmod(local, self._w), axis=1) - 1

    def observe(self) -> np.ndarray:
        """(B, 9) float32: the 3x3 window around each agent, row-major, in this maze's encoding."""
        return self._view[self.pos[:, None] + self._window]

    def reset(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Put the agents of ``mask`` (B,) bool (default: all) back on their start cell.

        Returns the (B, 9) observation of every slot.
        """
        if mask is None:
            mask = np.ones(self.batch, dtype=bool)
        self.pos[mask] = self._start[mask]
        self.steps[mask] = 0
        self.done[mask] = False
        self.reached[mask] = False
        return self.observe()

    def step(self, actions: np.ndarray, check: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply one action per slot (method §1 dynamics). Slots already done do not move.

        Args:
            actions: (B,) int in 0..3.
            check: validate shape and range (the lifetime evaluator, whose actions are always
                valid, skips it).

        Returns:
            obs (B, 9) float32, reward (B,) float32 (0 for slots already done), done (B,) bool.
        """
        if check:
            actions = np.asarray(actions)
            if actions.shape != (self.batch,) or actions.dtype.kind not in "iu":
                raise ValueError(f"actions must be ({self.batch},) integers, got {actions.dtype} {actions.shape}")
            if actions.size and (actions.min() < 0 or actions.max() >= N_ACTIONS):
                raise ValueError(f"actions must be in 0..{N_ACTIONS - 1}")
        live = ~self.done
        target = self.pos + self._moves[actions]
        move = live & ~self._blocked[target]  # a wall bump leaves the agent in place, costs the step
        np.copyto(self.pos, target, where=move)
        self.steps += live
        hit = live & (self.pos == self._goal)
        self.reached |= hit
        reward = np.where(live, np.float32(STEP_REWARD), np.float32(0.0)).astype(np.float32)
        reward[hit] += np.float32(GOAL_REWARD)
        self.done |= hit | (self.steps >= self.max_steps)
        return self.observe(), reward, self.done.copy()

    def episode_return(self) -> np.ndarray:
        """(B,) float64 return of each slot's episode so far: ``reached - 0.01 * steps`` (exact)."""
        return self.reached * GOAL_REWARD + STEP_REWARD * self.steps.astype(np.float64)
