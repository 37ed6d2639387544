"""Where lifetimes run: in this process, or on Ray worker actors. The only module that imports Ray.

A population evaluation is cut into *units* (a slice of genomes x a slice of tasks). Every unit
carries the global genome and task ids, and lifetime seeds derive from (seed, genome id, task id,
repeat) (see :mod:`evoplastic.lifetime`), so the result does not depend on the backend, the number
of workers or which worker ran which unit.

Ray: actors are created once per run (one per CPU by default) and hold the model; each call sends
the task set by reference (``ray.put`` once per evaluation) and one chunk of genomes. A dead actor
(process killed, node lost) or a hung one (no answer within ``timeout`` s) loses nothing: its unit
goes back to the queue with the same ids and seeds, a replacement actor is started if the cluster
has a free CPU, and the event is logged. If no actor is left, :class:`NoWorkersError` is raised
and the training loop checkpoints and stops.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from evoplastic import lifetime
from evoplastic.envs.tasks import TaskSet
from evoplastic.errors import NoWorkersError, UserError
from evoplastic.lifetime import EvalSpec  # what every unit of an evaluation shares (sent to each actor once)

log = logging.getLogger("evoplastic.runner")

THREAD_VARS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "NUMBA_NUM_THREADS": "1"}
# Seconds a replacement worker may take to start (imports, loading or compiling the kernels: 12-30 s
# from an empty numba cache on a 2-core machine) before it is dropped; the unit timeout, counted
# from when it has started, applies if longer.
STARTUP_TIMEOUT = 300.0




@dataclass(frozen=True)
class Unit:
    """Genomes [g0, g1) x tasks [t0, t1) of one evaluation."""

    g0: int
    g1: int
    t0: int
    t1: int


def run_unit(spec: EvalSpec, genomes: np.ndarray, tasks: TaskSet, unit: Unit, repeats: int,
             seed: int) -> dict[str, Any]:
    """Evaluate one unit; ``genomes`` are the unit's rows only, ``tasks`` the whole set."""
    t_start = time.perf_counter()
    sub = TaskSet(tasks.walls[unit.t0:unit.t1], tasks.start[unit.t0:unit.t1], tasks.goal[unit.t0:unit.t1])
    res = lifetime.evaluate(spec, genomes, sub, repeats, seed, genome_ids=np.arange(unit.g0, unit.g1),
                            task_ids=np.arange(unit.t0, unit.t1))
    return {"returns": res.returns, "reached": res.reached, "steps": res.steps, "weights": res.weights,
            "agent_steps": res.agent_steps, "seconds": time.perf_counter() - t_start, "pid": os.getpid(),
            "engine": res.meta["engine"]}


def make_units(n_genomes: int, n_tasks: int, pieces: int) -> list[Unit]:
    """Split genomes into ``pieces`` chunks; with fewer genomes than pieces, split tasks too."""
    pieces = max(1, pieces)
    g_parts = min(n_genomes, pieces)
    t_parts = min(n_tasks, max(1, pieces // g_parts))
    g_cuts = np.linspace(0, n_genomes, g_parts + 1).round().astype(int)
    t_cuts = np.linspace(0, n_tasks, t_parts + 1).round().astype(int)
    return [Unit(int(g_cuts[i]), int(g_cuts[i + 1]), int(t_cuts[j]), int(t_cuts[j + 1]))
            for i in range(g_parts) for j in range(t_parts)]


def assemble(spec: EvalSpec, genomes: np.ndarray, n_tasks: int, repeats: int, units: list[Unit],
             parts: list[dict[str, Any]]) -> lifetime.LifetimeResult:
    """Put unit results back into (P, T * repeats, R) arrays and compute the method §2 fitness."""
    r = parts[0]["returns"].shape[2]
    shape = (len(genomes), n_tasks * repeats, r)
    returns, reached, steps = np.zeros(shape), np.zeros(shape, bool), np.zeros(shape, np.int32)
    for u, part in zip(units, parts):
        cols = slice(u.t0 * repeats, u.t1 * repeats)
        returns[u.g0:u.g1, cols] = part["returns"]
        reached[u.g0:u.g1, cols] = part["reached"]
        steps[u.g0:u.g1, cols] = part["steps"]
    w = parts[0]["weights"]
    active = spec.get_model().active_fraction(genomes)
    fitness = lifetime.fitness_of(returns, w, genomes, spec.rms_lambda, spec.frugality, active)
    meta = {"model": spec.model, "hidden": spec.hidden, "profile": spec.profile, "repeats": repeats,
            "tasks": n_tasks, "worker_seconds": float(sum(p["seconds"] for p in parts)),
            "engine": parts[0]["engine"]}
    if active is not None:
        meta["frugality"] = float(spec.frugality)
    return lifetime.LifetimeResult(fitness, returns, reached, steps, w,
                                   int(sum(p["agent_steps"] for p in parts)), meta, active)


class InProcessBackend:
    """Runs the units one after another in this process (tests, debugging, one-core runs)."""

    name = "inprocess"
    workers = 1

    def __init__(self, spec: EvalSpec, chunks_per_worker: int = 1) -> None:
        self.spec, self.chunks = spec, chunks_per_worker

    def evaluate(self, genomes: np.ndarray, tasks: TaskSet, repeats: int, seed: int) -> lifetime.LifetimeResult:
        units = make_units(len(genomes), len(tasks), self.chunks)
        parts = [run_unit(self.spec, genomes[u.g0:u.g1], tasks, u, repeats, seed) for u in units]
        return assemble(self.spec, genomes, len(tasks), repeats, units, parts)

    def close(self) -> None:
        pass


def _actor_class():
    import ray

    class Worker:
        """One worker process: holds the evaluation spec and runs units."""

        def __init__(self, spec: EvalSpec) -> None:
            self.spec = spec
            model = spec.get_model()  # warm-up: imports, numba compilation
            from dataclasses import replace

            from evoplastic.envs import tasks as tasklib
            lifetime.evaluate(replace(spec, max_steps=4), np.zeros((1, model.n_gene), np.float32),
                              tasklib.generate(1, 7, 0.3, seed=0))

        def run(self, genomes: np.ndarray, tasks: TaskSet, unit: Unit, repeats: int, seed: int) -> dict:
            return run_unit(self.spec, genomes, tasks, unit, repeats, seed)

        def pid(self) -> int:
            return os.getpid()

    return ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(Worker)


class RayBackend:
    """Worker actors on a local or remote Ray cluster.

    Args:
        workers: number of actors (None: one per CPU of the cluster; a local instance has as many
            CPUs as this process may use, see :mod:`evoplastic.localray`).
        address: None starts a local Ray instance; "auto" or "HOST:PORT" joins a cluster.
        timeout: seconds after which a unit counts as hung: its actor is killed and replaced.
        max_restarts: replacement actors started over the backend's life.
    """

    name = "ray"

    def __init__(self, spec: EvalSpec, workers: int | None = None, address: str | None = None,
                 timeout: float = 600.0, chunks_per_worker: int = 4, max_restarts: int = 8,
                 init_kwargs: dict[str, Any] | None = None) -> None:
        from evoplastic import localray

        local = localray.init_kwargs(address, workers)  # before importing Ray (token-auth mode)
        import ray

        self.spec, self.timeout, self.chunks = spec, float(timeout), chunks_per_worker
        self.restarts_left = max_restarts
        self.events: list[str] = []
        init_ray(address, **local, **(init_kwargs or {}))
        self._cls = _actor_class()
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.actors = [self._new_actor() for _ in range(n)]
        ray.get([a.pid.remote() for a in self.actors])  # wait until all are up (and warmed)
        self.workers = n

    def _new_actor(self):
        return self._cls.options(runtime_env={"env_vars": THREAD_VARS}).remote(self.spec)

    def _event(self, text: str) -> None:
        self.events.append(text)
        log.warning(text)

    def _lose(self, dead, idle: list, starting: dict) -> None:
        """``dead`` is gone: drop it, and put its replacement (if one starts) among the starting:
        it gets work once it has answered, so its start-up (imports, loading the compiled kernels)
        is not counted against its first unit's timeout."""
        n = len(self.actors)
        self._replace(dead)
        idle[:] = [a for a in idle if a is not dead]
        starting.pop(dead, None)
        if len(self.actors) == n:
            new = self.actors[-1]
            starting[new] = (new.pid.remote(), time.monotonic())

    def _replace(self, dead) -> None:
        """Drop ``dead``; start a replacement if restarts are left and a CPU is free."""
        import ray

        self.actors = [a for a in self.actors if a is not dead]
        try:
            ray.kill(dead)
        except Exception:  # already gone
            pass
        # Total CPUs of the live nodes, not available ones: the dead actor's CPU is released
        # with a delay. An actor that still cannot be placed shows up as hung and is dropped.
        free = ray.cluster_resources().get("CPU", 0.0) - len(self.actors)
        if self.restarts_left > 0 and free >= 1:
            self.restarts_left -= 1
            self.actors.append(self._new_actor())
            self._event(f"started a replacement worker ({len(self.actors)} workers)")
        else:
            self._event(f"no replacement worker (restarts left {self.restarts_left}, free CPUs {free:g}); "
                        f"going on with {len(self.actors)}")

    def evaluate(self, genomes: np.ndarray, tasks: TaskSet, repeats: int, seed: int) -> lifetime.LifetimeResult:
        import ray
        from ray.exceptions import RayActorError, WorkerCrashedError

        units = make_units(len(genomes), len(tasks), self.chunks * len(self.actors))
        tasks_ref = ray.put(tasks)
        queue, parts = deque(range(len(units))), [None] * len(units)
        pending: dict[Any, tuple[int, Any, float]] = {}
        starting: dict[Any, tuple[Any, float]] = {}  # replacement actor -> (its pid() call, since)
        idle = list(self.actors)
        while queue or pending:
            if not self.actors:
                raise NoWorkersError("every Ray worker actor died and none could be restarted; "
                                     "check the cluster (ray status) and resume the run")
            while queue and idle:
                i, actor = queue.popleft(), idle.pop()
                u = units[i]
                ref = actor.run.remote(genomes[u.g0:u.g1], tasks_ref, u, repeats, seed)
                pending[ref] = (i, actor, time.monotonic())
            waiting = list(pending) + [r for r, _ in starting.values()]
            ready, _ = ray.wait(waiting, num_returns=1, timeout=min(5.0, self.timeout))
            for actor, (ref, _) in list(starting.items()):
                if ref in ready:
                    del starting[actor]
                    try:
                        ray.get(ref)
                        idle.append(actor)
                    except (RayActorError, WorkerCrashedError) as exc:
                        self._event(f"a replacement worker died while starting ({type(exc).__name__})")
                        self._lose(actor, idle, starting)
            for ref in ready:
                if ref not in pending:
                    continue
                i, actor, _ = pending.pop(ref)
                try:
                    parts[i] = ray.get(ref)
                    idle.append(actor)
                except (RayActorError, WorkerCrashedError) as exc:
                    self._event(f"worker died running genomes {units[i].g0}-{units[i].g1 - 1} "
                                f"({type(exc).__name__}); resubmitting them")
                    queue.appendleft(i)
                    self._lose(actor, idle, starting)
            now = time.monotonic()
            for ref, (i, actor, t0) in list(pending.items()):
                if now - t0 > self.timeout:
                    self._event(f"worker hung for {now - t0:.0f} s on genomes {units[i].g0}-{units[i].g1 - 1}"
                                f" (timeout {self.timeout:g} s); killing it and resubmitting them")
                    del pending[ref]
                    queue.appendleft(i)
                    self._lose(actor, idle, starting)
            limit = max(self.timeout, STARTUP_TIMEOUT)
            for actor, (_, t0) in list(starting.items()):
                if now - t0 > limit:  # e.g. it cannot be placed: no CPU free after all
                    self._event(f"a replacement worker did not start within {limit:g} s; dropping it")
                    self._lose(actor, idle, starting)
        return assemble(self.spec, genomes, len(tasks), repeats, units, parts)

    def close(self) -> None:
        import ray

        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:
                pass
        self.actors = []


def init_ray(address: str | None, **kw: Any) -> None:
    """Start or join Ray once per process; a cluster that does not answer is a one-line UserError."""
    import ray

    if ray.is_initialized():
        return
    opts = dict(address=address, include_dashboard=False, logging_level=logging.WARNING,
                log_to_driver=False, configure_logging=False)
    opts.update(kw)
    try:
        ray.init(**opts)
    except ConnectionError as exc:
        where = "running on this machine (--address auto)" if address == "auto" else f"at {address}"
        raise UserError(f"no Ray cluster {where}: {str(exc).split('.')[0]}; start one with `ray start "
                        "--head` (or check the address), or leave out --address for a local one") from None


def make_backend(kind: str, spec: EvalSpec, **kw: Any):
    if kind == "inprocess":
        return InProcessBackend(spec, kw.get("chunks_per_worker", 1))
    if kind == "ray":
        return RayBackend(spec, **kw)
    raise UserError(f"unknown backend {kind!r}; backends: ray, inprocess")
