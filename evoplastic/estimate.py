"""`evoplastic estimate CONFIG`: what a training run will cost on this machine, before starting it.

A short measurement: genomes drawn as the run's first generation draws them (``N(0, init_std^2)``)
live lifetimes on mazes of the run's size, in this process, on one core, for about ``seconds``
seconds. That gives seconds and agent-steps per lifetime; the config gives how many lifetimes each
generation and each validation evaluates. Untrained genomes rarely reach the goal, so their
lifetimes run to the step limit: the estimate is close to an upper bound (trained agents need fewer
steps), and it assumes the workers split the lifetimes evenly with no other overhead (the README's
generation benchmark measures that overhead at a few percent).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import numpy as np

from evoplastic import config as cfglib
from evoplastic import lifetime
from evoplastic.envs import tasks as tasklib
from evoplastic.models import get_model


@dataclass(frozen=True)
class Estimate:
    """Cost of one config with ``workers`` workers.

    Attributes:
        s_per_lifetime: measured CPU seconds per lifetime on one core (fastest batch).
        steps_per_lifetime: measured agent-steps (network + env steps) per lifetime.
        lifetimes_last: lifetimes in one generation at the end of the task curriculum.
        gen_s_last: seconds per generation then (validation excluded).
        total_lifetimes: over the whole run, validations included.
        total_s: wall seconds of the whole run.
        measured_lifetimes, measured_s: the measurement itself.
    """

    config: str
    workers: int
    s_per_lifetime: float
    steps_per_lifetime: float
    lifetimes_last: int
    gen_s_last: float
    total_lifetimes: int
    total_s: float
    measured_lifetimes: int
    measured_s: float


def lifetimes_per_run(cfg: cfglib.ExperimentConfig) -> tuple[int, int]:
    """(lifetimes of the last generation, lifetimes of the whole run incl. validations)."""
    per_task = cfg.strategy.popsize * cfg.tasks.repeats
    train = sum(cfg.tasks_at(g) for g in range(cfg.generations)) * per_task
    validations = cfg.generations // cfg.validation.interval + 1  # also at generation 0
    last = cfg.tasks_at(max(cfg.generations - 1, 0)) * per_task
    return last, train + validations * cfg.validation.count * cfg.validation.repeats


def measure(cfg: cfglib.ExperimentConfig, seconds: float = 3.0) -> tuple[float, float, int, float]:
    """(seconds per lifetime, agent-steps per lifetime, lifetimes run, seconds spent) in this process.

    Each call evaluates ``k`` genomes on ``k`` tasks, ``k = sqrt(workers.batch)``, so that as many
    lifetimes run in lock step as a worker runs; one untimed call first compiles the kernels, then
    calls repeat (new seeds) until ``seconds`` have passed, at least 3 times. Seconds per lifetime
    are CPU seconds of this (single-threaded) process in the fastest call, so that other jobs on a
    shared machine do not inflate the estimate: it is the cost for workers with a core each.
    """
    model = get_model(cfg.model.id, cfg.model.hidden)
    k = max(1, int(cfg.workers.batch ** 0.5))
    rng = np.random.default_rng(0)
    genomes = (cfg.strategy.init_std * rng.standard_normal((k, model.n_gene))).astype(np.float32)
    tasks = tasklib.generate(k, cfg.tasks.size, cfg.tasks.crowd_ratio, seed=0)
    lt = cfg.lifetime

    def run(seed: int) -> int:
        res = lifetime.evaluate(model, genomes, tasks, repeats=1, rollouts=lt.rollouts, weights=lt.weights,
                                seed=seed, profile=lt.profile, batch=k * k)
        return res.agent_steps

    run(10**6)
    done, steps, times, t0 = 0, 0, [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - t0 < seconds:
        t = time.process_time()
        steps += run(done)
        times.append(time.process_time() - t)
        done += k * k
    # CPU seconds of this process, fastest call: what a worker with a core of its own needs;
    # other jobs on a shared machine stretch wall time, not this
    return min(times) / (k * k), steps / done, done, time.perf_counter() - t0


def estimate(path: str, workers: int | None = None, seconds: float = 3.0) -> Estimate:
    """Measure and extrapolate the run of the config file ``path`` (see the module doc).

    ``workers``: default the config's ``workers.count``, else the CPUs this process may use.
    """
    from evoplastic.localray import usable_cpus

    cfg = cfglib.load(path)
    n = workers or cfg.workers.count or usable_cpus()
    s_life, steps, done, spent = measure(cfg, seconds)
    last, total = lifetimes_per_run(cfg)
    return Estimate(str(path), n, s_life, steps, last, last * s_life / n, total, total * s_life / n, done, spent)


def format_estimate(e: Estimate, cfg: cfglib.ExperimentConfig) -> str:
    from evoplastic.progress import format_duration

    c = cfg
    return "\n".join([
        f"{e.config}: {c.model.id} (hidden {c.model.hidden}), {c.tasks.size}x{c.tasks.size} mazes, "
        f"{c.generations:,} generations of {c.strategy.popsize} genomes",
        f"measured: {e.measured_lifetimes} lifetimes of untrained genomes in {e.measured_s:.1f} s on one core "
        f"({platform.processor() or platform.machine()}): {1e3 * e.s_per_lifetime:.1f} ms CPU (fastest batch) and "
        f"{e.steps_per_lifetime:,.0f} agent-steps per lifetime",
        f"per generation at the end of the curriculum: {e.lifetimes_last:,} lifetimes, "
        f"~{e.lifetimes_last * e.steps_per_lifetime / 1e6:.1f} M agent-steps, "
        f"{e.gen_s_last:.1f} s with {e.workers} worker{'s' if e.workers != 1 else ''}",
        f"whole run (validations included): {e.total_lifetimes:,} lifetimes, about "
        f"{format_duration(e.total_s)} with {e.workers} worker{'s' if e.workers != 1 else ''} "
        "(an upper bound: trained agents reach the goal in fewer steps)",
    ])
