"""Benchmarks behind ``evoplastic bench``: they measure and return figures, never assert them."""

from __future__ import annotations

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
                   seconds: float = 5.0) -> dict[str, Any]:
    """Agent-steps per second of :func:`lifetime.evaluate` on one core.

    An agent-step is one network step plus one env step of one live lifetime. Genomes are
    N(0, 0.05^2) (the paper's initialisation), 3 rollouts on generated ``size`` mazes: mostly
    full-length episodes, the evaluator's worst case.
    """
    model = get_model(model_id, hidden)
    crowd = 0.30 if size <= 9 else 0.35
    ts = tasks_mod.generate(max(8, batch // 4), size, crowd, seed=123)
    rng = np.random.default_rng(0)
    genomes = (0.05 * rng.standard_normal((4, model.n_gene))).astype(np.float32)
    n_tasks = -(-batch // len(genomes))
    sub = ts.head(min(n_tasks, len(ts)))
    repeats = -(-batch // (len(genomes) * len(sub)))
    run = lambda: lifetime.evaluate(model, genomes, sub, repeats=repeats, rollouts=3, batch=batch)  # noqa: E731
    run()  # warm-up (allocations, caches)
    steps, t0 = 0, time.perf_counter()
    while True:
        steps += run().agent_steps
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    tracemalloc.start()
    one = lifetime.evaluate(model, genomes, sub, repeats=repeats, rollouts=1, batch=batch)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    lifetimes = min(batch, one.returns.size)
    return {"model": model_id, "hidden": hidden, "size": size, "batch": batch,
            "lifetimes_per_run": int(one.returns.shape[0] * one.returns.shape[1]),
            "agent_steps": int(steps), "seconds": round(elapsed, 3),
            "agent_steps_per_s": steps / elapsed, "peak_bytes_per_lifetime": peak / lifetimes,
            "blas_threads": _blas_threads(), "n_gene": model.n_gene, "n_mem": model.n_mem}
