"""Load a saved genome and print one of its lifetimes, rollout by rollout, with the maze and path.

    python examples/watch_genome.py runs/quickstart/best.npz          # a trained genome
    python examples/watch_genome.py runs/quickstart/best.npz maze15 4 # task 4 of another suite

`evoplastic play GENOME` does the same through the Gymnasium env's renderer (text or GIF).
"""

import sys

import numpy as np

from evoplastic import genome as genome_io
from evoplastic import trajectory
from evoplastic.envs import tasks
from evoplastic.models import get_model

path = sys.argv[1]
suite = sys.argv[2] if len(sys.argv) > 2 else "maze9"
index = int(sys.argv[3]) if len(sys.argv) > 3 else 0

g, meta = genome_io.load(path)  # (n_gene,) float32 and what the run stored with it
model = get_model(meta["model"], meta.get("hidden", 64))
maze = tasks.load(suite)
one = tasks.TaskSet(maze.walls[[index]], maze.start[[index]], maze.goal[[index]], dict(maze.meta))
life = trajectory.trace(model, g, one, seed=0, task_ids=np.array([index]))  # 3 rollouts, memories kept

print(f"{path}: {model.id} (hidden {model.hidden}), saved at generation {meta.get('generation', '?')}; "
      f"task {index} of {suite}")
for r, cells in enumerate(life.paths[0]):
    grid = np.where(one.walls[0] == 1, "#", " ").astype("<U1")
    for i, j in cells:
        grid[i, j] = "."
    grid[tuple(one.start[0])], grid[tuple(one.goal[0])] = "S", "G"
    outcome = "reached the goal" if life.reached[0, r] else "did not reach the goal"
    print(f"\nrollout {r + 1}: {outcome} in {life.steps[0, r]} steps, return {life.returns[0, r]:+.2f}")
    print("\n".join(" ".join(row) for row in grid))
