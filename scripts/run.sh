#!/usr/bin/env bash
# The main job. Sets up .venv (if missing) and runs it.
# For now: the Oracle and Random baselines on every test suite, as tables (results/ holds the JSON).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" plots
cd "$ROOT"
mkdir -p results
SUITES=maze9,maze15,maze21,maze15-crowded,maze15-spacious
evoplastic baseline oracle --tasks "$SUITES" --rollouts 3 --json results/baseline-oracle.json
echo
evoplastic baseline random --tasks "$SUITES" --rollouts 3 --seed 0 --json results/baseline-random.json
echo
echo "results written to $ROOT/results/baseline-{oracle,random}.json"
