#!/usr/bin/env bash
# Scan bicep/ with checkov, run from its own virtual environment (.venv-checkov/).
#
# checkov pins many packages, so it never goes into the app's .venv. The venv is created and
# the pinned version installed on first use (a couple of minutes), then reused: a stamp file
# records the installed version, and a different pin reinstalls.
#
#   bash scripts/checkov.sh              # compact report, exit non-zero on any failed check
#   bash scripts/checkov.sh -o json      # extra arguments go to checkov
#   bash scripts/checkov.sh --install-only
#
# Environment: PYTHON (interpreter that creates the venv, default python3),
#              CHECKOV_VENV (venv folder, default <repo>/.venv-checkov).
set -euo pipefail

CHECKOV_VERSION="3.3.30"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.checkov-$CHECKOV_VERSION"

if [[ ! -f "$STAMP" || ! -x "$VENV/bin/checkov" ]]; then
  echo "checkov.sh: installing checkov==$CHECKOV_VERSION into $VENV (first run only)" >&2
  rm -f "$VENV"/.checkov-*
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  touch "$STAMP"
fi

if [[ "${1:-}" == "--install-only" ]]; then
  exit 0
fi

cd "$ROOT"
# --compact: no code excerpts; --quiet: list failed checks only (the summary line stays).
exec "$VENV/bin/checkov" -d bicep --framework bicep --compact --quiet --skip-download "$@"
