#!/usr/bin/env bash
# The full test suite, from scratch if need be (venv, pinned install, jars). Arguments go to pytest.
# SLM_TEST_EXTRAS: the extras to install (default dev,train,judge,quality: what the full suite needs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/spark_line.sh  # SLM_SPARK_LINE: 4.1 (default) or 3.5
scripts/bootstrap.sh "${SLM_TEST_EXTRAS:-dev,train,judge,quality}"
exec "$SLM_VENV/bin/python" -m pytest "$@"
