"""Task sets: mazes with start and goal, saved as ``.npz``, named suites, reference task files.

A task set is three arrays (``walls`` (T, n, n) uint8, ``start`` and ``goal`` (T, 2) int16) and a
metadata dict. On disk it is an ``.npz`` holding those arrays and ``meta`` (a JSON string), read
with ``allow_pickle=False``. Suites (method §7) are generated on demand from fixed seeds; generation is
deterministic, so a suite is the same bytes on every machine (a test pins their hashes).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic import limits, safenpz
from evoplastic.atomic import write_atomic
from evoplastic.envs import generator
from evoplastic.envs.maze import check_solvable, check_tasks
from evoplastic.errors import UserError

FORMAT = "evoplastic-tasks"
FORMAT_VERSION = 1


class TaskIndexError(UserError, IndexError):
    """A task index outside the set (an IndexError a user can cause from the command line)."""


@dataclass(frozen=True)
class SuiteSpec:
    """A named, reproducible task suite."""

    size: int
    crowd_ratio: float
    count: int
    seed: int
    doc: str


# method §7 test suites (2,048 tasks) and validation suites (1,024 tasks, other seeds).
_TEST = {
    "maze9": (9, 0.30, "9x9, the paper's small training/test size"),
    "maze15": (15, 0.35, "15x15, the paper's main size"),
    "maze21": (21, 0.35, "21x21, out-of-distribution for 15x15 training"),
    "maze15-crowded": (15, 0.45, "15x15 crowded (about a perfect maze)"),
    "maze15-spacious": (15, 0.15, "15x15 spacious"),
}
SUITES: dict[str, SuiteSpec] = {}
for _k, (_name, (_n, _cr, _doc)) in enumerate(_TEST.items()):
    SUITES[_name] = SuiteSpec(_n, _cr, 2048, 20220000 + _k, _doc + " (test)")
    SUITES[_name + "-val"] = SuiteSpec(_n, _cr, 1024, 20221000 + _k, _doc + " (validation)")


@dataclass(frozen=True, eq=False)
class TaskSet:
    """Mazes of one size with their start and goal cells.

    Attributes:
        walls: (T, n, n) uint8, 1 = wall.
        start: (T, 2) int16 (row, column).
        goal: (T, 2) int16.
        meta: name/source, size, crowd_ratio, seed, generator_version, ...
    """

    walls: np.ndarray
    start: np.ndarray
    goal: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_tasks(self.walls, self.start, self.goal)

    @property
    def size(self) -> int:
        return int(self.walls.shape[1])

    def __len__(self) -> int:
        return int(self.walls.shape[0])

    @property
    def name(self) -> str:
        return str(self.meta.get("name", "tasks"))

    def head(self, count: int | None) -> "TaskSet":
        """The first ``count`` tasks (all of them if ``count`` is None)."""
        if count is None or count >= len(self):
            return self
        if count < 1:
            raise UserError(f"count must be >= 1, got {count}")
        meta = dict(self.meta, count=int(count))
        return TaskSet(self.walls[:count], self.start[:count], self.goal[:count], meta)

    def slice(self, first: int, stop: int | None) -> "TaskSet":
        """Tasks ``first`` to ``stop - 1`` (0-based; ``stop`` None: to the end), named ``NAME[first:stop]``.

        Raises:
            TaskIndexError: an empty or out-of-range slice.
        """
        end = len(self) if stop is None else stop
        name = f"{self.name}[{first}:{'' if stop is None else stop}]"
        if not 0 <= first < end <= len(self):
            raise TaskIndexError(f"{name}: {len(self)} tasks, so a slice must satisfy 0 <= first < stop <= {len(self)}")
        meta = {k: v for k, v in self.meta.items() if k != "count"}
        meta["name"] = name
        return TaskSet(self.walls[first:end], self.start[first:end], self.goal[first:end], meta)

    def digest(self) -> str:
        """sha256 of the task arrays (not the metadata): equal digests, equal tasks."""
        h = hashlib.sha256()
        for a in (self.walls, self.start, self.goal):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def render(self, index: int) -> str:
        """Task ``index`` as text: ``#`` wall, ``.`` free, ``S`` start, ``G`` goal."""
        if not 0 <= index < len(self):
            raise TaskIndexError(f"task index {index} out of range 0..{len(self) - 1}")
        grid = np.where(self.walls[index] != 0, "#", ".").astype("<U1")
        grid[tuple(self.start[index])] = "S"
        grid[tuple(self.goal[index])] = "G"
        return "\n".join(" ".join(row) for row in grid)

    def summary(self) -> dict[str, Any]:
        """Counts and statistics for ``tasks show``."""
        m = self.size - 2
        interior = self.walls[:, 1:-1, 1:-1].reshape(len(self), -1).mean(1)
        dist = np.sqrt(((self.goal.astype(float) - self.start) ** 2).sum(1))
        return {
            **{k: v for k, v in self.meta.items() if k != "count"},
            "tasks": len(self),
            "size": self.size,
            "interior_cells": m * m,
            "wall_fraction_mean": round(float(interior.mean()), 4),
            "wall_fraction_min": round(float(interior.min()), 4),
            "wall_fraction_max": round(float(interior.max()), 4),
            "start_goal_distance_mean": round(float(dist.mean()), 3),
            "digest": self.digest()[:16],
        }


def generate(count: int, size: int, crowd_ratio: float, seed: int, name: str | None = None) -> TaskSet:
    """A new task set from the generator (deterministic in its arguments)."""
    walls, start, goal = generator.generate(count, size, crowd_ratio, seed)
    meta = {
        "name": name or f"maze{size}-c{crowd_ratio:g}-s{seed}",
        "size": size,
        "crowd_ratio": float(crowd_ratio),
        "seed": int(seed),
        "count": int(count),
        "generator_version": generator.GENERATOR_VERSION,
    }
    return TaskSet(walls, start, goal, meta)


def suite(name: str) -> TaskSet:
    """The named suite (see :data:`SUITES`), generated deterministically."""
    try:
        spec = SUITES[name]
    except KeyError:
        raise UserError(f"unknown task suite {name!r}; known suites: {', '.join(SUITES)}") from None
    ts = generate(spec.count, spec.size, spec.crowd_ratio, spec.seed, name=name)
    return ts


def save(tasks: TaskSet, path: str | Path) -> Path:
    """Write ``tasks`` to ``path`` (.npz) atomically (temp file + rename), once every task is
    checked to be solvable (UserError naming the first task that is not)."""
    path = Path(path)
    try:
        check_solvable(tasks.walls, tasks.start, tasks.goal)
    except ValueError as exc:
        raise UserError(f"{path}: not written: {exc}") from None
    meta = dict(tasks.meta, format=FORMAT, format_version=FORMAT_VERSION, count=len(tasks))
    arrays = dict(walls=tasks.walls.astype(np.uint8), start=tasks.start.astype(np.int16),
                  goal=tasks.goal.astype(np.int16), meta=np.array(json.dumps(meta, sort_keys=True)))
    return write_atomic(path, lambda f: np.savez_compressed(f, **arrays))


def load_npz(path: str | Path) -> TaskSet:
    """Read a task set written by :func:`save`; a clear ValueError if it is not one."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such task file")
    z = safenpz.read(path, "task file", limits.MAX_TASK_BYTES)
    missing = {"walls", "start", "goal", "meta"} - set(z)
    if missing:
        raise UserError(f"{path}: not an evoplastic task file (missing {sorted(missing)})")
    try:
        meta = json.loads(str(z["meta"]))
    except ValueError as exc:
        raise UserError(f"{path}: corrupt task file (metadata: {exc})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: corrupt task file (metadata is not a JSON object)")
    if meta.get("format") != FORMAT or meta.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: unsupported task file format {meta.get('format')!r} "
                         f"version {meta.get('format_version')!r}")
    return _checked(z["walls"], z["start"], z["goal"], dict(meta, source=str(path)), path)


def _checked(walls: np.ndarray, start: np.ndarray, goal: np.ndarray, meta: dict[str, Any],
             path: Path) -> TaskSet:
    """A task set read from ``path``, every task checked to be a solvable maze."""
    try:
        if len(walls) > limits.MAX_TASKS:
            raise UserError(f"{len(walls)} tasks exceed the limit of {limits.MAX_TASKS:,}")
        ts = TaskSet(walls, start, goal, meta)
        check_solvable(ts.walls, ts.start, ts.goal)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    return ts


def load_reference(path: str | Path) -> TaskSet:
    """Read a task file of the paper's code (method §6) with the restricted unpickler."""
    from evoplastic import safepickle

    path = Path(path)
    raw = safepickle.load_one(path)
    if not isinstance(raw, list) or not raw or not all(isinstance(d, dict) for d in raw):
        raise UserError(f"{path}: a reference task file holds a non-empty list of dicts")
    try:
        walls = np.stack([np.asarray(d["cell_walls"]) for d in raw]).astype(np.uint8)
        start = np.array([tuple(d["start"]) for d in raw], dtype=np.int16)
        goal = np.array([tuple(d["goal"]) for d in raw], dtype=np.int16)
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: malformed reference task ({type(exc).__name__}: {exc}); each "
                         "task needs 'start', 'goal' and an n x n 'cell_walls'") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = {"name": path.stem, "source": str(path), "source_sha256": digest, "format": "reference-pickle",
            "size": int(walls.shape[1]), "crowd_ratio": None, "seed": None}
    return _checked(walls, start, goal, meta, path)


_SLICE = re.compile(r"(.+)\[(\d*):(\d*)\]")


def load(spec: str | Path) -> TaskSet:
    """Resolve a suite name, a fetched paper task set (``paper-maze9``, see
    :mod:`evoplastic.reference_files`), an ``.npz`` task file or a reference ``.dat``/pickle task file.
    Any of them may end in a slice, ``NAME[first:stop]`` (0-based, stop excluded, either may be
    left out): ``maze9-val[512:]`` is the validation tasks a run with ``validation.count: 512``
    never saw.

    Raises:
        FileNotFoundError: no such suite or file, or a paper task set that has not been fetched.
        TaskIndexError: an empty or out-of-range slice.
    """
    from evoplastic import reference_files

    text = str(spec)
    m = _SLICE.fullmatch(text)
    if m and text not in SUITES and not Path(text).exists():
        first, stop = int(m[2] or 0), (int(m[3]) if m[3] else None)
        return load(m[1]).slice(first, stop)
    if text in SUITES:
        return suite(text)
    path = reference_files.lookup(text, "tasks") or Path(text)
    if not path.exists():
        papers = ", ".join(f.name for f in reference_files.FILES.values() if f.kind == "tasks")
        raise FileNotFoundError(f"no task suite or file {text!r}; suites: {', '.join(SUITES)}; "
                                f"paper task sets (after `evoplastic reference fetch`): {papers}; "
                                "files: .npz or .dat")
    if path.suffix == ".npz":
        return load_npz(path)
    return load_reference(path)
