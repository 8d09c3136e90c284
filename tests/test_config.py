"""Config: overlays, typed overrides, and errors that name the key before anything starts."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.conftest import ROOT

from slm_curator.config import ConfigError, PipelineConfig, load_config, parse_override, running_spark_line

CONF = ROOT / "conf"


def test_defaults_and_local_overlay():
    cfg = load_config("local", conf_dir=CONF)
    assert isinstance(cfg, PipelineConfig)
    assert cfg.env == "local"
    assert cfg.spark.master == "local[2]"
    assert cfg.spark.conf["spark.sql.shuffle.partitions"] == "4"
    assert cfg.maven.packages["delta"] == cfg.maven.lines[cfg.maven.spark_line]["delta"]
    # relative storage roots resolve against the project, not the working directory
    assert cfg.storage.root == str((ROOT / "data").resolve())


def test_databricks_overlay_uses_unity_catalog_and_no_resolution():
    cfg = load_config("databricks", conf_dir=CONF)
    assert (cfg.storage.catalog, cfg.storage.schema) == ("main", "slm_curator")
    assert cfg.maven.resolve is False
    assert cfg.tracking.tracking_uri == "databricks"


def test_overrides_are_typed_and_applied_in_order():
    cfg = load_config(
        "local",
        [
            "ingest.max_doc_bytes=1000",
            "ingest.text_mode=paragraph",
            "ingest.max_doc_bytes=2000",
            'ingest.input=["a.jsonl", "b/"]',
            "spark.conf.spark.sql.shuffle.partitions=8",
        ],
        conf_dir=CONF,
    )
    assert cfg.ingest.max_doc_bytes == 2000
    assert cfg.ingest.text_mode == "paragraph"
    assert cfg.ingest.input == ["a.jsonl", "b/"]
    assert cfg.spark.conf["spark.sql.shuffle.partitions"] == "8"
    assert cfg.spark.conf["spark.driver.memory"] == "4g"  # merged, not replaced


def test_the_documented_filter_override_works():
    assert (
        load_config("local", ["filter.gopher.min_doc_words=30"], conf_dir=CONF).filter.gopher.min_doc_words
        == 30
    )


def test_single_path_override_becomes_a_list():
    assert load_config("local", ["ingest.input=data/x.jsonl"], conf_dir=CONF).ingest.input == ["data/x.jsonl"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("ingest.max_doc_bytes=big", "ingest.max_doc_bytes: expected an integer, got 'big'"),
        (
            "ingest.text_mode=lines",
            "ingest.text_mode: 'lines' is not allowed; allowed values: 'file', 'paragraph'",
        ),
        ("ingest.bogus=1", "unknown key ingest.bogus; allowed keys under ingest:"),
        ("filtr.gopher.min_doc_words=30", "unknown key filtr; allowed keys under the top level:"),
        (
            "filter.gopher.min_words=30",
            "unknown key filter.gopher.min_words; allowed keys under filter.gopher:",
        ),
        ("filter.gopher.min_doc_words=lots", "filter.gopher.min_doc_words: expected an integer"),
        ("ingest.html_main_content=maybe", "ingest.html_main_content: expected true or false"),
        ("ingest.source=[a, b]", "ingest.source: expected a string"),
        (
            "spark.packages=[delta, nope]",
            f"spark.packages: 'nope' is not declared for Spark {running_spark_line()}; allowed values: delta, spark_nlp",
        ),
        (
            "maven.packages.delta=io.delta:delta-spark",
            "maven.packages.delta: 'io.delta:delta-spark' is not a group:artifact:version",
        ),
        ("storage.catalog=main", "storage.catalog and storage.schema: set both"),
        ("ingest.max_doc_bytes=0", "ingest.max_doc_bytes: must be a positive integer"),
        ("ingest.max_doc_bytes", "must look like section.key=value"),
    ],
)
def test_errors_name_the_key_and_what_is_allowed(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config("local", [override], conf_dir=CONF)
    assert expected in str(err.value)


def test_unknown_env_lists_environments():
    with pytest.raises(
        ConfigError, match="env: 'staging' is not allowed; allowed values: local, databricks, emr"
    ):
        load_config("staging", conf_dir=CONF)


def test_yaml_file_errors_name_the_key(tmp_path):
    (tmp_path / "pipeline.yml").write_text("ingest:\n  max_doc_bytes: lots\n")
    with pytest.raises(ConfigError, match="ingest.max_doc_bytes: expected an integer"):
        load_config("local", conf_dir=tmp_path)


def test_every_shipped_yaml_file_loads():
    for env in ("local", "databricks", "emr"):
        load_config(env, conf_dir=CONF)


def test_flat_params_cover_every_leaf():
    flat = load_config("local", conf_dir=CONF).flat()
    assert flat["ingest.text_field"] == "text"
    assert flat["maven.packages.delta"].startswith("io.delta:")
    assert all(not isinstance(v, dict) for v in flat.values())


def test_parse_override_uses_yaml_types():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a.b=0.5") == (["a", "b"], 0.5)
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a.b=x=y") == (["a", "b"], "x=y")


def test_job_fails_on_bad_config_before_spark_starts():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "ingest.py"), "--set", "ingest.max_doc_bytes=lots"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "config error: ingest.max_doc_bytes: expected an integer, got 'lots'" in proc.stderr
    assert "SparkContext" not in proc.stderr and "Ivy" not in proc.stderr


def test_readme_configuration_reference_is_generated_from_the_config_classes():
    from slm_curator import config_reference

    readme = (ROOT / "README.md").read_text()
    assert config_reference.markdown() in readme, "stale: run python -m slm_curator.config_reference --update"
    keys = [row[0] for row in config_reference.rows()]
    assert "checks.max_drop_fraction" in keys and "filter.gopher.min_doc_words" in keys
    assert all(meaning for _, _, _, meaning in config_reference.rows()), "a config field has no comment"


def test_maven_coordinates_follow_the_spark_line():
    import pyspark

    cfg = load_config("local", conf_dir=CONF)
    assert cfg.maven.spark_line == running_spark_line() == ".".join(pyspark.__version__.split(".")[:2])
    new = load_config("local", ["maven.spark_line=4.1"], conf_dir=CONF)
    assert new.maven.packages["delta"] == "io.delta:delta-spark_4.1_2.13:4.2.0"
    old = load_config("local", ["maven.spark_line=3.5"], conf_dir=CONF)
    assert old.maven.packages["delta"] == "io.delta:delta-spark_2.12:3.3.3"
    assert old.maven.packages["spark_nlp"].split(",") == [
        "com.johnsnowlabs.nlp:spark-nlp_2.12:5.5.3",
        "org.tensorflow:tensorflow-core-api:0.4.2",
    ]
    # An override wins on whatever line; the line's other names stay.
    mirror = load_config(
        "local", ["maven.spark_line=3.5", "maven.packages.delta=my.org:delta-spark_2.12:3.3.3"], conf_dir=CONF
    )
    assert mirror.maven.packages["delta"] == "my.org:delta-spark_2.12:3.3.3"
    assert mirror.maven.packages["spark_nlp"] == old.maven.packages["spark_nlp"]
    assert mirror.flat()["maven.packages.delta"] == "my.org:delta-spark_2.12:3.3.3"
    with pytest.raises(
        ConfigError, match=r"maven.spark_line: '3.4' has no coordinates; allowed values: 3.5, 4.1"
    ):
        load_config("local", ["maven.spark_line=3.4"], conf_dir=CONF)
    with pytest.raises(ConfigError, match=r"maven.packages.spark_nlp: 'a:b' is not a group:artifact:version"):
        load_config("local", ["maven.packages.spark_nlp=x:y:1,a:b"], conf_dir=CONF)
    with pytest.raises(ConfigError, match=r"maven.excludes.3.5: 'nogroup' is not a group:artifact pair"):
        load_config("local", ["maven.excludes.3.5=[nogroup]"], conf_dir=CONF)


def test_spark_35_session_conf_excludes_what_maven_central_does_not_serve():
    from slm_curator.spark import local_conf, maven_coordinates

    cfg = load_config("local", ["maven.spark_line=3.5", "spark.packages=[delta, spark_nlp]"], conf_dir=CONF)
    assert maven_coordinates(cfg) == [
        "io.delta:delta-spark_2.12:3.3.3",
        "com.johnsnowlabs.nlp:spark-nlp_2.12:5.5.3",
        "org.tensorflow:tensorflow-core-api:0.4.2",
    ]
    conf = local_conf(cfg)
    assert conf["spark.jars.packages"] == ",".join(maven_coordinates(cfg))
    assert "com.johnsnowlabs.nlp:tensorflow-cpu_2.12" in conf["spark.jars.excludes"].split(",")
    assert "spark.jars.excludes" not in local_conf(
        load_config("local", ["maven.spark_line=4.1"], conf_dir=CONF)
    )
