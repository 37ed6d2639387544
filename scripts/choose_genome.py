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
import subprocess
import sys
import tempfile
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


def score(run: Path, genome: str, tasks: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval.json"
        # the genome file, not the run: `eval RUN` would file these results in RUN/eval/, beside (and
        # for the report, in place of) the chosen genome's
        subprocess.run([sys.executable, "-m", "evoplastic.cli", "eval", str(run / f"{genome}.npz"),
                        "--tasks", tasks, "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        res = json.loads(out.read_text())
    return {"weighted_mean": res["weighted_mean"], "weighted_se": res["weighted_se"], "tasks": res["tasks"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    args = ap.parse_args(argv)
    tasks = held_out(args.run)
    scores = {g: score(args.run, g, tasks) for g in ("best", "mean")}
    choice = "mean" if scores["mean"]["weighted_mean"] > scores["best"]["weighted_mean"] else "best"
    (args.run / "choice.json").write_text(json.dumps({"tasks": tasks, "scores": scores, "choice": choice}, indent=2))
    for g, s in scores.items():
        print(f"{g}: {s['weighted_mean']:+.3f} ± {s['weighted_se']:.3f} on {tasks}", file=sys.stderr)
    print(choice)
    return 0


if __name__ == "__main__":
    sys.exit(main())
