"""Benchmarks behind ``evoplastic bench``: they measure and return figures, never assert them."""

from __future__ import annotations

import dataclasses
import os
import time
import tracemalloc
from typing import Any

import numpy as np

from evoplastic import lifetime
from evoplastic.envs import tasks as tasks_mod
from evoplastic.models import get_model


def _blas_threads() -> str:
    return os.environ.get("OPENBLAS_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "default"))


def bench_lifetime(model_id: str, size: int = 15, batch: int = 256, hidden: int = 64,
                   seconds: float = 5.0, engines: tuple[str, ...] = ("fused", "lockstep"),
                   rounds: int = 3) -> dict[str, Any]:
    """Agent-steps per second of :func:`lifetime.evaluate` on one core, per engine, side by side.

    An agent-step is one network step plus one env step of one live lifetime. Genomes are
    N(0, 0.05^2) (the paper's initialisation), 3 rollouts on generated ``size`` mazes: mostly
    full-length episodes, the evaluator's worst case. ``batch`` lifetimes per evaluation (the
    lock-step engine runs them in lock step; the fused engine one after another). The engines
    take turns for ``rounds`` rounds of ``seconds / rounds`` each (a noisy machine then slows
    both alike); the figure is the median round. Time is the process's CPU time
    (``time.process_time``), so other processes on the machine do not count against it.
    Every engine must give the same fitness as the first (checked, reported).
    """
    model = get_model(model_id, hidden)
    crowd = 0.30 if size <= 9 else 0.35
    ts = tasks_mod.generate(max(8, batch // 4), size, crowd, seed=123)
    rng = np.random.default_rng(0)
    genomes = (0.05 * rng.standard_normal((4, model.n_gene))).astype(np.float32)
    n_tasks = -(-batch // len(genomes))
    sub = ts.head(min(n_tasks, len(ts)))
    repeats = -(-batch // (len(genomes) * len(sub)))
    specs = {e: lifetime.EvalSpec(model_id, hidden, rollouts=3, batch=batch, engine=e) for e in engines}
    rates: dict[str, list[float]] = {e: [] for e in engines}
    first = {e: lifetime.evaluate(specs[e], genomes, sub, repeats) for e in engines}  # warm-up, compile
    ref = first[engines[0]]
    for _ in range(rounds):
        for e in engines:
            steps, t0 = 0, time.process_time()
            while True:
                steps += lifetime.evaluate(specs[e], genomes, sub, repeats).agent_steps
                elapsed = time.process_time() - t0
                if elapsed >= seconds / rounds:
                    break
            rates[e].append(steps / elapsed)
    rows = []
    for e in engines:
        tracemalloc.start()
        one = lifetime.evaluate(dataclasses.replace(specs[e], rollouts=1), genomes, sub, repeats)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append({"engine": e, "agent_steps_per_s": float(np.median(rates[e])),
                     "rounds": [round(r) for r in rates[e]],
                     "peak_bytes_per_lifetime": peak / max(1, one.returns.shape[0] * one.returns.shape[1]),
                     "same_fitness": bool(np.array_equal(first[e].fitness, ref.fitness)
                                          and np.array_equal(first[e].steps, ref.steps))})
    base = rows[-1]["agent_steps_per_s"]
    for row in rows:
        row["ratio_to_" + rows[-1]["engine"]] = row["agent_steps_per_s"] / base
    return {"model": model_id, "hidden": hidden, "size": size, "batch": batch, "rounds": rounds,
            "lifetimes_per_run": int(ref.returns.shape[0] * ref.returns.shape[1]),
            "blas_threads": _blas_threads(), "n_gene": model.n_gene, "n_mem": model.n_mem,
            "cpu": _cpu_name(), "rows": rows}


def format_lifetime(res: dict[str, Any]) -> str:
    last = res["rows"][-1]["engine"]
    lines = [f"{res['model']} (hidden {res['hidden']}), {res['size']}x{res['size']} mazes, batch {res['batch']}, "
             f"{res['cpu']}; agent-steps/s per core (CPU time), median of {res['rounds']} alternating rounds"]
    for r in res["rows"]:
        lines.append(f"  {r['engine']:<9} {r['agent_steps_per_s']:>12,.0f}  x{r['ratio_to_' + last]:.2f} vs {last}"
                     f"  rounds {', '.join(f'{x:,}' for x in r['rounds'])}; peak memory per lifetime "
                     f"{r['peak_bytes_per_lifetime'] / 1024:.1f} KiB; same results: {r['same_fitness']}")
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def bench_generation(workers: int = 2, popsize: int = 360, tasks: int = 8, repeats: int = 4, size: int = 15,
                     model_id: str = "decprnn-postdn", repeat: int = 2, chunks_per_worker: int = 4,
                     engine: str = "auto") -> dict[str, Any]:
    """Wall time per generation of a paper-shaped workload: in-process, then Ray with 1..workers.

    Each setting evaluates the same population on the same tasks ``repeat`` times (medians are
    reported) and checks that the fitnesses equal the in-process ones. Ray overhead is the share
    of the generation's wall time not spent evaluating: ``1 - (evaluation seconds / workers) /
    wall`` (with several workers it includes load imbalance between them).
    """
    from evoplastic import runner

    model = get_model(model_id)
    ts = tasks_mod.generate(tasks, size, 0.35 if size > 9 else 0.30, seed=321)
    genomes = (0.05 * np.random.default_rng(1).standard_normal((popsize, model.n_gene))).astype(np.float32)
    spec = lifetime.EvalSpec(model_id, 64, engine=engine)
    rows, ref = [], None

    def timed(backend, label: str, n_workers: int) -> None:
        nonlocal ref
        walls, evals = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            res = backend.evaluate(genomes, ts, repeats, seed=7)
            walls.append(time.perf_counter() - t0)
            evals.append(res.meta["worker_seconds"])
        if ref is None:
            ref = res.fitness
        wall, ev = float(np.median(walls)), float(np.median(evals))
        rows.append({"setting": label, "workers": n_workers, "wall_s": wall, "eval_s": ev,
                     "overhead": 1.0 - (ev / n_workers) / wall, "agent_steps": res.agent_steps,
                     "agent_steps_per_s": res.agent_steps / wall,
                     "same_fitness_as_inprocess": bool(np.array_equal(res.fitness, ref))})

    timed(runner.InProcessBackend(spec), "in-process", 1)
    import ray

    for n in range(1, workers + 1):
        backend = runner.RayBackend(spec, workers=n, chunks_per_worker=chunks_per_worker)
        try:
            timed(backend, f"ray, {n} worker{'s' if n > 1 else ''}", n)
        finally:
            backend.close()
    ray.shutdown()
    one = next(r for r in rows if r["setting"] == "ray, 1 worker")
    for r in rows:
        r["speedup_vs_ray_1"] = one["wall_s"] / r["wall_s"]
    return {"model": model_id, "popsize": popsize, "tasks": tasks, "repeats": repeats, "size": size,
            "engine": spec.engine_for(model),
            "rollouts": 3, "repeat": repeat, "chunks_per_worker": chunks_per_worker,
            "cpus": os.cpu_count(), "rows": rows}


def format_generation(res: dict[str, Any]) -> str:
    head = (f"{res['model']}, population {res['popsize']}, {res['tasks']} tasks x {res['repeats']} repeats, "
            f"{res['rollouts']} rollouts, {res['size']}x{res['size']}, {res.get('engine', 'lockstep')} engine; "
            f"median of {res['repeat']} generations, "
            f"{res['cpus']} CPUs")
    lines = [head, f"{'setting':<16} {'wall s':>8} {'eval s':>8} {'overhead':>9} {'speedup':>8} "
                   f"{'agent-steps/s':>14}  same fitness"]
    for r in res["rows"]:
        lines.append(f"{r['setting']:<16} {r['wall_s']:>8.2f} {r['eval_s']:>8.2f} {100 * r['overhead']:>8.1f}% "
                     f"{r['speedup_vs_ray_1']:>7.2f}x {r['agent_steps_per_s']:>14,.0f}  {r['same_fitness_as_inprocess']}")
    return "\n".join(lines)
