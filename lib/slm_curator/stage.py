"""The stage contract, and the one runner every stage goes through.

A stage declares its name, the config section holding its `input_table` and `where`, the tables it
reads by default and the table it writes, and its own work: `work(ctx) -> StageResult`. The runner
does the rest, the same way for every stage: it pins the input table's version, refuses an input
whose data-quality gate failed, opens the stage's MLflow child run, logs the input and output tables
as datasets at their versions, runs the output table's gate, times the stage and builds its summary
row. The command line of every job is generated from the same declarations (`slm_curator.cli`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slm_curator import delta
from slm_curator.config import ConfigError, PipelineConfig
from slm_curator.fingerprint import fingerprint
from slm_curator.tracking import Tracker

log = logging.getLogger("slm_curator")


@dataclass(frozen=True)
class Argument:
    """An extra flag of a stage's job: it sets a config key (`config_key`) or a keyword of its work (`option`)."""

    flag: str
    help: str
    config_key: str = ""  # repeatable: every value goes into this list-valued key
    option: str = ""  # a boolean switch passed to the work as ctx.options[option]
    metavar: str = "VALUE"
    in_pipeline: bool = False  # the main job offers it too


@dataclass(frozen=True)
class Checks:
    """Gate expectations a stage derives from its config (the filter's signals and reasons), with their views."""

    views: dict[str, str] = field(default_factory=dict)
    expectations: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Input:
    """The input table at the version this run reads, and the rows it selects."""

    ref: delta.TableRef
    version: int
    where: str = ""

    def read(self, spark):
        frame = delta.read(spark, self.ref, self.version)
        return frame.where(self.where) if self.where else frame


@dataclass
class StageResult:
    """What a stage's own work reports; the runner turns it into lineage, a gate and a summary row."""

    input_rows: int
    output_rows: int
    new_rows: int
    version: int | None = None  # of the stage's output table
    location: str = ""  # printed instead of output@version (train: the model URI)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    outputs: list[tuple[delta.TableRef, int | None]] = field(default_factory=list)  # more output tables
    validate: bool = True  # False when nothing was written (a dry run)
    gate_input_rows: int | None = None  # the gate's input_rows, when not the input table's row count
    checks: list[str] = field(default_factory=list)  # verdict lines of tables the work validated itself


@dataclass(frozen=True)
class Stage:
    name: str
    description: str  # one line: what the job does (its --help)
    work: Callable[[StageContext], StageResult]
    section: str = ""  # config section holding input_table (and where); empty: no input table
    inputs: tuple[str, ...] = ()  # default input tables, first that exists, when input_table is empty
    output: str = ""  # the table written and gated (conf/checks/<output>.yml), if any
    checks: Callable[[Any], Checks] | None = None  # generated expectations, from the stage's section
    input_rows: Callable[[Any, PipelineConfig], int] | None = None  # gate input rows without an input table
    needs_spark: Callable[[PipelineConfig], bool] = lambda cfg: True
    arguments: tuple[Argument, ...] = ()
    worker: Callable[[PipelineConfig], Any] | None = None  # what ranks > 0 of torchrun run instead
    in_default: bool = True  # the main job runs it unless --stages says otherwise


@dataclass
class StageContext:
    spark: Any
    cfg: PipelineConfig
    tracker: Tracker
    stage: Stage
    input: Input | None
    options: dict[str, Any]
    stages: tuple[Stage, ...]  # the whole pipeline (validate looks up who wrote each table)

    @property
    def run_id(self) -> str | None:
        return self.tracker.active_run_id()

    @property
    def section(self) -> Any:
        return getattr(self.cfg, self.stage.section) if self.stage.section else None

    def stamp(self) -> dict[str, Any]:
        """What the output was computed from; stored in the commit, it decides "nothing new" next time."""
        section = self.section
        return {
            "stage": self.stage.name,
            "input_table": self.input.ref.name if self.input else None,
            "input_version": self.input.version if self.input else None,
            "where": self.input.where if self.input else None,
            "config": fingerprint(section) if section is not None else None,
            "settings": dataclasses.asdict(section) if section is not None else None,
        }


@dataclass
class StageSummary:
    stage: str
    input_rows: int
    output_rows: int
    new_rows: int
    table: str
    version: int | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    location: str = ""  # printed instead of table@version for stages whose output is not a table
    checks: list[str] = field(default_factory=list)  # gate verdicts, one line per validated table


def resolve_input(stage: Stage, spark, cfg: PipelineConfig) -> Input | None:
    """The stage's input table at its current version: `<section>.input_table`, else the first default."""
    if not stage.section:
        return None
    section = getattr(cfg, stage.section)
    names = [section.input_table] if section.input_table else list(stage.inputs)
    for name in names:
        ref = delta.table_ref(cfg.storage, name)
        version = delta.current_version(spark, ref)
        if version is not None:
            return Input(ref, version, getattr(section, "where", ""))
    raise FileNotFoundError(
        f"{stage.section}.input_table: no table {' or '.join(names)} under "
        f"{cfg.storage.catalog + '.' + cfg.storage.schema if cfg.storage.catalog else cfg.storage.root}; "
        "run the stage that writes it first"
    )


def read_stamp(spark, ref: delta.TableRef, version: int | None = None) -> dict | None:
    """The stamp a stage stored in the commit of `version` (default: the newest), or None."""
    if not delta.exists(spark, ref):
        return None
    from pyspark.sql import functions as F

    history = delta.history(spark, ref, None if version is not None else 1)
    if version is not None:
        history = history.where(F.col("version") == version)
    row = history.select("userMetadata").first()
    try:
        return json.loads(row[0]) if row and row[0] else None
    except json.JSONDecodeError:
        return None


def only_grew(spark, inp: Input, previous: dict | None, stamp: dict) -> bool:
    """The output was computed from an older version of the same input, config and `where`, and the
    input's commits since then only added rows: a stage may process just the new ones."""

    def rest(d: dict) -> dict:
        return {k: v for k, v in d.items() if k != "input_version"}

    return (
        previous is not None
        and rest(previous) == rest(stamp)
        and previous["input_version"] < inp.version
        and delta.only_inserts(spark, inp.ref, previous["input_version"], inp.version)
    )


def section_from_stamp(stage: Stage, cfg: PipelineConfig, stamp: dict | None) -> Any:
    """The config section a table was written with (from its stamp), else the current one."""
    current = getattr(cfg, stage.section) if stage.section else None
    settings = (stamp or {}).get("settings") if (stamp or {}).get("stage") == stage.name else None
    if current is None or not isinstance(settings, dict):
        return current
    from slm_curator.config import _build

    try:
        return _build(type(current), settings, stage.section + ".")
    except ConfigError as exc:  # written by another version of the package
        log.warning(
            "%s: the stamp's settings do not fit this config (%s); using the current ones", stage.name, exc
        )
        return current


def gate_params(
    stage: Stage, spark, cfg: PipelineConfig, inp: Input | None, input_rows: int | None = None
) -> dict[str, Any]:
    """Run-time parameters of the output's suite: the input's row count and the fewest rows to keep."""
    from slm_curator.checks.suites import min_kept_rows

    params: dict[str, Any] = {"max_doc_chars": cfg.ingest.max_doc_bytes}
    if input_rows is None and inp is not None:
        input_rows = inp.read(spark).count()
    if input_rows is None and stage.input_rows is not None:
        input_rows = stage.input_rows(spark, cfg)
    if input_rows is not None:
        fraction = cfg.checks.max_drop_fraction.get(stage.name, 1.0)
        params.update({"input_rows": input_rows, "min_kept_rows": min_kept_rows(input_rows, fraction)})
    return params


def gate(ctx: StageContext, result: StageResult) -> list[str]:
    """The output table's gate (raises DataQualityError on a failed `error` expectation); summary lines."""
    from slm_curator.checks.stage import check_lines, run_gate
    from slm_curator.checks.suites import has_suite

    stage, cfg = ctx.stage, ctx.cfg
    if not (stage.output and result.validate and result.version is not None and cfg.checks.enabled):
        return []
    if not has_suite(cfg.checks.suites_dir, stage.output):
        return []
    params = gate_params(stage, ctx.spark, cfg, ctx.input, result.gate_input_rows)
    extra = stage.checks(ctx.section) if stage.checks else None
    report = run_gate(
        ctx.spark, cfg, ctx.tracker, stage.output, result.version, params, stage.name, extra=extra
    )
    return check_lines(stage.output, result.version, report)


def run_stage(
    stage: Stage,
    spark,
    cfg: PipelineConfig,
    tracker: Tracker,
    stages: tuple[Stage, ...] = (),
    options: dict[str, Any] | None = None,
) -> StageSummary:
    from slm_curator.checks.stage import require_passed

    started = time.time()
    inp = resolve_input(stage, spark, cfg)
    if inp is not None and spark is not None:
        require_passed(spark, cfg, inp.ref.name, inp.version, stage.name)
    with tracker.stage_run(stage.name):
        ctx = StageContext(spark, cfg, tracker, stage, inp, dict(options or {}), stages)
        if inp is not None:
            tracker.log_table(inp.ref, inp.version, "input")
        result = stage.work(ctx)
        tracker.log_metrics(result.metrics)
        out_ref = delta.table_ref(cfg.storage, stage.output) if stage.output else None
        for ref, version in ([(out_ref, result.version)] if out_ref else []) + result.outputs:
            tracker.log_table(ref, version, "output")
        checks = result.checks + gate(ctx, result)
    return StageSummary(
        stage=stage.name,
        input_rows=result.input_rows,
        output_rows=result.output_rows,
        new_rows=result.new_rows,
        table=out_ref.identifier if out_ref else "",
        version=result.version,
        seconds=time.time() - started,
        notes=result.notes,
        details=result.details,
        location=result.location,
        checks=checks,
    )
