"""Gates: run a table's suite after the stage that wrote it, record results, stop on errors.

`run_gate` validates one table at one version with run-time parameters (the input's row count, the
fewest rows the stage may keep: `slm_curator.stage.gate_params`) and the expectations the stage
derives from its config. Results land in the `dq_results` Delta table keyed by table, version,
suite and parameters, so validating the same thing again reads the stored verdict instead of running
Spark jobs, and a re-run adds no rows (each verdict is one append, committed once per its key).
`require_passed` lets a stage refuse an input whose latest gate failed, which keeps a bad table from
flowing on when stages run as separate jobs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from slm_curator import delta
from slm_curator.checks.gate import DataQualityError, Outcome, run_suite
from slm_curator.checks.suites import Suite, load_suite, params_fingerprint
from slm_curator.config import PipelineConfig
from slm_curator.schemas import DQ_RESULTS

log = logging.getLogger(__name__)

RESULTS_TABLE = "dq_results"


@dataclass
class GateReport:
    suite: str
    table: str
    version: int
    outcomes: list[Outcome]
    reused: bool  # the stored verdict for this table version, suite and parameters was reused
    params: dict[str, Any]
    skipped: int = 0  # expectations needing an input table that does not exist

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed_error]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed_warn]

    def summary(self) -> str:
        passed = sum(o.success for o in self.outcomes)
        text = f"{passed}/{len(self.outcomes)} expectations passed"
        if self.warnings:
            text += f", {len(self.warnings)} warning(s)"
        if self.errors:
            text += f", {len(self.errors)} error(s)"
        if self.skipped:
            text += f", {self.skipped} skipped (no input table to compare with)"
        return text + (" (stored verdict)" if self.reused else "")


def failure_message(report: GateReport) -> str:
    lines = [f"data quality gate failed: {report.table}@v{report.version} (suite {report.suite})"]
    for o in report.errors:
        why = f"raised {o.exception}" if o.exception else f"observed {o.observed}"
        examples = json.loads(o.details or "{}").get("partial_unexpected_list")
        if examples:
            why += f", e.g. {json.dumps(examples[:5], default=str)}"
        lines.append(f"  {o.description}: {why}")
    return "\n".join(lines)


def check_lines(table: str, version: int, report: GateReport | None) -> list[str]:
    """The summary lines of one gate: its verdict, then each failed `warn` expectation."""
    if report is None:
        return []
    return [f"checks {table}@v{version}: {report.summary()}"] + [
        f"  warning: {o.description} observed {o.observed}" for o in report.warnings
    ]


def _verdict_key(table: str, version: int, suite: Suite, params_fp: str) -> str:
    return f"{table}\x1f{version}\x1f{suite.fingerprint}\x1f{params_fp}"


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _check_id(table: str, version: int, suite: Suite, params_fp: str, index: int) -> str:
    return _digest(f"{_verdict_key(table, version, suite, params_fp)}\x1f{index}")


# Outcome field -> dq_results column: the one mapping both writing and reading a verdict use.
OUTCOME_COLUMNS = {
    f.name: "expectation_index" if f.name == "index" else f.name for f in dataclasses.fields(Outcome)
}


def _stored(
    spark, cfg: PipelineConfig, table: str, version: int, suite: Suite, params_fp: str, expected: int
) -> list[Outcome] | None:
    from pyspark.sql import functions as F

    ref = delta.table_ref(cfg.storage, RESULTS_TABLE)
    if not delta.exists(spark, ref):
        return None
    rows = (
        delta.read(spark, ref)
        .where(
            (F.col("table") == table)
            & (F.col("table_version") == version)
            & (F.col("suite_fingerprint") == suite.fingerprint)
            & (F.col("params_fingerprint") == params_fp)
        )
        .collect()
    )
    if len(rows) != expected:
        return None
    outcomes = (Outcome(**{name: r[col] for name, col in OUTCOME_COLUMNS.items()}) for r in rows)
    return sorted(outcomes, key=lambda o: o.index)


def results_rows(report: GateReport, suite: Suite, stage: str, run_id: str | None, params_fp: str) -> list:
    """The `dq_results` rows (tuples in DQ_RESULTS order) of one verdict: one per outcome, by `check_id`."""
    from datetime import datetime

    common = {
        "checked_at": datetime.now(UTC).replace(tzinfo=None),
        "run_id": run_id or "",
        "stage": stage,
        "suite": suite.name,
        "suite_fingerprint": suite.fingerprint,
        "params": json.dumps(report.params, sort_keys=True, default=str),
        "params_fingerprint": params_fp,
        "table": report.table,
        "table_version": report.version,
    }
    rows = []
    for o in report.outcomes:
        row = common | {col: getattr(o, name) for name, col in OUTCOME_COLUMNS.items()}
        row["check_id"] = _check_id(report.table, report.version, suite, params_fp, o.index)
        rows.append(tuple(row[c] for c in DQ_RESULTS.fieldNames()))
    return rows


def _write_results(spark, cfg, report: GateReport, suite: Suite, stage: str, run_id: str | None, params_fp):
    frame = spark.createDataFrame(results_rows(report, suite, stage, run_id, params_fp), DQ_RESULTS)
    # An append that Delta commits once per (table, version, suite, parameters): the parameters fix
    # which expectations ran, so a repeat would add the same check_ids. Unlike a merge on check_id it
    # reads nothing of the growing results table, and concurrent gates never conflict (appends only):
    # benchmarks/gates.py measures both.
    txn = delta.Txn("slm-dq-" + _digest(_verdict_key(report.table, report.version, suite, params_fp)), 0)
    return delta.write(frame, delta.table_ref(cfg.storage, RESULTS_TABLE), "append", txn=txn)


def run_gate(
    spark,
    cfg: PipelineConfig,
    tracker,
    table: str,
    version: int,
    params: dict[str, Any],
    stage: str = "validate",
    raise_on_error: bool = True,
    extra=None,
) -> GateReport | None:
    """Validate `table`@`version` with its suite (plus the stage's generated `extra` checks); record,
    log, and raise `DataQualityError` on errors."""
    if not cfg.checks.enabled:
        return None
    suite = load_suite(cfg.checks.suites_dir, table, extra)
    ref = delta.table_ref(cfg.storage, suite.table)
    params_fp = params_fingerprint(params)
    skip = suite.unanswerable(params)
    if skip:
        log.warning(
            "checks: %s: %d expectation(s) need %s, which this run cannot supply (input table absent): skipped",
            suite.name,
            len(skip),
            ", ".join(sorted(suite.parameters() - set(params))),
        )
    expected = len(suite.expectations) - len(skip)
    stored = _stored(spark, cfg, ref.identifier, version, suite, params_fp, expected)
    if stored is not None:
        report = GateReport(suite.name, ref.identifier, version, stored, True, params, len(skip))
        log.info(
            "checks: %s@v%d already validated with suite %s: %s", ref, version, suite.name, report.summary()
        )
    else:
        log.info(
            "checks: validating %s@v%d with suite %s (%d expectations)",
            ref,
            version,
            suite.name,
            expected,
        )
        with tempfile.TemporaryDirectory(prefix="slm-dq-") as tmp:
            docs = str(Path(tmp) / "data_docs") if cfg.checks.data_docs and tracker.enabled else None
            outcomes, raw = run_suite(delta.read(spark, ref, version), suite, params, docs, skip)
            report = GateReport(suite.name, ref.identifier, version, outcomes, False, params, len(skip))
            _write_results(spark, cfg, report, suite, stage, tracker.active_run_id(), params_fp)
            _log_to_mlflow(tracker, report, raw, docs, tmp)
    for o in report.warnings:
        log.warning("checks: %s@v%d warning: %s observed %s", ref, version, o.description, o.observed)
    tracker.log_metrics(
        {
            f"dq_{suite.name}_passed": sum(o.success for o in report.outcomes),
            f"dq_{suite.name}_warnings": len(report.warnings),
            f"dq_{suite.name}_errors": len(report.errors),
        }
    )
    if report.errors and raise_on_error:
        raise DataQualityError(failure_message(report))
    return report


def _log_to_mlflow(tracker, report: GateReport, raw: list[dict], docs: str | None, tmp: str) -> None:
    if not tracker.enabled:
        return
    path = Path(tmp) / f"{report.suite}.json"
    payload = {
        "table": report.table,
        "version": report.version,
        "suite": report.suite,
        "params": report.params,
        "outcomes": [o.__dict__ for o in report.outcomes],
        "great_expectations": raw,
    }
    path.write_text(json.dumps(payload, indent=1, default=str))
    tracker.log_artifact(str(path), f"dq/{report.suite}")
    if docs and Path(docs).is_dir():
        tracker.log_artifact(docs, f"dq/{report.suite}")


def latest_errors(spark, cfg: PipelineConfig, table: str, version: int) -> list[str]:
    """Failed `error` expectations of the newest gate run on `table`@`version` ([] when none ran)."""
    ref = delta.table_ref(cfg.storage, RESULTS_TABLE)
    identifier = delta.table_ref(cfg.storage, table).identifier
    if not cfg.checks.enabled or not delta.exists(spark, ref):
        return []
    from pyspark.sql import functions as F

    rows = delta.read(spark, ref).where(F.col("table") == identifier).where(F.col("table_version") == version)
    newest = rows.agg(F.max("checked_at")).first()[0]
    if newest is None:
        return []
    failed = rows.where((F.col("checked_at") == newest) & ~F.col("success") & (F.col("severity") == "error"))
    return [f"{r['description']}: observed {r['observed']}" for r in failed.collect()]


def require_passed(spark, cfg: PipelineConfig, table: str, version: int | None, stage: str) -> None:
    """Refuse to read a table version whose newest gate failed (stages run as separate jobs)."""
    if version is None:
        return
    errors = latest_errors(spark, cfg, table, version)
    if errors:
        identifier = delta.table_ref(cfg.storage, table).identifier
        raise DataQualityError(
            f"{stage}: input {identifier}@v{version} failed its data quality gate; fix it and re-run the stage "
            "that wrote it (or change checks.*):\n  " + "\n  ".join(errors)
        )
