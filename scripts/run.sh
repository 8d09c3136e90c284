#!/usr/bin/env bash
# The main job on the embedded default (Spark local mode, Delta on local disk, MLflow in data/mlflow).
# Extra arguments go to jobs/pipeline.py, e.g.  scripts/run.sh --input ../shared/data/web
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh train,judge,quality
exec "${SLM_VENV:-.venv}/bin/python" jobs/pipeline.py "$@"
