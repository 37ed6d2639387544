"""The batched lifetime evaluator (method §2): genomes x tasks x repeats, forward passes only.

A lifetime is one genome in one maze for ``R`` rollouts; its memories are zeroed once, at the
start, and carried across rollouts. All lifetimes of a batch run in lock step; a lifetime whose
rollout is over is masked (its memories and its agent do not change) until every rollout of the
batch has ended.

Randomness (so that any split of the lifetimes gives the same numbers): lifetime ``(g, t, k)``
(genome id, task id, repeat) has the key ``rng.keys(seed, g, t, k)``. With ``S = max_steps`` and
``slot(r, i) = r * (S + 1) + i``:

- the "previous action" fed at the first step of rollout ``r`` is ``rng.integers(key, 3 * slot(r, S), 4)``;
- at step ``i`` of rollout ``r``: ``u = rng.uniform(key, 3 * slot(r, i))`` decides greedy vs sampled
  (greedy if ``u < p``), ``v = rng.uniform(key, 3 * slot(r, i) + 1)`` samples the action as the
  first index whose cumulative softmax probability exceeds ``v``.

Action selection (method §2), computed in float64 from the float32 outputs ``y``:
``p = sigmoid(2 y[4])`` (profile ``reference-2022-08``: ``p = 0.5`` in the first rollout); with
probability ``p`` take ``argmax(y[0:4])``, otherwise sample from ``softmax(y[0:4])``.

Input (15, float32): the 9 observation values, one-hot of the previous action, the previous step's
reward and done flag (0 at the first step of a rollout; zeros if the profile does not feed them).

Fitness (method §2): the weighted rollout score averaged over lifetimes, minus ``lambda RMS(theta)``,
and, for a model with a structure mask (``<id>+mask``), minus
``frugality * active_fraction`` (the genome's fraction of active hidden units). Both penalties are
subtracted once, in :func:`fitness_of`, which the runner also uses to assemble a generation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from evoplastic import fused
from evoplastic import rng as crng
from evoplastic.envs.maze import GOAL_REWARD, MAX_STEPS, STEP_REWARD, VectorMaze
from evoplastic.envs.tasks import TaskSet
from evoplastic.models.base import F32, N_IN, Model
from evoplastic.results import WEIGHTS, check_weights, default_weights, summarize

RMS_LAMBDA = 1e-6  # method §2


@dataclass(frozen=True)
class Profile:
    """Evaluation behaviour (method §5): encoding, reward/done inputs, first-rollout p, rollouts."""

    name: str
    encoding: str
    feed_reward_done: bool
    first_rollout_p: float | None
    rollouts: int
    weights: tuple[float, ...]
    doc: str = ""


PROFILES = {
    "evoplastic": Profile("evoplastic", "v2", True, None, 3, WEIGHTS[3],
                          "method §2: v2 observations, reward/done fed, p = sigmoid(2 y4) always"),
    "reference-2022-08": Profile("reference-2022-08", "v1", True, 0.5, 8, WEIGHTS[8],
                                 "method §5: the paper code of 2022-08 (v1, p = 0.5 in rollout 1, 8 rollouts)"),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; profiles: {', '.join(PROFILES)}") from None


@dataclass
class LifetimeResult:
    """Per-genome fitness and per-lifetime, per-rollout records.

    Attributes:
        fitness: (P,) float64, method §2 (weighted score averaged over lifetimes, minus lambda RMS,
            minus the frugality cost of a masked model).
        returns, reached, steps: (P, L, R) with L = tasks x repeats (task-major).
        agent_steps: network + env steps actually taken by live lifetimes.
        active_fraction: (P,) float64, each genome's fraction of active hidden units; None for a
            model without a structure mask.
        memory: with ``evaluate(..., memory=True)``, each lifetime's final memories, name ->
            (P, L, ...) float32 (``Model.memory_state``); else None.
    """

    fitness: np.ndarray
    returns: np.ndarray
    reached: np.ndarray
    steps: np.ndarray
    weights: np.ndarray
    agent_steps: int
    meta: dict[str, Any] = field(default_factory=dict)
    active_fraction: np.ndarray | None = None
    memory: dict[str, np.ndarray] | None = None

    def summary(self, index: int = 0, **meta: Any) -> dict[str, Any]:
        """The results schema for one genome."""
        n_tasks = self.meta.get("tasks", self.returns.shape[1])
        out = summarize(self.returns[index], self.reached[index], self.steps[index], self.weights,
                        n_tasks, **self.meta)
        out["fitness"] = float(self.fitness[index])
        if self.active_fraction is not None:
            out["active_fraction"] = float(self.active_fraction[index])
        out.update(meta)
        return out


def select_actions(y: np.ndarray, key: np.ndarray, counter: int, p_fixed: float | None) -> np.ndarray:
    """method §2 action selection for outputs y (B, 5) float32; draws ``counter`` and ``counter + 1``.

    Compiled (the fused engine's own :func:`evoplastic.fused.select_action`, row by row) when
    numba is available, so both engines take the same exponentials; numpy otherwise.
    """
    if fused.K.HAVE_NUMBA:
        out = np.empty(len(y), np.int64)
        fused.select_rows(np.ascontiguousarray(y, F32), np.asarray(key, np.uint64), counter,
                          -1.0 if p_fixed is None else float(p_fixed), out)
        return out
    y = y.astype(np.float64)
    p = np.full(len(y), p_fixed) if p_fixed is not None else 1.0 / (1.0 + np.exp(-2.0 * y[:, 4]))
    greedy = crng.uniform(key, counter) < p
    logits = y[:, :4] - y[:, :4].max(1, keepdims=True)
    probs = np.exp(logits)
    cum = np.cumsum(probs, axis=1)
    v = crng.uniform(key, counter + 1) * cum[:, -1]
    sampled = np.minimum((cum <= v[:, None]).sum(1), 3)
    return np.where(greedy, np.argmax(y[:, :4], axis=1), sampled)


# Compact the network's batch when at least max(COMPACT_MIN, COMPACT_FRACTION * current rows)
# lifetimes have finished their episode: the gather and write-back cost about one step.
COMPACT_MIN = 64
COMPACT_FRACTION = 0.5


class _Active:
    """The rows of a batch the network still runs on, and their params and memories.

    ``mem`` (full batch) is the master copy; ``mem_cur`` holds the memories of ``idx`` while they
    step. Compaction writes them back and gathers the live subset: finished lifetimes stop
    costing network work, and their memories (pending updates included) are kept intact.
    """

    def __init__(self, params: dict[str, np.ndarray], mem: dict[str, np.ndarray]) -> None:
        self.params, self.mem = params, mem
        self.idx: np.ndarray | None = None  # None: all rows
        self.p_cur, self.mem_cur = params, mem

    def write_back(self) -> None:
        if self.idx is not None:
            for k, v in self.mem_cur.items():
                if k not in self.mem:
                    self.mem[k] = np.zeros((len(next(iter(self.params.values()))),) + v.shape[1:], v.dtype)
                self.mem[k][self.idx] = v
        self.idx, self.p_cur, self.mem_cur = None, self.params, self.mem

    def compact(self, live: np.ndarray) -> None:
        """Keep only the rows where ``live`` (full batch) is True."""
        self.write_back()
        self.idx = np.flatnonzero(live)
        self.p_cur = {k: v[self.idx] for k, v in self.params.items()}
        self.mem_cur = {k: v[self.idx] for k, v in self.mem.items()}


def _run_batch(model: Model, params: dict[str, np.ndarray], maze: VectorMaze, key: np.ndarray,
               rollouts: int, profile: Profile,
               on_step: Callable[[int, VectorMaze], None] | None = None, memory: bool = False,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, dict[str, np.ndarray] | None]:
    """All rollouts of one batch of lifetimes in lock step. Returns (L, R) arrays, agent-steps
    and, with ``memory``, the final memories (``Model.memory_state``; else None).

    ``on_step(r, maze)``, if given, is called after every env step of rollout ``r`` (an observer:
    it must not change ``maze``).
    """
    b, s = maze.batch, maze.max_steps
    prepare = getattr(model, "prepare", None)
    if prepare is not None:
        params = prepare(params)
    act = _Active(params, model.init_memory(b, params))
    x = np.zeros((b, N_IN), F32)
    rows = np.arange(b)
    returns, reached, steps = np.zeros((b, rollouts)), np.zeros((b, rollouts), bool), np.zeros((b, rollouts), np.int32)
    agent_steps = 0
    for r in range(rollouts):
        act.write_back()
        obs = maze.reset()
        prev = crng.integers(key, 3 * (r * (s + 1) + s), 4)
        reward = np.zeros(b, F32)
        done = np.zeros(b, F32)  # the previous step's done flag: 0 while the episode runs
        p_fixed = profile.first_rollout_p if r == 0 else None
        i = 0
        while True:
            live = ~maze.done
            n_live = int(live.sum())
            if n_live == 0:
                break
            n_cur = b if act.idx is None else len(act.idx)
            if n_cur - n_live >= max(COMPACT_MIN, int(n_cur * COMPACT_FRACTION)):
                act.compact(live)
                n_cur = n_live
            agent_steps += n_live
            x[:, :9] = obs
            x[:, 9:13] = 0.0
            x[rows, 9 + prev] = 1.0
            if profile.feed_reward_done:
                x[:, 13], x[:, 14] = reward, done
            if act.idx is None:
                y = model.step(act.p_cur, act.mem_cur, x, live if n_live < b else None)
                action = select_actions(y, key, 3 * (r * (s + 1) + i), p_fixed)
            else:
                live_cur = live[act.idx]
                y = model.step(act.p_cur, act.mem_cur, x[act.idx], live_cur if n_live < n_cur else None)
                action = prev.copy()  # finished lifetimes do not move whatever they get
                action[act.idx] = select_actions(y, key[act.idx], 3 * (r * (s + 1) + i), p_fixed)
            obs, reward, _ = maze.step(action, check=False)
            if on_step is not None:
                on_step(r, maze)
            prev = np.where(live, action, prev)
            i += 1
        returns[:, r], reached[:, r], steps[:, r] = maze.episode_return(), maze.reached, maze.steps
    final = None
    if memory:
        act.write_back()
        final = model.memory_state(params, act.mem)
    return returns, reached, steps, agent_steps, final


def fitness_of(returns: np.ndarray, weights: np.ndarray, genomes: np.ndarray,
               rms_lambda: float = RMS_LAMBDA, frugality: float = 0.0,
               active_fraction: np.ndarray | None = None) -> np.ndarray:
    """method §2 fitness (P,): the weighted rollout score averaged over lifetimes, minus lambda RMS,
    minus ``frugality * active_fraction`` (structure masks pay for their active units).

    ``returns`` (P, L, R), ``weights`` (R,), ``genomes`` (P, N), ``active_fraction`` (P,) (needed
    when ``frugality`` is not 0: see ``Model.active_fraction``).
    """
    theta = np.asarray(genomes, dtype=np.float64).reshape(len(returns), -1)
    rms = np.sqrt((theta ** 2).mean(1))
    fitness = (returns @ weights / weights.sum()).mean(1) - rms_lambda * rms
    if frugality:
        if active_fraction is None:
            raise ValueError(f"a frugality cost ({frugality:g}) needs a model with a structure mask "
                             f"(model id ending in '+mask')")
        fitness = fitness - frugality * np.asarray(active_fraction, np.float64)
    return fitness


ENGINES = ("auto", "fused", "lockstep")


@dataclass(frozen=True)
class EvalSpec:
    """Everything that defines an evaluation, besides the genomes, tasks, repeats and seed.

    One frozen value used by :func:`evaluate`, the runner's workers, training, ``eval`` and
    ``bench``: a new setting is one field here.

    Attributes:
        model, hidden: the model id (``evoplastic models``) and its hidden size.
        profile: evaluation behaviour (:data:`PROFILES`).
        rollouts, weights: rollouts per lifetime and their score weights (None: the profile's).
        frugality: cost per unit of active fraction of a masked model (paid once in the fitness).
        max_steps: episode length cap (method §1: 200).
        rms_lambda: the method §2 RMS penalty.
        engine: ``auto`` (fused where the model is covered, see :mod:`evoplastic.fused`),
            ``fused`` (an error for a model it does not cover) or ``lockstep``.
        batch: lifetimes run in lock step at a time by the lock-step engine (memory and cache
            size; never the result).
    """

    model: str
    hidden: int = 64
    profile: str = "evoplastic"
    rollouts: int | None = None
    weights: tuple[float, ...] | None = None
    frugality: float = 0.0
    max_steps: int = MAX_STEPS
    rms_lambda: float = RMS_LAMBDA
    engine: str = "auto"
    batch: int = 256

    def __post_init__(self) -> None:
        get_profile(self.profile)
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.batch < 1 or self.max_steps < 1:
            raise ValueError(f"batch and max_steps must be >= 1, got {self.batch} and {self.max_steps}")
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))

    def get_model(self) -> Model:
        from evoplastic.models import get_model

        return get_model(self.model, self.hidden)

    def resolved(self) -> tuple[Profile, int, np.ndarray]:
        """(profile, rollouts, weights (R,) float64) with the profile's defaults filled in."""
        prof = get_profile(self.profile)
        rollouts = prof.rollouts if self.rollouts is None else int(self.rollouts)
        weights = self.weights
        if weights is None:
            weights = prof.weights if rollouts == prof.rollouts else default_weights(rollouts)
        return prof, rollouts, check_weights(weights, rollouts)

    def engine_for(self, model: Model, tracing: bool = False) -> str:
        """``fused`` or ``lockstep``: what :func:`evaluate` runs ``model`` on."""
        if self.engine == "lockstep" or (self.engine == "auto" and (tracing or not fused.covers(model))):
            return "lockstep"
        if not fused.covers(model):
            why = "numba is not available" if not fused.K.HAVE_NUMBA else "it does not cover this model"
            raise ValueError(f"engine 'fused' cannot run {model.id}: {why} (covered: "
                             f"{', '.join(fused.COVERED)}); use engine 'auto' or 'lockstep'")
        if tracing:
            raise ValueError("on_step tracing runs on the lock-step engine; use engine 'auto' or 'lockstep'")
        return "fused"


def evaluate(
    spec: EvalSpec | Model,
    genomes: np.ndarray,
    tasks: TaskSet,
    repeats: int = 1,
    seed: int = 0,
    *,
    genome_ids: np.ndarray | None = None,
    task_ids: np.ndarray | None = None,
    on_step: Callable[[np.ndarray, int, VectorMaze], None] | None = None,
    memory: bool = False,
    **settings: Any,
) -> LifetimeResult:
    """Run every genome on every task ``repeats`` times and score it (method §2).

    Args:
        spec: the evaluation (:class:`EvalSpec`); or a model, with any :class:`EvalSpec` fields
            as keyword ``settings`` (``evaluate(model, g, ts, rollouts=3, engine="lockstep")``).
        genomes: (P, N) float32 (or (N,)).
        genome_ids, task_ids: global ids for seeding (default: positions), so that evaluating a
            slice of the genomes or tasks elsewhere gives the same numbers.
        on_step: an observer called after every env step as ``on_step(lifetimes, r, maze)``:
            ``lifetimes`` (B,) are the flat lifetime indices ``g * T * repeats + t * repeats + k``
            of the maze's rows, ``r`` the rollout and ``maze`` the :class:`VectorMaze` (its
            ``agent``, ``steps``, ``done``, ``reached``), which it must not change. Used by
            :mod:`evoplastic.trajectory`; runs on the lock-step engine.
        memory: also return every lifetime's final memories (``result.memory``: name ->
            (P, T * repeats, ...) float32, as ``Model.memory_state`` defines them), to compare
            continuous state across engines and splits, or to analyse what a lifetime learnt.

    Raises:
        ValueError: unknown profile or engine, bad weights, genomes of the wrong length, a
            frugality cost for a model without a mask, ``engine="fused"`` for a model it does
            not cover.
    """
    if not isinstance(spec, EvalSpec):  # a model (or an object standing in for one)
        model = spec
        spec = EvalSpec(model.id, model.hidden, **settings)
    else:
        if settings:
            raise TypeError(f"settings {sorted(settings)} go into the EvalSpec, not evaluate()")
        model = spec.get_model()
    prof, rollouts, w = spec.resolved()
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    engine = spec.engine_for(model, tracing=on_step is not None)
    active = model.active_fraction(genomes)
    if spec.frugality and active is None:
        raise ValueError(f"a frugality cost ({spec.frugality:g}) needs a model with a structure mask; "
                         f"{model.id} has none (use {model.id}+mask)")
    named = model.unpack(genomes)
    p = len(next(iter(named.values())))
    genome_ids = np.arange(p) if genome_ids is None else np.asarray(genome_ids)
    task_ids = np.arange(len(tasks)) if task_ids is None else np.asarray(task_ids)
    if genome_ids.shape != (p,) or task_ids.shape != (len(tasks),):
        raise ValueError("genome_ids must have one id per genome and task_ids one per task")
    per = len(tasks) * repeats
    total = p * per
    life = np.arange(total)
    g_of, t_of, k_of = life // per, (life % per) // repeats, life % repeats
    keys = crng.keys(seed, genome_ids[g_of], task_ids[t_of], k_of)
    if engine == "fused":
        maze = VectorMaze(tasks.walls, tasks.start, tasks.goal, None, prof.encoding, spec.max_steps,
                          validate=False)
        stp, rea, agent_steps, final = fused.run(model, named, g_of, t_of, keys, maze, rollouts,
                                                 prof.first_rollout_p, prof.feed_reward_done, memory)
        ret = rea * GOAL_REWARD + STEP_REWARD * stp.astype(np.float64)  # VectorMaze.episode_return
        out = [ret, rea, stp]
    else:
        out = [np.zeros((total, rollouts)), np.zeros((total, rollouts), bool), np.zeros((total, rollouts), np.int32)]
        agent_steps, parts = 0, []
        for start in range(0, total, spec.batch):
            sl = slice(start, min(start + spec.batch, total))
            params = {k: v[g_of[sl]] for k, v in named.items()}
            maze = VectorMaze(tasks.walls, tasks.start, tasks.goal, t_of[sl], prof.encoding, spec.max_steps,
                              validate=False)
            observe = None if on_step is None else functools.partial(on_step, life[sl])
            ret, rea, stp, n, part = _run_batch(model, params, maze, keys[sl], rollouts, prof, observe, memory)
            for dst, src in zip(out, (ret, rea, stp)):
                dst[sl] = src
            agent_steps += n
            parts.append(part)
        final = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]} if memory else None
    returns, reached, steps = (a.reshape(p, per, rollouts) for a in out)
    if final is not None:
        final = {k: v.reshape((p, per) + v.shape[1:]) for k, v in final.items()}
    fitness = fitness_of(returns, w, genomes, spec.rms_lambda, spec.frugality, active)
    meta = {"model": model.id, "hidden": model.hidden, "profile": prof.name, "seed": int(seed),
            "repeats": int(repeats), "tasks": len(tasks), "suite": tasks.name, "engine": engine}
    if active is not None:
        meta["frugality"] = float(spec.frugality)
    return LifetimeResult(fitness, returns, reached, steps, w, agent_steps, meta, active, final)
