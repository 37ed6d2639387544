"""Choose which genome of a finished run to test: the best-validated one or the final mean.

    python scripts/choose_genome.py RUN_DIR        # prints best or mean; writes RUN_DIR/choice.json

Validation during training (``validation.count`` tasks of ``validation.suite``, every
``validation.interval`` generations) keeps the genome that scored highest, and a maximum over
dozens of noisy scores is biased upward (the winner's curse: in our 9x9 reproduction, the genome
that validated at +0.804 scored +0.747 on other validation tasks). This script scores both
candidates on the validation tasks training never saw, ``SUITE[count:]`` (the second half of the
1,024-task suites when ``count`` is 512), and picks the higher, the best-validated one on a tie.
The test suites are not touched, so the choice does not peek at the test. Both candidates' scores go
to ``RUN_DIR/choice.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evoplastic import rundir
from evoplastic.envs import tasks as tasklib


def held_out(run: Path) -> str:
    """The task spec of the run's unused validation tasks, e.g. ``maze9-val[512:]``."""
    cfg = rundir.load_run(run).cfg
    suite, count = cfg.validation.suite, cfg.validation.count
    if count >= len(tasklib.load(suite)):
        raise SystemExit(f"{run}: validation used all of {suite}; no unused validation tasks to choose on")
    return f"{suite}[{count}:]"


def scores(run: Path, tasks: str) -> dict[str, dict]:
    """Both candidates on ``tasks``, as ``evoplastic eval`` scores them (seed 0, the evoplastic profile)."""
    from evoplastic import evaluate

    # the genome files, not the run: a run directory's results are filed in RUN/eval/, beside (and
    # for the report, in place of) the chosen genome's
    sources = [evaluate.resolve(str(run / f"{g}.npz"))[0] for g in ("best", "mean")]
    rows = evaluate.evaluate_sources(sources, [tasks], seed=0, backend="inprocess", log=lambda _: None)
    return {g: {"weighted_mean": r["weighted_mean"], "weighted_se": r["weighted_se"], "tasks": r["tasks"]}
            for g, r in zip(("best", "mean"), rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    args = ap.parse_args(argv)
    tasks = held_out(args.run)
    found = scores(args.run, tasks)
    choice = "mean" if found["mean"]["weighted_mean"] > found["best"]["weighted_mean"] else "best"
    (args.run / "choice.json").write_text(json.dumps({"tasks": tasks, "scores": found, "choice": choice}, indent=2))
    for g, s in found.items():
        print(f"{g}: {s['weighted_mean']:+.3f} ± {s['weighted_se']:.3f} on {tasks}", file=sys.stderr)
    print(choice)
    return 0


if __name__ == "__main__":
    sys.exit(main())
