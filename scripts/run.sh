#!/usr/bin/env bash
# The main job: set up .venv (if missing), then the quickstart end to end:
#   1. train DecPRNN(PostDN) on 9x9 mazes (experiments/quickstart.yaml) on local Ray workers;
#      if runs/quickstart already holds a run, resume it (a finished run is left as it is);
#   2. evaluate its best-validated genome on the method §7 out-of-distribution protocol (9x9, 15x15);
#   3. write the report (learning curves, per-rollout returns, table, trajectories).
# RUN_DIR=... overrides the run directory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" plots
cd "$ROOT"
RUN="${RUN_DIR:-runs/quickstart}"
start=$(date +%s)
if [ -d "$RUN/checkpoints" ]; then
    evoplastic resume "$RUN"
else
    evoplastic train experiments/quickstart.yaml --run-dir "$RUN"
fi
evoplastic eval "$RUN" --tasks experiments/ood-from-9x9.yaml --json "$RUN/ood.json" --csv "$RUN/ood.csv"
evoplastic report "$RUN"
echo
echo "quickstart finished in $(( $(date +%s) - start )) s"
case "$RUN" in /*) where="$RUN" ;; *) where="$ROOT/$RUN" ;; esac
echo "run directory: $where (metrics.csv, best.npz, ood.json, report/index.md)"
