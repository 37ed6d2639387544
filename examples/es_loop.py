"""Evolve a plastic RNN with the public API alone: a strategy, lifetimes, ask/tell. No Ray, no run dir.

    python examples/es_loop.py              # 30 generations, about 10 s on one core
    python examples/es_loop.py 200          # more generations

Each generation, every genome lives one lifetime (3 rollouts, memories kept) in each of 8 new 9x9
mazes; its fitness is the weighted rollout score (docs/method.md §2). `evoplastic train` runs the
same loop with workers, validation, checkpoints and a curriculum.
"""

import sys

import numpy as np

from evoplastic import lifetime
from evoplastic.envs import tasks
from evoplastic.models import get_model
from evoplastic.strategies import make_strategy

generations = int(sys.argv[1]) if len(sys.argv) > 1 else 30
model = get_model("decprnn-postdn", hidden=32)  # decomposed plasticity, post-synaptic modulation
rng = np.random.default_rng(0)
mean0 = (0.05 * rng.standard_normal(model.n_gene)).astype(np.float32)  # the paper's N(0, 0.05^2)
es = make_strategy("sepcma", model.n_gene, popsize=24, sigma0=0.02, mean0=mean0, seed=0)
validation = tasks.load("maze9-val").head(64)

for g in range(generations):
    mazes = tasks.generate(8, size=9, crowd_ratio=0.30, seed=g)  # this generation's tasks
    genomes = es.ask()  # (24, n_gene) float32
    result = lifetime.evaluate(model, genomes, mazes, repeats=1, seed=g)
    stats = es.tell(result.fitness)  # higher is better
    if g % 10 == 0 or g == generations - 1:
        val = lifetime.evaluate(model, es.mean[None].astype(np.float32), validation, seed=10**6)
        per_rollout = val.returns[0].mean(axis=0)  # (3,) mean return of each rollout
        print(f"generation {g:3d}: best {stats['fitness_best']:+.3f}, mean {stats['fitness_mean']:+.3f}; "
              f"mean genome on 64 validation mazes: {val.fitness[0]:+.3f} "
              f"(rollouts {', '.join(f'{x:+.2f}' for x in per_rollout)})")
