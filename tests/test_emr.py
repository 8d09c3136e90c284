"""The EMR path: scripts/emr_package.sh builds a venv-pack archive, and spark-submit runs jobs with it.

As on EMR, the archive ships through `--archives ...#environment`, executors run
`./environment/bin/python`, pyspark comes from the Spark installation (not the archive), and Delta comes
from jars on the command line (EMR: /usr/share/aws/delta/lib; here: the jars the Ivy cache holds).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from tests.conftest import ROOT

from slm_curator.config import load_config
from slm_curator.spark import ivy_dir

pytestmark = pytest.mark.slow


def test_venv_pack_archive_runs_ingest_and_filter_under_spark_submit(tmp_path):
    archive = tmp_path / "slm_curator_emr.tar.gz"
    build = subprocess.run(
        ["bash", "scripts/emr_package.sh", "--compress-level", "1", str(archive)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys._base_executable},
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert any(n.endswith("site-packages/slm_curator/pipeline.py") for n in names)
        assert any("site-packages/great_expectations/" in n for n in names)
        assert not any("site-packages/pyspark/" in n for n in names), (
            "EMR brings pyspark; it must not be packed"
        )
        driver = tmp_path / "driver-env"
        tar.extractall(driver, filter="tar")

    jars = sorted(
        str(p) for p in (ivy_dir(load_config("local", conf_dir=ROOT / "conf")) / "jars").glob("*.jar")
    )
    assert any("delta-spark" in j for j in jars)
    src = tmp_path / "docs.jsonl"
    words = "The committee reviewed the proposal and agreed that the plan was sound and should go ahead. "
    src.write_text(
        "".join(json.dumps({"id": i, "text": f"Report {i}. " + words * 8}) + "\n" for i in range(40))
    )
    submit = Path(sys.executable).parent / "spark-submit"  # stands in for EMR's /usr/bin/spark-submit

    def spark_submit(job: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                str(submit),
                "--master",
                "local[2]",
                "--archives",
                f"{archive}#environment",
                "--jars",
                ",".join(jars),
                "--conf",
                "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
                "--conf",
                "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
                "--conf",
                "spark.ui.showConsoleProgress=false",
                job,
                "--env",
                "emr",
                "--quiet",
                "--set",
                f"storage.root={tmp_path / 'data'}",
                "--set",
                f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,  # not the project: the job must import slm_curator from the archive
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
                "PYSPARK_DRIVER_PYTHON": str(driver / "bin" / "python"),
                "PYSPARK_PYTHON": "./environment/bin/python",
            },
        )

    ingest = spark_submit(str(ROOT / "jobs" / "ingest.py"), "--input", str(src))
    assert ingest.returncode == 0, ingest.stderr[-4000:]
    assert next(x for x in ingest.stdout.splitlines() if x.startswith("ingest")).split()[1:4] == [
        "40",
        "40",
        "40",
    ]
    # filter runs a pandas UDF: executors import slm_curator and its text libraries from the archive.
    filtered = spark_submit(str(ROOT / "jobs" / "filter.py"))  # finds conf/ beside jobs/, as on EMR
    assert filtered.returncode == 0, filtered.stderr[-4000:]
    assert next(x for x in filtered.stdout.splitlines() if x.startswith("filter")).split()[1] == "40"
    assert "checks filtered@v0" in filtered.stdout
