#!/usr/bin/env bash
# The README's commands. Needs Python 3.11, 3.12 or 3.13 (found by itself: $PYTHON, else python3,
# python3.13, python3.12, python3.11 on the PATH, the first that is supported).
#   ./run.sh demo [args]   set up .venv and run the end-to-end demo (embedded SQLite, no server)
#   ./run.sh ui [args]     the Dagster UI on the state directory (`credit-drift ui`)
#   ./run.sh cli ARGS      any `credit-drift` command, e.g. ./run.sh cli status
#   ./run.sh test [args]   set up .venv (with the dev extra) and run the test suite (pytest args)
#   ./run.sh stack up|down|status   the production stack on this machine under supervisord
#                          (.venv with the deploy extra; needs DATABASE_URL, DAGSTER_PG_URL, redis-server)
#   ./run.sh setup         only set up .venv (then `source .venv/bin/activate` for credit-drift)
#   ./run.sh python        which interpreter a new .venv would use (and numpy's CPU setting)
# The environment is installed once and again only when pyproject.toml changes.
set -euo pipefail
# How the user reached this script, so that the commands it suggests can be typed as they are.
export CREDIT_DRIFT_RUN_SH="$0"
cd "$(dirname "$0")"
VENV="${CREDIT_DRIFT_VENV:-.venv}"
SUPPORTED="3.11, 3.12 or 3.13"

supported() {  # is "$1" a Python interpreter of a supported version?
  "$1" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else 1)' \
    >/dev/null 2>&1
}

find_python() {
  if [ -n "${PYTHON:-}" ]; then
    if supported "$PYTHON"; then echo "$PYTHON"; return; fi
    echo "PYTHON=$PYTHON is not Python $SUPPORTED" >&2
    exit 2
  fi
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 && supported "$candidate"; then
      echo "$candidate"
      return
    fi
  done
  echo "credit-drift needs Python $SUPPORTED: none found on the PATH (python3 is" \
    "$(python3 --version 2>&1 || echo missing)). Install one, or set PYTHON=/path/to/python3.x" >&2
  exit 2
}

_install() {
  local extra="$1"
  if [ -x "$VENV/bin/python" ] && ! supported "$VENV/bin/python"; then
    echo "$VENV was made with $("$VENV/bin/python" --version 2>&1), which credit-drift does not" \
      "support (Python $SUPPORTED): delete it (rm -rf $VENV) and run this again" >&2
    exit 2
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    local python
    python="$(find_python)"
    echo "setting up $VENV with $("$python" --version 2>&1) (about 2 minutes, once)" >&2
    "$python" -m venv "$VENV"
  fi
  local stamp="$VENV/.credit-drift-installed"
  # Installed since pyproject.toml last changed, with this extra (the dev extra includes all)?
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] \
    && { grep -qxF "[${extra}]" "$stamp" || grep -qxF "[dev]" "$stamp"; }; then
    return
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".${extra:+[$extra]}"
  { [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && cat "$stamp"; echo "[${extra}]"; } \
    > "$stamp.tmp" || true
  mv "$stamp.tmp" "$stamp"
}

setup() {
  _install "$@"
  zen4_sort
}

zen4_sort() {
  # AMD Zen 4 (CPU family 25 with AVX-512) runs numpy's AVX-512 sort about 5x slower than its
  # AVX2 one (a memory-destination compress is microcoded there), and the drift statistics
  # spend most of their time sorting: numpy is told to dispatch to AVX2 there, unless
  # NPY_DISABLE_CPU_FEATURES is already set (even empty). README, "Performance on AMD Zen 4".
  [ -z "${NPY_DISABLE_CPU_FEATURES+set}" ] || return 0
  local cpuinfo="${CREDIT_DRIFT_CPUINFO:-/proc/cpuinfo}"  # another file only in the tests
  grep -qm1 AuthenticAMD "$cpuinfo" 2>/dev/null || return 0
  grep -qm1 '^cpu family[[:space:]]*: 25$' "$cpuinfo" && grep -qm1 ' avx512f' "$cpuinfo" \
    || return 0
  # numpy 2.4 names the AVX-512 target X86_V4, earlier releases AVX512_SKX
  if compgen -G "$VENV/lib/python3*/site-packages/numpy-2.[0-3].*.dist-info" >/dev/null; then
    export NPY_DISABLE_CPU_FEATURES="AVX512_SKX"
  else
    export NPY_DISABLE_CPU_FEATURES="X86_V4"
  fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
  setup)
    setup ""
    echo "ready: \`source $VENV/bin/activate\` puts credit-drift (and dagster, dg) on the PATH"
    ;;
  demo)
    setup ""
    exec "$VENV/bin/credit-drift" demo "$@"
    ;;
  ui)
    setup ""
    exec "$VENV/bin/credit-drift" ui "$@"
    ;;
  cli)
    setup ""
    exec "$VENV/bin/credit-drift" "$@"
    ;;
  stack)
    setup "deploy"
    unset CREDIT_DRIFT_RUN_SH
    exec "$VENV/bin/python" -m credit_drift.stack "$@"
    ;;
  python)  # the interpreter a new .venv would be made with, and numpy's CPU setting
    python="$(find_python)"
    echo "$(command -v "$python") $("$python" --version 2>&1)"
    zen4_sort
    if [ -n "${NPY_DISABLE_CPU_FEATURES+set}" ]; then
      echo "NPY_DISABLE_CPU_FEATURES=$NPY_DISABLE_CPU_FEATURES"
    else
      echo "NPY_DISABLE_CPU_FEATURES unset"
    fi
    ;;
  test)
    setup "dev"
    unset CREDIT_DRIFT_RUN_SH  # the tests run credit-drift themselves
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh demo|ui|cli|test|stack|setup|python [args...]" >&2
    exit 2
    ;;
esac
