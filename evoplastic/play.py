"""`evoplastic play GENOME`: watch one lifetime of a saved genome through the Gymnasium env's renderer.

The lifetime is computed by :func:`evoplastic.trajectory.trace`, i.e. by the same evaluator as
training and ``evoplastic eval`` (same seeds: the lifetime of task ``i`` is the one ``eval`` scores
for task ``i`` of that task set). Its path is then replayed step by step in
:class:`evoplastic.envs.gym_env.MetaMaze2DEnv`, whose ``render()`` draws each frame (``ansi`` text
or ``rgb_array`` images, written as a GIF). The replay checks that the env gives back the same
returns, so what is shown is what was scored.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

# (row, column) change -> action (method §1: 0 up, 1 down, 2 left, 3 right)
_MOVES = {(-1, 0): 0, (1, 0): 1, (0, -1): 2, (0, 1): 3}


@dataclass(frozen=True)
class Lifetime:
    """One replayed lifetime.

    Attributes:
        frames: per rollout, the rendered frames (``steps + 1`` each, the start first).
        returns, steps: (R,) per rollout; reached: (R,) bool.
    """

    frames: list[list]
    returns: np.ndarray
    steps: np.ndarray
    reached: np.ndarray


def actions_of(path: np.ndarray, walls: np.ndarray) -> list[int]:
    """Actions that move an agent along ``path`` ((steps + 1, 2) cells): a step that stays put was
    a bump into a wall, replayed as a move into a wall next to it.

    Raises:
        ValueError: two consecutive cells are not neighbours, or a stay has no wall beside it.
    """
    out = []
    for a, b in zip(path[:-1], path[1:]):
        d = (int(b[0] - a[0]), int(b[1] - a[1]))
        if d in _MOVES:
            out.append(_MOVES[d])
            continue
        bumps = [m for (di, dj), m in _MOVES.items() if d == (0, 0) and walls[a[0] + di, a[1] + dj]]
        if not bumps:
            raise ValueError(f"cannot replay a step from {tuple(a)} to {tuple(b)}")
        out.append(bumps[0])
    return out


def replay(model, genome: np.ndarray, tasks, index: int, profile: str, seed: int = 0,
           rollouts: int | None = None, render_mode: str = "ansi") -> Lifetime:
    """Trace lifetime ``index`` of ``tasks`` and replay it in the Gymnasium env with ``render_mode``.

    Raises:
        IndexError: ``index`` is not a task of ``tasks``.
        RuntimeError: the env's returns differ from the evaluator's (a bug, never expected).
    """
    from evoplastic import lifetime, trajectory
    from evoplastic.envs.gym_env import MetaMaze2DEnv
    from evoplastic.envs.tasks import TaskSet

    if not 0 <= index < len(tasks):
        raise IndexError(f"task {index} does not exist: {tasks.name} has tasks 0..{len(tasks) - 1}")
    one = TaskSet(tasks.walls[[index]], tasks.start[[index]], tasks.goal[[index]], dict(tasks.meta))
    prof = lifetime.get_profile(profile)
    tr = trajectory.trace(model, genome, one, rollouts=rollouts, seed=seed, profile=profile,
                          task_ids=np.array([index]))
    env = MetaMaze2DEnv(tasks=one, encoding=prof.encoding, render_mode=render_mode)
    frames, returns = [], []
    env.reset(options={"task_index": 0})
    for r, path in enumerate(tr.paths[0]):
        if r:
            env.reset()  # next rollout, same maze
        shots, total = [env.render()], 0.0
        for a in actions_of(path, one.walls[0]):
            _, reward, terminated, truncated, _ = env.step(a)
            total += reward
            shots.append(env.render())
        frames.append(shots)
        returns.append(total)
    if not np.allclose(returns, tr.returns[0]):
        raise RuntimeError(f"replay returns {returns} differ from the evaluator's {tr.returns[0].tolist()}")
    return Lifetime(frames, tr.returns[0], tr.steps[0], tr.reached[0])


def show_ansi(life: Lifetime, stream: TextIO, delay: float, animate: bool) -> None:
    """Animate the frames on a terminal (``delay`` seconds apart), else print each rollout's last frame."""
    for r, shots in enumerate(life.frames):
        summary = (f"rollout {r + 1}/{len(life.frames)}: return {life.returns[r]:+.2f} in {life.steps[r]} steps"
                   + (", goal reached" if life.reached[r] else ", goal not reached"))
        if animate:
            for k, frame in enumerate(shots):
                stream.write(f"\033[H\033[J{frame}\nrollout {r + 1}, step {k}\n")
                stream.flush()
                time.sleep(delay)
            stream.write(summary + "\n")
            time.sleep(10 * delay)
        else:
            stream.write(f"{shots[-1]}\n{summary}\n\n")


def write_gif(life: Lifetime, path: Path, fps: float, scale: int = 4) -> Path:
    """All rollouts' frames as one GIF (``scale`` x the env's 8 px cells), a pause between rollouts.

    Raises:
        ImportError: Pillow is missing (it comes with the ``plots`` extra's matplotlib).
    """
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("--render gif needs Pillow: pip install 'evoplastic[plots]'") from None
    images, durations = [], []
    for shots in life.frames:
        for k, frame in enumerate(shots):
            big = np.asarray(frame).repeat(scale, axis=0).repeat(scale, axis=1)
            images.append(Image.fromarray(big))
            durations.append(int(1000 / fps) * (10 if k == len(shots) - 1 else 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def default_profile(source) -> str:
    """The profile a genome was trained with: its run's config, the paper's for paper-genome."""
    from evoplastic import config as cfglib

    if source.run_dir is not None:
        return cfglib.load(source.run_dir / "config.yaml").lifetime.profile
    return "reference-2022-08" if source.label == "paper-genome" else "evoplastic"


def default_tasks(source) -> str:
    """The run's validation suite, the paper's 9x9 tasks for paper-genome, else maze9."""
    from evoplastic import config as cfglib

    if source.run_dir is not None:
        return cfglib.load(source.run_dir / "config.yaml").validation.suite
    return "paper-maze9" if source.label == "paper-genome" else "maze9"


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
