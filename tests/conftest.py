"""Shared fixtures: one local Spark session with the real Delta jar for the whole run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or a skip saying why (it exists on developer machines and CI only)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"{path} is not present: ../shared/data ships with developer machines and CI, not user clones"
        )
    return path


def pytest_collection_modifyitems(config, items):
    """Tests that start JVMs or processes first, then Spark and model tests (marked, or asking for the
    `spark` fixture), then the rest (a stable sort: file order is kept within each kind). With
    pytest-xdist each file stays on one worker and files go out in this order (scripts/test.sh passes
    --no-loadscope-reorder), so the minutes-long files are not the last ones handed out while the
    other worker sits idle."""

    def kind(item) -> int:
        marks = {m.name for m in item.iter_markers()}
        if "slow" in marks:
            return 0
        return 1 if marks & {"spark", "model"} or "spark" in getattr(item, "fixturenames", ()) else 2

    items.sort(key=kind)


@pytest.fixture(scope="session")
def base_config(tmp_path_factory):
    from slm_curator.config import load_config

    root = tmp_path_factory.mktemp("data")
    overrides = [
        f"storage.root={root}",
        "spark.show_progress=false",
        "spark.conf.spark.sql.shuffle.partitions=2",
        # Gates cost seconds of Spark jobs per stage call; tests/test_checks.py and the job tests run them.
        "checks.enabled=false",
    ]
    return load_config("local", overrides, conf_dir=ROOT / "conf")


@pytest.fixture(scope="session")
def spark(base_config):
    from slm_curator.spark import get_spark

    session = get_spark(base_config, app_name="slm-curator-tests")
    yield session
    session.stop()


@pytest.fixture
def cfg(base_config, tmp_path):
    """A config whose tables and MLflow store live in this test's own folder."""
    import dataclasses

    storage = dataclasses.replace(base_config.storage, root=str(tmp_path / "data"))
    return dataclasses.replace(base_config, storage=storage)


@pytest.fixture(autouse=True)
def _no_ambient_mlflow(monkeypatch):
    # A developer's MLFLOW_TRACKING_URI must not receive test runs.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield


def venv_python() -> str:
    import sys

    return os.environ.get("SLM_TEST_PYTHON", sys.executable)


def job_env(tmp_path) -> dict[str, str]:
    """A job subprocess's environment as a fresh shell has it: a bare PATH, HOME in the test's folder."""
    keep = ("JAVA_HOME", "SPARK_LOCAL_IP", "LANG", "XDG_CACHE_HOME")
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        **{k: os.environ[k] for k in keep if k in os.environ},
    }


def job_args(tmp_path, corpus, *extra: str) -> list[str]:
    """`--input corpus` and the --set flags that keep a job run inside `tmp_path` (jars from the cache)."""
    from slm_curator.config import load_config
    from slm_curator.spark import ivy_dir

    sets = [
        f"storage.root={tmp_path / 'data'}",
        f"maven.ivy_dir={ivy_dir(load_config('local', conf_dir=ROOT / 'conf'))}",
        "spark.show_progress=false",
        "checks.data_docs=false",
        *extra,
    ]
    return ["--input", str(corpus), *[a for s in sets for a in ("--set", s)]]
