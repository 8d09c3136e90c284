"""Data-quality gates: suites as data, each suite fed a table that violates it, results and MLflow."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from tests.conftest import ROOT

from slm_curator import delta
from slm_curator.checks.gate import DataQualityError
from slm_curator.checks.suites import (
    ExpectationSpec,
    load_suite,
    min_kept_rows,
    parse_suite,
    suite_names,
)
from slm_curator.config import ConfigError, load_config

SUITES = ROOT / "conf" / "checks"


# ---------------------------------------------------------------- suites as data (no Spark)


def test_every_suite_in_conf_parses_and_uses_only_parameters_the_stages_supply():
    assert {"documents", "filtered", "deduped", "scored"} <= set(suite_names(SUITES))
    for name in suite_names(SUITES):
        suite = load_suite(SUITES, name)
        assert suite.parameters() <= {"input_rows", "min_kept_rows", "max_doc_chars"}, name
        assert {e.severity for e in suite.expectations} <= {"error", "warn"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"expectations": [{"type": "expect_x", "severity": "fatal"}]}, "severity: 'fatal' is not allowed"),
        ({"expectations": [{"type": "expect_x", "view": "kept"}]}, "view: 'kept' is not defined"),
        ({"expectations": [{"type": "expect_x", "colum": "a"}]}, "unknown key 'colum'"),
        ({"expectations": [{"type": "check_x"}]}, "is not an expectation type"),
        ({"expectations": []}, "a non-empty list is required"),
        ({"table": "t", "suite": 1, "expectations": [{"type": "expect_x"}]}, "unknown key 'suite'"),
        ({"views": {"v": "SELECT 1"}, "expectations": [{"type": "expect_x"}]}, "reads from {table}"),
    ],
)
def test_suite_mistakes_name_the_file_entry_and_allowed_values(data, message):
    with pytest.raises(ConfigError, match="bad.yml") as info:
        parse_suite("bad", data, "bad.yml")
    assert message in str(info.value)


def test_min_kept_rows_and_descriptions():
    assert min_kept_rows(100, 0.9) == 10
    assert min_kept_rows(101, 0.9) == 11
    assert min_kept_rows(100, 0.0) == 100
    assert min_kept_rows(0, 0.5) == 0
    spec = ExpectationSpec(
        "expect_table_row_count_to_be_between",
        {"min_value": {"$PARAMETER": "min_kept_rows"}},
        "error",
        "kept",
    )
    assert (
        spec.describe({"min_kept_rows": 7})
        == "expect_table_row_count_to_be_between(min_value=$min_kept_rows=7) on view kept"
    )


def test_max_drop_fraction_config_errors_name_the_key():
    with pytest.raises(
        ConfigError, match=r"checks.max_drop_fraction.dedupe: unknown stage; allowed values: ingest"
    ):
        load_config("local", ["checks.max_drop_fraction.dedupe=0.5"], conf_dir=ROOT / "conf")
    with pytest.raises(ConfigError, match=r"checks.max_drop_fraction.filter: must be in \[0, 1\]"):
        load_config("local", ["checks.max_drop_fraction.filter=1.5"], conf_dir=ROOT / "conf")
    cfg = load_config("local", conf_dir=ROOT / "conf")
    assert Path(cfg.checks.suites_dir) == SUITES


# ---------------------------------------------------------------- gates on Spark tables

spark_only = pytest.mark.spark


@pytest.fixture
def checked(cfg):
    """The test config with gates on (the shared test config turns them off for speed)."""
    return dataclasses.replace(cfg, checks=dataclasses.replace(cfg.checks, enabled=True, data_docs=False))


def _write(spark, cfg, name: str, rows: list[dict], schema: str) -> int:
    frame = spark.createDataFrame(rows, schema)
    return delta.write(frame, delta.table_ref(cfg.storage, name), "overwrite").version


def _tracker(cfg):
    from slm_curator.tracking import Tracker

    return Tracker(dataclasses.replace(cfg, tracking=dataclasses.replace(cfg.tracking, enabled=False)))


DOCS_SCHEMA = "doc_id string, source string, source_id string, url string, text string, format string"


def _doc(i: int, text: str | None = None, doc_id: str | None = None) -> dict:
    return {
        "doc_id": doc_id or f"{i:032x}",
        "source": "web",
        "source_id": str(i),
        "url": None,
        "text": text
        if text is not None
        else f"document number {i} with enough words to pass the length check",
        "format": "jsonl",
    }


def _gate(spark, cfg, table, version, **params):
    """The table's gate as its stage runs it: with the filter's generated checks for `filtered`."""
    from slm_curator.checks.stage import run_gate
    from slm_curator.filters.stage import gate_checks

    base = {"input_rows": 0, "min_kept_rows": 0, "max_doc_chars": cfg.ingest.max_doc_bytes}
    extra = gate_checks(cfg.filter) if table == "filtered" else None
    return run_gate(spark, cfg, _tracker(cfg), table, version, base | params, extra=extra)


def _failure(spark, cfg, table: str, rows: list[dict], schema: str, **params) -> str:
    """Write `rows` as `table`, run its gate, and return the message of the DataQualityError it must raise."""
    version = _write(spark, cfg, table, rows, schema)
    with pytest.raises(DataQualityError) as info:
        _gate(spark, cfg, table, version, **params)
    return str(info.value)


@spark_only
def test_documents_suite_stops_on_duplicates_and_empty_text_and_warns_on_short_ones(spark, checked):
    """Clean tables pass this suite in tests/test_pipeline_job.py; here each kind of violation."""
    from slm_curator.checks.stage import failure_message

    rows = [_doc(i) for i in range(20)] + [_doc(99, doc_id=f"{3:032x}"), _doc(100, text="")]
    rows += [_doc(200 + i, text="tiny") for i in range(3)]  # 3 of 25 under 20 characters: over 5%
    version = _write(spark, checked, "documents", rows, DOCS_SCHEMA)
    with pytest.raises(DataQualityError) as info:
        _gate(spark, checked, "documents", version, input_rows=25, min_kept_rows=12)
    message = str(info.value)
    assert f"{delta.table_ref(checked.storage, 'documents')}@v{version}" in message
    assert "expect_column_values_to_be_unique(column=doc_id)" in message
    assert '"unexpected_count": 2' in message  # both rows sharing the id
    assert "expect_column_value_lengths_to_be_between(column=text, min_value=1" in message
    assert "expect_column_values_to_be_in_set" not in message  # the passing ones are not blamed

    # The same verdict, read back (stored) without raising: the warning is reported, not an error.
    from slm_curator.checks.stage import run_gate

    params = {"input_rows": 25, "min_kept_rows": 12, "max_doc_chars": checked.ingest.max_doc_bytes}
    report = run_gate(spark, checked, _tracker(checked), "documents", version, params, raise_on_error=False)
    assert report.reused and failure_message(report) == message
    [warning] = report.warnings
    assert warning.expectation == "expect_column_value_lengths_to_be_between" and warning.severity == "warn"
    assert json.loads(warning.observed)["unexpected_count"] == 4  # the three short ones and the empty one


def _filtered_rows(cfg, n: int, reasons=None) -> tuple[list[dict], str]:
    from slm_curator.filters.document import signal_names

    names = signal_names(cfg.filter)
    schema = (
        "doc_id string, text_clean string, keep boolean, drop_reasons array<string>, language string, "
        f"language_score double, signals struct<{', '.join(f'`{n}`: double' for n in names)}>"
    )
    rows = []
    for i in range(n):
        why = (reasons or {}).get(i, [])
        rows.append(
            {
                "doc_id": f"{i:032x}",
                "text_clean": "some text",
                "keep": not why,
                "drop_reasons": why,
                "language": "en",
                "language_score": 0.9,
                "signals": dict.fromkeys(names, 0.5),
            }
        )
    return rows, schema


@spark_only
def test_filtered_suite_stops_on_lost_rows_unknown_reasons_bad_signals_and_too_many_drops(spark, checked):
    from slm_curator.checks.stage import require_passed

    rows, schema = _filtered_rows(checked, 12, {i: ["gopher_short_doc"] for i in range(1, 9)})
    rows[3]["drop_reasons"] = ["made_up_reason"]
    rows[10]["keep"] = False  # dropped without a reason
    rows[11]["signals"] = {k: (7.0 if k.endswith("ratio") else v) for k, v in rows[11]["signals"].items()}
    version = _write(spark, checked, "filtered", rows, schema)
    with pytest.raises(DataQualityError) as info:
        _gate(spark, checked, "filtered", version, input_rows=13, min_kept_rows=min_kept_rows(13, 0.6))
    message = str(info.value)
    assert "expect_table_row_count_to_equal(value=$input_rows=13): observed 12" in message
    assert 'e.g. ["made_up_reason"]' in message
    assert "on view keep_mismatch: observed 1" in message
    assert "_ratio, min_value=0.0, max_value=1.0): observed" in message  # a signal outside its range
    # cross-stage: 9 of 13 input rows dropped, at most 60% may be
    assert (
        "expect_table_row_count_to_be_between(min_value=$min_kept_rows=6) on view kept: observed 3" in message
    )
    # A later stage, run as its own job, refuses this table version.
    with pytest.raises(DataQualityError, match=r"export: input .*filtered@v\d+ failed its data quality gate"):
        require_passed(spark, checked, "filtered", version, "export")
    require_passed(spark, checked, "filtered", version + 1, "export")  # a version never validated


DEDUP_SCHEMA = "doc_id string, cluster_id string, keep boolean, is_duplicate boolean, duplicate_of string, cluster_size long"


def _dedup_row(doc_id, cluster_id, rep, size, duplicate_of=None, keep=None):
    keep = rep if keep is None else keep
    return {"doc_id": doc_id, "cluster_id": cluster_id, "keep": keep, "is_duplicate": not rep,
            "duplicate_of": duplicate_of, "cluster_size": size}  # fmt: skip


@spark_only
def test_deduped_suite_stops_on_two_representatives_or_none(spark, checked):
    good = [
        _dedup_row("a", "c1", True, 2),
        _dedup_row("b", "c1", False, 2, "a"),
        _dedup_row("c", "c2", True, 1),
    ]
    version = _write(spark, checked, "deduped", good, DEDUP_SCHEMA)
    assert not _gate(spark, checked, "deduped", version, input_rows=3, min_kept_rows=1).errors
    bad = [
        _dedup_row("a", "c1", True, 2),
        _dedup_row("b", "c1", False, 3, None),  # no representative named; a wrong size
        _dedup_row("c", "c2", True, 2),
        _dedup_row("d", "c2", True, 2),  # a second representative
        _dedup_row("e", "c3", False, 1, "x"),  # a cluster without one
        _dedup_row("f", None, True, 1),
    ]
    message = _failure(spark, checked, "deduped", bad, DEDUP_SCHEMA, input_rows=6, min_kept_rows=1)
    assert "expect_column_values_to_be_unique(column=cluster_id) on view representatives" in message
    assert (
        "expect_column_values_to_be_in_set(column=representatives, value_set=[1]) on view clusters" in message
    )
    assert "expect_column_values_to_not_be_null(column=duplicate_of) on view duplicates" in message
    assert "expect_column_pair_values_to_be_equal(column_A=members, column_B=cluster_size)" in message
    assert "expect_column_values_to_not_be_null(column=cluster_id)" in message


SCORED_SCHEMA = (
    "doc_id string, quality_score double, quality_int int, quality_model string, quality_model_version string"
)


@spark_only
def test_scored_suite_stops_on_out_of_range_scores_and_missing_model_version(spark, checked):
    good = [
        {
            "doc_id": str(i),
            "quality_score": i / 4,
            "quality_int": round(i / 4),
            "quality_model": "models:/q@champion",
            "quality_model_version": "3",
        }
        for i in range(8)
    ]
    version = _write(spark, checked, "scored", good, SCORED_SCHEMA)
    assert not _gate(spark, checked, "scored", version, input_rows=8, min_kept_rows=8).errors
    bad = [dict(r) for r in good]
    bad[0]["quality_score"] = 7.5
    bad[1]["quality_model_version"] = None
    bad[2]["quality_score"] = None
    message = _failure(spark, checked, "scored", bad, SCORED_SCHEMA, input_rows=8, min_kept_rows=8)
    assert "expect_column_values_to_be_between(column=quality_score, min_value=0.0, max_value=5.0)" in message
    assert "expect_column_values_to_not_be_null(column=quality_model_version)" in message
    assert "on view scored: observed 7" in message  # a row left without a score


@spark_only
def test_results_table_holds_every_outcome_once_and_a_rerun_reuses_the_verdict(spark, checked):
    version = _write(spark, checked, "deduped", [_dedup_row("a", "c", True, 1)], DEDUP_SCHEMA)
    first = _gate(spark, checked, "deduped", version, input_rows=1, min_kept_rows=1)
    results = delta.table_ref(checked.storage, "dq_results")
    rows_before = delta.read(spark, results).count()
    version_before = delta.current_version(spark, results)
    again = _gate(spark, checked, "deduped", version, input_rows=1, min_kept_rows=1)
    assert again.reused and not first.reused
    assert [o.success for o in again.outcomes] == [o.success for o in first.outcomes]
    assert (
        delta.read(spark, results).count() == rows_before == len(load_suite(SUITES, "deduped").expectations)
    )
    assert delta.current_version(spark, results) == version_before
    stored = delta.read(spark, results).where("expectation_index = 0").first()
    assert stored["table_version"] == version and stored["suite"] == "deduped" and stored["success"]
    assert json.loads(stored["params"]) == {"input_rows": 1, "min_kept_rows": 1, "max_doc_chars": 2000000}


@spark_only
def test_gate_logs_json_and_data_docs_to_mlflow(spark, checked):
    import mlflow

    from slm_curator.checks.stage import run_gate
    from slm_curator.tracking import Tracker

    cfg = dataclasses.replace(checked, checks=dataclasses.replace(checked.checks, data_docs=True))
    version = _write(
        spark,
        cfg,
        "scored",
        [
            {
                "doc_id": "a",
                "quality_score": 1.0,
                "quality_int": 1,
                "quality_model": "m",
                "quality_model_version": "1",
            }
        ],
        SCORED_SCHEMA,
    )
    tracker = Tracker(cfg)
    with tracker.pipeline_run("dq") as run_id:
        report = run_gate(spark, cfg, tracker, "scored", version, {"input_rows": 1, "min_kept_rows": 1})
    assert report.warnings  # a single score has no spread: the stdev warning
    client = mlflow.tracking.MlflowClient()
    files = [a.path for a in client.list_artifacts(run_id, "dq/scored")]
    assert "dq/scored/scored.json" in files and "dq/scored/data_docs" in files
    local = Path(client.download_artifacts(run_id, "dq/scored"))
    payload = json.loads((local / "scored.json").read_text())
    assert payload["version"] == version and len(payload["outcomes"]) == len(report.outcomes)
    html = list((local / "data_docs").rglob("*.html"))
    assert any(p.name == "index.html" for p in html)
    validation_pages = [p for p in html if "validations" in p.parts]
    assert len(validation_pages) == 3  # both views, then the failed (warn) expectation with details
    table_page = next(p for p in validation_pages if ".table.boolean_only" in p.name).read_text()
    assert "quality_score" in table_page and "quality_model_version" in table_page
    metrics = client.get_run(run_id).data.metrics
    assert metrics["dq_scored_errors"] == 0 and metrics["dq_scored_warnings"] == len(report.warnings)


@spark_only
def test_validate_job_stops_with_exit_4_on_a_table_that_violates_its_suite(spark, checked, capsys):
    """The validate stage (a Databricks task, jobs/validate.py) checks every table that exists."""
    from slm_curator import cli

    bad = [
        {
            "doc_id": str(i),
            "quality_score": 9.0,
            "quality_int": 5,
            "quality_model": "m",
            "quality_model_version": "1",
        }
        for i in range(4)
    ]
    version = _write(spark, checked, "scored", bad, SCORED_SCHEMA)
    code = cli.main(
        [
            "validate",
            "--conf-dir",
            str(ROOT / "conf"),
            "--set",
            f"storage.root={checked.storage.root}",
            "--set",
            "checks.data_docs=false",
            "--set",
            "spark.show_progress=false",
        ]
    )
    err = capsys.readouterr().err
    assert code == 4, err
    assert f"tables/scored@v{version} (suite scored)" in err
    assert "expect_column_values_to_be_between(column=quality_score, min_value=0.0, max_value=5.0)" in err
