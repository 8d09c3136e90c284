#!/usr/bin/env bash
# The main job on the embedded default (Spark local mode, Delta on local disk, MLflow in data/mlflow).
# Extra arguments go to jobs/pipeline.py, e.g.  scripts/run.sh --input ../shared/data/web
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/spark_line.sh  # SLM_SPARK_LINE: 4.1 (default) or 3.5
scripts/bootstrap.sh train,judge,quality
exec "$SLM_VENV/bin/python" jobs/pipeline.py "$@"
