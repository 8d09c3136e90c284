"""Jobs as a user runs them: separate processes, real JVMs, exit codes and messages."""

from __future__ import annotations

import subprocess

import pytest
from tests.conftest import ROOT, venv_python

from slm_curator.config import ConfigError, load_config
from slm_curator.spark import check_delta_matches_pyspark, local_conf

pytestmark = pytest.mark.slow


def _run(args, tmp_path, timeout=600):
    return subprocess.run(
        [venv_python(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **_java_env()},
    )


def _java_env():
    import os

    keep = ("JAVA_HOME", "SPARK_LOCAL_IP", "LANG")
    return {k: os.environ[k] for k in keep if k in os.environ}


def test_delta_coordinate_must_match_the_pyspark_line():
    import pyspark

    line = ".".join(pyspark.__version__.split(".")[:2])
    other = "3.5" if line != "3.5" else "4.1"
    cfg = load_config(
        "local", [f"maven.packages.delta=io.delta:delta-spark_{other}_2.13:3.3.0"], conf_dir=ROOT / "conf"
    )
    with pytest.raises(ConfigError, match=f"built for Spark {other}, but pyspark is {line}"):
        check_delta_matches_pyspark(cfg)


def test_local_session_conf_has_delta_packages_and_small_machine_settings():
    cfg = load_config("local", ["maven.ivy_dir=/tmp/ivy-x"], conf_dir=ROOT / "conf")
    conf = local_conf(cfg)
    assert conf["spark.jars.packages"] == cfg.maven.lines[cfg.maven.spark_line]["delta"]
    assert conf["spark.jars.ivy"] == "/tmp/ivy-x"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.sql.shuffle.partitions"] == "4"
    no_resolve = local_conf(load_config("local", ["maven.resolve=false"], conf_dir=ROOT / "conf"))
    assert "spark.jars.packages" not in no_resolve


def test_the_ivy_cache_is_the_one_under_home_even_where_java_thinks_home_is_elsewhere(monkeypatch, tmp_path):
    """Java's user.home comes from the passwd entry, not $HOME: Spark is told the path explicitly, so the
    cache the set-up command warms is the one `--check` and the EMR test look in (a fresh CI HOME)."""
    from slm_curator.spark import ivy_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config("local", conf_dir=ROOT / "conf")
    assert ivy_dir(cfg) == tmp_path / ".ivy2.5.2"
    assert local_conf(cfg)["spark.jars.ivy"] == str(tmp_path / ".ivy2.5.2")


MISSING = "io.slmcurator.missing:no-such-artifact_2.13:0.0.1"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ([f"maven.packages.delta={MISSING}"], "maven.packages.delta"),
        # one missing package aborts the whole resolution: the message still names the right one
        ([f"maven.packages.extra={MISSING}", "spark.packages=[delta, extra]"], "maven.packages.extra"),
    ],
)
def test_unresolvable_maven_package_fails_naming_the_coordinate(tmp_path, overrides, key):
    sets = [arg for o in overrides for arg in ("--set", o)]
    proc = _run(
        [
            "-m",
            "slm_curator.spark",
            "--warm",
            *sets,
            "--set",
            f"maven.ivy_dir={tmp_path / 'ivy'}",
            "--set",
            f"storage.root={tmp_path / 'data'}",
        ],
        tmp_path,
    )
    assert proc.returncode == 2
    assert f"could not resolve Maven package {MISSING} (config key {key}" in proc.stderr


def test_delta_3_coordinate_must_match_the_scala_of_pyspark():
    import pyspark

    scala, other = ("2.12", "2.13") if pyspark.__version__.startswith("3.") else ("2.13", "2.12")
    cfg = load_config(
        "local", [f"maven.packages.delta=io.delta:delta-spark_{other}:3.3.3"], conf_dir=ROOT / "conf"
    )
    with pytest.raises(
        ConfigError, match=f"built for Scala {other}, but pyspark {pyspark.__version__} runs Scala {scala}"
    ):
        check_delta_matches_pyspark(cfg)
    check_delta_matches_pyspark(
        load_config(
            "local", [f"maven.packages.delta=io.delta:delta-spark_{scala}:3.3.3"], conf_dir=ROOT / "conf"
        )
    )
