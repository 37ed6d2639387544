"""Experiment configuration: YAML into typed, frozen dataclasses, strictly checked.

An unknown key (with the closest valid name suggested), a wrong type or an out-of-range value is a
:class:`ConfigError` whose one-line message names the file and the key path, e.g.
``exp.yaml: strategy.sigma0: expected a number, got the string '1e-3' (YAML reads 1e-3 as a string;
write 1.0e-3)``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from evoplastic import limits, yamlio
from evoplastic.errors import UserError


class ConfigError(UserError):
    """A bad configuration: the message is one line and names the file and key path."""


@dataclass(frozen=True)
class ModelConfig:
    id: str = "decprnn-postdn"  # a model id of `evoplastic models`; `<recurrent id>+mask`: structure mask
    hidden: int = 64
    # Fitness cost per unit of active fraction of a masked model: fitness -= frugality *
    # (active hidden units / hidden). Needs a `+mask` model when > 0.
    frugality: float = 0.0


@dataclass(frozen=True)
class LifetimeConfig:
    profile: str = "evoplastic"  # evoplastic | reference-2022-08 (method §5)
    rollouts: int | None = None  # None: the profile's (3 or 8)
    weights: tuple[float, ...] | None = None  # None: method §2's weights for that many rollouts
    # auto: the fused engine where it covers the model, else lock-step; never changes a number
    engine: str = "auto"  # auto | fused | lockstep


@dataclass(frozen=True)
class TasksConfig:
    """Training tasks: fresh mazes every generation, the same for every genome."""

    size: int = 9
    crowd_ratio: float = 0.30
    repeats: int = 4  # lifetimes per task and genome
    # Curriculum (method §4): (from generation, number of tasks), first entry at generation 0.
    schedule: tuple[tuple[int, int], ...] = ((0, 2), (4000, 4), (8000, 8))


@dataclass(frozen=True)
class StrategyConfig:
    name: str = "sepcma"  # sepcma | reference-sepcma
    popsize: int = 360
    sigma0: float = 0.01
    init_std: float = 0.05  # initial mean ~ N(0, init_std^2) (method §4)
    options: dict[str, Any] = field(default_factory=dict)  # strategy-specific, checked by the strategy


@dataclass(frozen=True)
class ValidationConfig:
    suite: str = "maze9-val"  # suite name or task file
    count: int = 1024
    repeats: int = 1
    interval: int = 100  # generations; also at generation 0
    seed: int = 0


@dataclass(frozen=True)
class CheckpointConfig:
    interval: int = 100  # generations
    keep: int = 3  # newest checkpoints kept


@dataclass(frozen=True)
class WorkersConfig:
    backend: str = "ray"  # ray | inprocess
    count: int | None = None  # None: one per CPU of the Ray cluster
    address: str | None = None  # None: start a local Ray; "auto" or HOST:PORT: join a cluster
    timeout: float = 600.0  # seconds before a chunk counts as hung and is resubmitted
    chunks_per_worker: int = 4
    batch: int = 256  # lifetimes in lock step inside a worker
    max_restarts: int = 8  # replacement actors per run


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "experiment"
    seed: int = 0
    generations: int = 100
    model: ModelConfig = field(default_factory=ModelConfig)
    lifetime: LifetimeConfig = field(default_factory=LifetimeConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def science_hash(self) -> str:
        """Hash of everything that changes results: not generations, workers or checkpointing."""
        d = self.to_dict()
        for k in ("generations", "workers", "checkpoint", "name"):
            d.pop(k)
        d["lifetime"].pop("engine")  # every engine computes the same numbers (tests/test_fused.py)
        # Keys added after runs existed are hashed only when set, so those runs still resume.
        if d["model"]["frugality"] == 0.0:
            d["model"].pop("frugality")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def tasks_at(self, generation: int) -> int:
        """Number of training tasks at ``generation`` (0-based), from the curriculum."""
        n = self.tasks.schedule[0][1]
        for start, count in self.tasks.schedule:
            if generation >= start:
                n = count
        return n


# -- range checks: (path, predicate, message) ------------------------------------------------

MAX_STD = 1e6  # sigma0 and init_std: far past any useful weight scale, far below float32 overflow
_F32_MAX = float(np.finfo(np.float32).max)

_CHECKS: list[tuple[str, Any, str]] = [
    ("seed", lambda v: v >= 0, "must be >= 0"),
    ("generations", lambda v: 0 <= v <= limits.MAX_GENERATIONS, f"must be in 0..{limits.MAX_GENERATIONS:,}"),
    ("model.hidden", lambda v: 1 <= v <= limits.MAX_HIDDEN, f"must be in 1..{limits.MAX_HIDDEN} (limit)"),
    ("model.frugality", lambda v: v >= 0, "must be >= 0"),
    ("lifetime.rollouts", lambda v: v is None or v >= 1, "must be >= 1"),
    ("tasks.crowd_ratio", lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    ("tasks.repeats", lambda v: v >= 1, "must be >= 1"),
    ("tasks.schedule", lambda v: len(v) > 0 and v[0][0] == 0 and all(1 <= c <= limits.MAX_TASKS for _, c in v)
     and all(a[0] < b[0] for a, b in zip(v, v[1:])),
     f"must be [[0, n0], [g1, n1], ...] with increasing generations and n in 1..{limits.MAX_TASKS:,}"),
    ("strategy.popsize", lambda v: 2 <= v <= limits.MAX_POPSIZE, f"must be in 2..{limits.MAX_POPSIZE:,} (limit)"),
    ("strategy.sigma0", lambda v: 0 < v <= MAX_STD, f"must be in (0, {MAX_STD:g}]"),
    ("strategy.init_std", lambda v: 0 <= v <= MAX_STD, f"must be in [0, {MAX_STD:g}]"),
    ("validation.count", lambda v: 1 <= v <= limits.MAX_TASKS, f"must be in 1..{limits.MAX_TASKS:,}"),
    ("validation.repeats", lambda v: v >= 1, "must be >= 1"),
    ("validation.seed", lambda v: v >= 0, "must be >= 0"),
    ("validation.interval", lambda v: v >= 1, "must be >= 1"),
    ("checkpoint.interval", lambda v: v >= 1, "must be >= 1"),
    ("checkpoint.keep", lambda v: v >= 1, "must be >= 1"),
    ("workers.backend", lambda v: v in ("ray", "inprocess"), "must be 'ray' or 'inprocess'"),
    ("workers.count", lambda v: v is None or v >= 1, "must be >= 1"),
    ("workers.timeout", lambda v: v > 0, "must be > 0"),
    ("workers.chunks_per_worker", lambda v: v >= 1, "must be >= 1"),
    ("workers.batch", lambda v: 1 <= v <= 65536, "must be in 1..65536"),
    ("workers.max_restarts", lambda v: v >= 0, "must be >= 0"),
]


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _typename(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (lists -> tuples)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, path)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected a list of {len(args)}, got {value!r}")
        return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
        if not math.isfinite(value) or abs(value) > _F32_MAX:
            raise ConfigError(f"{path}: expected a finite number within float32 range (|x| <= "
                              f"{_F32_MAX:.4g}), got {value!r}")
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is int and isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)  # 1e1, 1.0e3: scientific notation for a whole number means that number
    if tp in (str, bool) and isinstance(value, tp):
        return value
    hint = ""
    if tp in (int, float) and isinstance(value, str):
        try:
            float(value)
            hint = " (a quoted number is a string in YAML; remove the quotes)"
        except ValueError:
            pass
    shown = f"the string {value!r}" if isinstance(value, str) else repr(value)
    raise ConfigError(f"{path}: expected {_typename(tp)}, got {shown}{hint}")


def _build(cls: type, data: Any, path: str) -> Any:
    where = f"{path}: " if path else ""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            tip = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(names)}"
            raise ConfigError(f"{sub}: unknown key{tip}")
        kwargs[key] = _coerce(value, hints[key], sub)
    return cls(**kwargs)


def _get(cfg: Any, path: str) -> Any:
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def from_dict(data: dict[str, Any], source: str = "<config>") -> ExperimentConfig:
    """Build and check a config; errors are ``ConfigError('SOURCE: key.path: message')``."""
    try:
        cfg = _build(ExperimentConfig, data, "")
        for path, ok, msg in _CHECKS:
            value = _get(cfg, path)
            if not ok(value):
                raise ConfigError(f"{path}: {msg}, got {value!r}")
        _check_names(cfg)
        _check_resources(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def _check_names(cfg: ExperimentConfig) -> None:
    from evoplastic.lifetime import PROFILES
    from evoplastic.models import DERIVED_IDS, MODEL_IDS
    from evoplastic.strategies import STRATEGIES

    base, plus, _ = cfg.model.id.partition("+")
    base, tied, _ = base.partition("@")
    for path, value, valid in (("model.id", base, MODEL_IDS + DERIVED_IDS),
                               ("lifetime.profile", cfg.lifetime.profile, list(PROFILES)),
                               ("lifetime.engine", cfg.lifetime.engine, ["auto", "fused", "lockstep"]),
                               ("strategy.name", cfg.strategy.name, list(STRATEGIES))):
        if value not in valid:
            close = difflib.get_close_matches(value, valid, n=1)
            tip = f"did you mean '{close[0]}'?" if close else f"valid: {', '.join(valid)}"
            raise ConfigError(f"{path}: unknown {path.split('.')[-1]} {value!r}; {tip}")
    if cfg.lifetime.engine == "fused":
        from evoplastic import fused

        if cfg.model.id not in fused.COVERED or not fused.K.HAVE_NUMBA:
            raise ConfigError(f"lifetime.engine: the fused engine does not run {cfg.model.id} "
                              f"(it runs {', '.join(fused.COVERED)}, with numba); use 'auto' or 'lockstep'")
    if plus or tied or base in DERIVED_IDS:  # a structure mask, or tied rules and their file
        from evoplastic.models import get_model

        try:
            get_model(cfg.model.id, cfg.model.hidden)
        except ValueError as exc:
            raise ConfigError(f"model.id: {exc}") from None
    if cfg.model.frugality and not plus:
        raise ConfigError(f"model.frugality: a frugality cost needs a model with a structure mask; "
                          f"use model.id {cfg.model.id}+mask or frugality 0, got {cfg.model.frugality!r}")
    low = STRATEGIES[cfg.strategy.name].MIN_POPSIZE
    if cfg.strategy.popsize < low:
        raise ConfigError(f"strategy.popsize: {cfg.strategy.name} needs >= {low}, got {cfg.strategy.popsize}")
    try:
        STRATEGIES[cfg.strategy.name].resolve_options(1, cfg.strategy.popsize,
                                                      {**cfg.strategy.options, "segments": None})
    except ValueError as exc:
        raise ConfigError(f"strategy.options: {exc}") from None


def _check_resources(cfg: ExperimentConfig) -> None:
    """Memory a run will take, bounded before any is taken; rollout weights that fit the profile."""
    from evoplastic.lifetime import PROFILES
    from evoplastic.models import get_model
    from evoplastic.results import check_weights

    from evoplastic.envs.generator import check_size

    try:
        check_size(cfg.tasks.size)
    except ValueError as exc:
        raise ConfigError(f"tasks.size: {exc}") from None
    model = get_model(cfg.model.id, cfg.model.hidden)
    population = cfg.strategy.popsize * model.n_gene * 8
    if population > limits.MAX_POPULATION_BYTES:
        raise ConfigError(f"strategy.popsize: {cfg.strategy.popsize:,} genomes of {model.n_gene:,} genes take "
                          f"{limits.gib(population)}, over the limit of {limits.gib(limits.MAX_POPULATION_BYTES)}")
    lifetime = 4 * sum(int(np.prod(s)) for s in model.memory_shapes().values())
    if cfg.workers.batch * lifetime > limits.MAX_BATCH_BYTES:
        raise ConfigError(f"workers.batch: {cfg.workers.batch} lifetimes of {limits.gib(lifetime)} memories exceed "
                          f"the limit of {limits.gib(limits.MAX_BATCH_BYTES)}; lower workers.batch or model.hidden")
    walls = max(n for _, n in cfg.tasks.schedule) * cfg.tasks.size ** 2
    if walls > limits.MAX_TASK_BYTES:
        raise ConfigError(f"tasks.schedule: {limits.gib(walls)} of mazes per generation exceed the limit of "
                          f"{limits.gib(limits.MAX_TASK_BYTES)}")
    if cfg.lifetime.weights is not None:
        rollouts = cfg.lifetime.rollouts or PROFILES[cfg.lifetime.profile].rollouts
        try:
            check_weights(cfg.lifetime.weights, rollouts)
        except ValueError as exc:
            raise ConfigError(f"lifetime.weights: {exc}") from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``key.path=value`` overrides (value parsed as YAML) applied to a raw config mapping."""
    data = json.loads(json.dumps(data))  # deep copy
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        key, text = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a mapping")
        node[parts[-1]] = yamlio.loads(text, f"--set {key}")
    return data


def apply_dict(data: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a plain config mapping) with ``updates`` merged in, mapping by mapping."""
    out = dict(data)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = apply_dict(out[key], value)
        else:
            out[key] = value
    return out


def differing_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Key paths whose values differ between two plain config mappings (``strategy.sigma0``, ...)."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        x, y, path = a.get(key), b.get(key), f"{prefix}{key}"
        if isinstance(x, dict) and isinstance(y, dict):
            out += differing_keys(x, y, path + ".")
        elif x != y:
            out.append(path)
    return out


def load(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment file, apply ``--set`` overrides, build and check it."""
    path = Path(path)
    try:
        data = yamlio.load(path, "config file")
    except UserError as exc:
        raise ConfigError(str(exc)) from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; an experiment config is a mapping of keys "
                          "(see experiments/quickstart.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    data = apply_overrides(data, overrides or [])
    if isinstance(data.get("model"), dict) and isinstance(data["model"].get("id"), str):
        from evoplastic.models.tied import resolve_id

        data["model"]["id"] = resolve_id(data["model"]["id"], path.parent)  # @FILE: beside the config
    return from_dict(data, str(path))


def dump(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
