"""The EMR path: scripts/emr_package.sh builds a venv-pack archive, and spark-submit runs a job with it.

As on EMR, the archive ships through `--archives ...#environment` and executors run
`./environment/bin/python` from their own working directory: `local-cluster` mode starts a real
standalone worker and executor JVM (plain `local` mode runs tasks in the driver's directory, where the
relative path does not exist). pyspark comes from the Spark installation, not the archive, and Delta
from jars on the command line (EMR: /usr/share/aws/delta/lib; here: the jars the Ivy cache holds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from tests.conftest import ROOT

from slm_curator.config import load_config, running_spark_line
from slm_curator.delta import to_arrow
from slm_curator.sample_corpus import write_sample_corpus
from slm_curator.spark import ivy_dir


def line_jars(cfg) -> list[str]:
    """The Ivy cache's jars for the installed Spark line (EMR puts one line's Delta on the classpath).

    The cache may hold both lines' builds (a 3.5 venv shares it); mixing Scala 2.12 and 2.13 classes
    fails at the first task. Delta's own jars are kept at this line's Delta version only."""
    delta_version = cfg.maven.packages["delta"].rsplit(":", 1)[1]
    other_scala = "_2.13" if cfg.maven.spark_line.startswith("3.") else "_2.12"
    keep = []
    for jar in sorted((ivy_dir(cfg) / "jars").glob("*.jar")):
        name = jar.name
        if other_scala in name or (
            name.startswith("io.delta_") and not name.endswith(f"-{delta_version}.jar")
        ):
            continue
        keep.append(str(jar))
    return keep


pytestmark = pytest.mark.slow


def test_venv_pack_archive_runs_a_job_under_spark_submit_with_executors_on_the_archive(tmp_path):
    archive = tmp_path / "slm_curator_emr.tar.gz"
    build = subprocess.run(
        ["bash", "scripts/emr_package.sh", "--compress-level", "1", str(archive)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        # The archive is built for the Spark line this interpreter runs (EMR 8.1: 4.1, EMR 7.x: 3.5).
        env={**os.environ, "PYTHON": sys._base_executable, "SLM_SPARK_LINE": running_spark_line()},
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    delta_version = load_config("local", conf_dir=ROOT / "conf").maven.packages["delta"].rsplit(":", 1)[1]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert any(n.endswith("site-packages/slm_curator/pipeline.py") for n in names)
        assert any("site-packages/tokenizers/" in n for n in names)  # export runs on the CPU cluster too
        assert any("site-packages/great_expectations/" in n for n in names)
        assert any("site-packages/slm_curator_native/" in n for n in names)  # the filter's compiled kernels
        # delta-spark's Python side at the version of the line's jar
        assert any(f"site-packages/delta_spark-{delta_version}.dist-info" in n for n in names)
        assert not any("site-packages/pyspark/" in n for n in names), (
            "EMR brings pyspark; it must not be packed"
        )
        driver = tmp_path / "driver-env"
        # The "tar" filter where tarfile has filters (3.10.12+, 3.11.4+, 3.12); Debian 12's 3.11.2 has none.
        tar.extractall(driver, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))

    jars = line_jars(load_config("local", conf_dir=ROOT / "conf"))
    assert any("delta-spark" in j for j in jars)
    src = write_sample_corpus(tmp_path / "corpus", documents=60)
    import pyspark

    spark_home = str(Path(pyspark.__file__).parent)  # the Spark installation: stands in for EMR's
    proc = subprocess.run(
        [
            str(Path(spark_home) / "bin" / "spark-submit"),
            "--master",
            "local-cluster[1,2,1024]",  # one worker, two cores, its own executor JVM and directory
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
            str(ROOT / "jobs" / "ingest.py"),  # finds conf/ beside jobs/
            "--env",
            "emr",
            "--quiet",
            "--input",
            str(src),
            "--set",
            f"storage.root={tmp_path / 'data'}",
            "--set",
            f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,  # not the project: the job imports slm_curator from the archive
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
            "SPARK_HOME": spark_home,  # EMR: /usr/lib/spark
            "PYSPARK_DRIVER_PYTHON": str(driver / "bin" / "python"),
            "PYSPARK_PYTHON": "./environment/bin/python",
        },
    )
    # spark-submit relays the Python driver's stderr (a traceback) on its stdout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # Every file was parsed on the executor (mapInPandas) by the archive's Python and readers.
    line = next(x for x in proc.stdout.splitlines() if x.startswith("ingest")).split()
    rows = to_arrow(str(tmp_path / "data" / "tables" / "documents"), columns=["doc_id"]).num_rows
    assert int(line[2]) == rows > 50
    assert "checks documents@v0: 9/9 expectations passed" in proc.stdout  # GX from the archive, driver side
