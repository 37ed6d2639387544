#!/usr/bin/env bash
# Reproducing the paper by training (README, "Reproducing the paper by training"): for each run of
# experiments/reproduce/ (default: DecPRNN(PostDN) and Meta-RNN on 9x9; RUNS="decprnn-postdn-15x15"
# for 15x15), train it, or resume it if runs/reproduce/NAME holds a stopped run, then evaluate its
# genome on the method §7 out-of-distribution protocol of its maze size and write its report. The
# genome is the best-validated one or the final mean, whichever scores higher on the validation
# tasks training never saw (scripts/choose_genome.py). Last, one figure and table of every run's validation against wall time and agent-steps
# (runs/reproduce/walltime.*) and one report comparing them (runs/reproduce/report/).
# Hours of training: stop with Ctrl-C at any time (the newest checkpoint is kept) and run again.
# WORKERS=N sets the Ray workers (default: one per CPU).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" plots
cd "$ROOT"
workers=()
[ -n "${WORKERS:-}" ] && workers=(--workers "$WORKERS")
for name in ${RUNS:-decprnn-postdn-9x9 meta-rnn-9x9}; do
    run="runs/reproduce/$name"
    if [ -d "$run/checkpoints" ]; then
        evoplastic resume "$run" "${workers[@]}"
    else
        evoplastic train "experiments/reproduce/$name.yaml" --run-dir "$run" "${workers[@]}"
    fi
    case "$name" in *-15x15) protocol=experiments/ood-from-15x15.yaml ;; *) protocol=experiments/ood-from-9x9.yaml ;; esac
    # best-validated genome or final mean: whichever scores higher on validation tasks training never saw
    genome=$(python scripts/choose_genome.py "$run")
    evoplastic eval "$run" --genome "$genome" --tasks "$protocol" --json "$run/ood.json" --csv "$run/ood.csv"
    evoplastic report "$run"
done
python -m evoplastic.sweep_report runs/reproduce
evoplastic report runs/reproduce
