# Sourced by scripts/test.sh and scripts/run.sh: create .venv if missing and install the package
# (editable) with the given extras. Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[evoplastic] creating $VENV" >&2
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.evoplastic-installed-$1"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "[evoplastic] installing evoplastic[$1] into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$1]"
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
