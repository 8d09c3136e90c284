"""The validate stage: every suite in checks.suites_dir on its table's current version; fails after all ran.

Each table is checked as the gate of the stage that wrote it would check it: with that stage's
generated expectations for the config the table was written with (read from the commit's stamp), and
the row count of the input version it read.
"""

from __future__ import annotations

from slm_curator import delta
from slm_curator.checks.gate import DataQualityError
from slm_curator.checks.stage import RESULTS_TABLE, check_lines, failure_message, run_gate
from slm_curator.checks.suites import load_suite, suite_names
from slm_curator.stage import (
    Input,
    Stage,
    StageContext,
    StageResult,
    gate_params,
    read_stamp,
    resolve_input,
    section_from_stamp,
)


def _producer(stages: tuple[Stage, ...], table: str) -> Stage | None:
    return next((s for s in stages if s.output == table), None)


def _stamped_input(spark, cfg, stage: Stage, stamp: dict | None) -> Input | None:
    """The input version the table was computed from, when its stamp says; else the input's current one."""
    if (
        stamp
        and stamp.get("stage") == stage.name
        and stamp.get("input_table")
        and stamp.get("input_version") is not None
    ):
        ref = delta.table_ref(cfg.storage, stamp["input_table"])
        return Input(ref, int(stamp["input_version"]), stamp.get("where") or "")
    try:
        return resolve_input(stage, spark, cfg)
    except FileNotFoundError:
        return None


def validate_table(ctx: StageContext, name: str):
    """The gate report of one suite on its table's current version (None: no table), and its summary lines."""
    spark, cfg = ctx.spark, ctx.cfg
    ref = delta.table_ref(cfg.storage, load_suite(cfg.checks.suites_dir, name).table)
    version = delta.current_version(spark, ref)
    if version is None:
        return None, [f"checks {name}: no table {ref} yet"]
    stage = _producer(ctx.stages, ref.name)
    params, extra = {"max_doc_chars": cfg.ingest.max_doc_bytes}, None
    if stage is not None:
        stamp = read_stamp(spark, ref, version)
        params = gate_params(stage, spark, cfg, _stamped_input(spark, cfg, stage, stamp))
        section = section_from_stamp(stage, cfg, stamp)
        extra = stage.checks(section) if stage.checks and section is not None else None
    report = run_gate(
        spark, cfg, ctx.tracker, name, version, params, "validate", raise_on_error=False, extra=extra
    )
    return report, check_lines(name, version, report)


def validate_work(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg
    if not cfg.checks.enabled:
        checks, failures, validated = ["checks.enabled is false: nothing validated"], [], 0
    else:
        checks, failures, validated = [], [], 0
        for name in suite_names(cfg.checks.suites_dir):
            report, lines = validate_table(ctx, name)
            checks += lines
            validated += report is not None
            failures += [failure_message(report)] if report is not None and report.errors else []
    if failures:
        raise DataQualityError("\n".join(failures))
    results = delta.table_ref(cfg.storage, RESULTS_TABLE)
    return StageResult(
        input_rows=validated,
        output_rows=validated,
        new_rows=0,
        version=delta.current_version(ctx.spark, results),
        checks=checks,
    )


STAGE = Stage(
    name="validate",
    description="Great Expectations suites (conf/checks) on every table -> dq_results; exit 4 on errors",
    work=validate_work,
    output=RESULTS_TABLE,
)
