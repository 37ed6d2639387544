#!/usr/bin/env python
"""Benchmark: time to generate task sets (target: 2,048 15x15 tasks in < 2 s on one core).

Run: .venv/bin/python scripts/bench_generator.py [--repeats 3]
Prints, per size/crowd ratio, the best and median wall time of generating 2,048 tasks in this
process (numpy, single thread) and tasks per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from evoplastic.envs import generator  # noqa: E402

CASES = [(9, 0.30), (15, 0.35), (21, 0.35), (15, 0.45), (15, 0.15)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--count", type=int, default=2048)
    args = p.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"{'size':>4} {'crowd':>6} {'tasks':>6} {'best s':>8} {'median s':>9} {'tasks/s':>9}")
    for n, cr in CASES:
        times = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            generator.generate(args.count, n, cr, seed=1000 + r)
            times.append(time.perf_counter() - t0)
        best, med = min(times), float(np.median(times))
        print(f"{n:>4} {cr:>6.2f} {args.count:>6} {best:>8.3f} {med:>9.3f} {args.count / med:>9.0f}")


if __name__ == "__main__":
    main()
