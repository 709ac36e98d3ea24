#!/usr/bin/env bash
# The README's two commands. On a fresh machine with Python 3.11+:
#   ./run.sh demo   set up .venv and run the end-to-end demo (embedded SQLite, no server)
#   ./run.sh test   set up .venv (with the dev extra) and run the whole test suite
# Extra arguments after the command are passed on (to `credit-drift demo` or to pytest).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${CREDIT_DRIFT_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

setup() {
  local extra="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".${extra}"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  demo)
    setup ""
    exec "$VENV/bin/credit-drift" demo "$@"
    ;;
  test)
    setup "[dev]"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh demo|test [args...]" >&2
    exit 2
    ;;
esac
