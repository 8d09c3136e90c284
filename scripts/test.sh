#!/usr/bin/env bash
# The full test suite, from scratch if need be (venv, pinned install, jars). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev,train,judge,quality
exec "${SLM_VENV:-.venv}/bin/python" -m pytest "$@"
