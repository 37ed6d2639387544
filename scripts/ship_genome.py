"""Copy a run's genome into ``genomes/`` with how it was trained, for the README's table.

    python scripts/ship_genome.py RUN_DIR genomes/decprnn-postdn-9x9.npz [--genome best|mean]

It then evaluates the shipped genome on the method §7 protocol for 9x9 training (2,048 ``maze9`` and
2,048 ``maze15`` tasks, seed 0, 3 rollouts, last rollout) and prints its row of the table in
``genomes/README.md``; ``tests/test_shipped_genomes.py`` recomputes every row of that table.

The shipped file is an ordinary evoplastic genome file (``evoplastic eval genomes/NAME.npz ...``
reads it) whose metadata also holds, under ``training``: the config's name, seed, model, population,
task schedule and strategy; the generations trained and, up to the genome's generation, the
lifetimes, agent-steps and wall time spent (sums of ``metrics.csv``, training only: validation
lifetimes are not counted, and the wall time is each generation's ask, evaluation, tell and
validation, without checkpoint writes or pauses between a stop and a resume); the commit of this
repository the file was shipped from. Nothing is written if the run lacks any of it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from evoplastic import genome as genomelib
from evoplastic import rundir


def training_record(run: Path, generation: int) -> dict:
    """What training cost up to and including ``generation``, from the run's files."""
    r = rundir.load_run(run)
    cfg, m = r.cfg, r.metrics
    trained = (m["generation"] > 0) & np.isfinite(m["tasks"]) if m else np.zeros(0, bool)  # gen 0: validation only
    last = int(m["generation"][trained].max()) if trained.any() else 0
    if last < generation:
        raise SystemExit(f"{run}/metrics.csv: ends at generation {last}, before the genome's {generation}")
    upto = trained & (m["generation"] <= generation)
    lifetimes = sum(m["tasks"][upto]) * cfg.tasks.repeats * cfg.strategy.popsize
    steps, seconds = sum(m["agent_steps"][upto]), sum(m["seconds"][upto])
    return {"config": cfg.name, "seed": cfg.seed, "model": cfg.model.id, "hidden": cfg.model.hidden,
            "profile": cfg.lifetime.profile, "popsize": cfg.strategy.popsize, "sigma0": cfg.strategy.sigma0,
            "strategy": cfg.strategy.name, "schedule": [list(s) for s in cfg.tasks.schedule],
            "repeats": cfg.tasks.repeats, "generation": generation, "generations_trained": last,
            "lifetimes": int(lifetimes), "agent_steps": int(steps), "train_seconds": round(seconds, 1)}


MODEL_NAMES = {"decprnn-postdn": "DecPRNN(PostDN)", "meta-rnn": "Meta-RNN"}
SUITES = ("maze9", "maze15")


def readme_row(path: Path) -> str:
    """The genome's row of genomes/README.md's table, with its scores evaluated now (seconds)."""
    from evoplastic import evaluate

    [src] = evaluate.resolve(str(path))
    t = src.meta["training"]
    rows = evaluate.evaluate_sources([src], list(SUITES), count=2048, seed=0, backend="inprocess", log=lambda _: None)
    scores = [f"{r['rollout_mean'][-1]:+.3f} ± {r['rollout_se'][-1]:.3f} ({100 * r['goal_rate'][-1]:.1f} %)"
              for r in rows]
    return (f"| [{path.name}]({path.name}) | {MODEL_NAMES.get(src.model, src.model)}, hidden {src.hidden} "
            f"| `{t['config']}`, seed {t['seed']}, generation {t['generation']:,} of {t['generations_trained']:,} "
            f"({ {'best': 'best-validated', 'mean': 'final mean'}[t.get('genome', 'best')] }), "
            f"commit {src.meta['commit']} | {t['lifetimes'] / 1e6:.1f}M | {t['agent_steps'] / 1e9:.2f}G "
            f"| {t['train_seconds'] / 3600:.2f} h | " + " | ".join(scores) + " |")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="run directory (train --run-dir)")
    ap.add_argument("out", type=Path, help="genome file to write, e.g. genomes/decprnn-postdn-9x9.npz")
    ap.add_argument("--genome", choices=("best", "mean"), default="best")
    ap.add_argument("--commit", default=None,
                    help="commit of this repository the run was trained at (default: the current one)")
    args = ap.parse_args(argv)
    genome, meta = genomelib.load(args.run / f"{args.genome}.npz")
    record = {**training_record(args.run, int(meta["generation"])), "genome": args.genome}
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                           text=True, cwd=Path(__file__).resolve().parent).stdout.strip()
    extra = {k: v for k, v in meta.items() if k not in ("format", "format_version", "model", "hidden", "n_gene")}
    extra.update(source=f"runs/reproduce/{args.run.name} ({args.genome}.npz)", training=record, commit=commit)
    genomelib.save(args.out, genome, meta["model"], meta["hidden"], **extra)
    print(f"{args.out}: {meta['model']} (hidden {meta['hidden']}), generation {record['generation']} of "
          f"{record['generations_trained']}, {record['lifetimes']:,} lifetimes, "
          f"{record['agent_steps'] / 1e9:.2f}G agent-steps, {record['train_seconds'] / 3600:.2f} h of training")
    print("its row of genomes/README.md:")
    print(readme_row(args.out))


if __name__ == "__main__":
    main(sys.argv[1:])
