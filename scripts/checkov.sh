#!/usr/bin/env bash
# Scan bicep/ with checkov, run from its own virtual environment.
#
# checkov pins many packages, so it never goes into the app's .venv. Its venv is built on first use (minutes)
# in the per-user cache of scripts/venv_cache.py (${XDG_CACHE_HOME:-~/.cache}/preservica-webhooks-azure/venvs/
# checkov-<key>, where <key> covers the pin below and the interpreter), under a lock, and reused by every
# checkout on this machine; changing the pin builds a new one.
#
#   bash scripts/checkov.sh                 # scan; prints a compact summary
#   bash scripts/checkov.sh --install-only  # just create/verify the venv
#
# Exit status: 0 when no check failed and every .bicep file parsed; 1 otherwise
# (checkov itself exits 0 on parsing errors, so they are counted here).
# Skips are never passed on the command line: each one is an inline
# `// checkov:skip=CKV_ID:reason` comment in the resource it concerns.
#
# Environment: PYTHON              interpreter that creates the venv (default python3)
#              CHECKOV_VENV        venv path to use instead of the cache (built there the same way)
#              HOOKOPS_VENV_CACHE  the cache folder (default above)
#              CHECKOV_REPORT      where the full JSON report goes (default a new temporary file)
#              CHECKOV_DIR         folder to scan, relative to the repo (default bicep)
set -euo pipefail

CHECKOV_VERSION="3.3.30"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
SCAN_DIR="${CHECKOV_DIR:-bicep}"

VENV="$("$PYTHON" "$ROOT/scripts/venv_cache.py" checkov --python "$PYTHON" --import checkov \
        ${CHECKOV_VENV:+--dest "$CHECKOV_VENV"} -- "checkov==$CHECKOV_VERSION")"

if [[ "${1:-}" == "--install-only" ]]; then
  exit 0
fi

REPORT="${CHECKOV_REPORT:-$(mktemp "${TMPDIR:-/tmp}/checkov-report.XXXXXX")}"
cd "$ROOT"
set +e
"$VENV/bin/checkov" --directory "$SCAN_DIR" --framework bicep --compact --skip-download --output json > "$REPORT"
status=$?
set -e

"$VENV/bin/python" - "$REPORT" "$status" <<'PY'
import json
import sys

path, status = sys.argv[1], int(sys.argv[2])
try:
    data = json.load(open(path))
except ValueError:
    print(f"checkov.sh: checkov exited {status} without a JSON report ({path})", file=sys.stderr)
    sys.exit(status or 1)
reports = data if isinstance(data, list) else [data]
if not reports or "results" not in reports[0]:
    print("checkov.sh: checkov found no Bicep files to scan", file=sys.stderr)
    sys.exit(1)
passed = failed = skipped = 0
parse_errors = []
for report in reports:
    results, summary = report["results"], report["summary"]
    passed += summary["passed"]
    failed += summary["failed"]
    skipped += summary["skipped"]
    parse_errors += results.get("parsing_errors", [])
    for check in results.get("failed_checks", []):
        lines = "-".join(str(n) for n in check["file_line_range"])
        print(f"FAILED  {check['check_id']}  {check['resource']}  {check['file_path']}:{lines}  {check['check_name']}")
    for check in results.get("skipped_checks", []):
        reason = check["check_result"].get("suppress_comment", "")
        print(f"skipped {check['check_id']}  {check['resource']}  {check['file_path']}: {reason}")
for name in parse_errors:
    print(f"PARSING ERROR  {name}")
version = reports[0]["summary"].get("checkov_version", "?")
print(f"checkov {version} bicep: {passed} passed, {failed} failed, {skipped} skipped, "
      f"{len(parse_errors)} parsing errors")
print(f"full report: {path}", file=sys.stderr)
sys.exit(1 if failed or parse_errors or status not in (0, 1) else 0)
PY
