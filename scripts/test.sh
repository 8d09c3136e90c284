#!/usr/bin/env bash
# The full test suite, from scratch if need be (venv, pinned install, jars). Arguments go to pytest.
# SLM_TEST_EXTRAS: the extras to install (default dev,train,judge,quality: what the full suite needs).
# SLM_TEST_WORKERS: pytest-xdist worker processes (default 2; 1 runs in this process). Each worker has
# its own Spark session, and a test file stays on one worker. Ignored when the arguments pick workers.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/spark_line.sh  # SLM_SPARK_LINE: 4.1 (default) or 3.5
workers="${SLM_TEST_WORKERS:-2}"
case "$workers" in
  ''|*[!0-9]*|0) echo "SLM_TEST_WORKERS=$workers is not a worker count; allowed values: integers >= 1" >&2; exit 2 ;;
esac
scripts/bootstrap.sh "${SLM_TEST_EXTRAS:-dev,train,judge,quality}"
parallel=()
if [ "$workers" -gt 1 ]; then
  # --no-loadscope-reorder: files go out in collection order (tests/conftest.py puts the long ones
  # first), not xdist's default of most tests first, which left the one-test, minutes-long files last.
  parallel=(-n "$workers" --dist loadfile --no-loadscope-reorder)
  for arg in "$@"; do
    case "$arg" in -n|-n[0-9]*|--numprocesses*|no:xdist|-pno:xdist) parallel=() ;; esac
  done
fi
exec "$SLM_VENV/bin/python" -m pytest ${parallel[@]+"${parallel[@]}"} "$@"
