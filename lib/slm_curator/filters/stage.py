"""The filter stage in Spark: its input table (default `documents`) -> `filtered`, every row kept with its signals.

One pandas UDF runs every enabled family on each document (one tokenisation for all of them) and
returns a struct of cleaned text, decision, reasons, language and all signals; its schema, and the
gate's expectations on signals and reasons, come from the family registry. The output keeps every
input row, so an analyst can re-threshold from the signals without recomputing them; the curated
corpus is `keep = true`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from slm_curator import delta
from slm_curator.filters.document import Filters
from slm_curator.schemas import filter_result
from slm_curator.stage import (
    Argument,
    Checks,
    Input,
    Stage,
    StageContext,
    StageResult,
    only_grew,
    read_stamp,
)

log = logging.getLogger(__name__)


@dataclass
class FilterResult:
    input_version: int
    documents: int
    kept: int
    drop_reasons: dict[str, int]
    output_version: int | None
    skipped: bool  # already up to date: nothing recomputed or written
    histograms: dict[str, list[tuple[float, float]]]
    processed: int = 0  # documents analysed in this run (all, only the new ones, or none)


def analyze_udf(cfg):
    """The pandas UDF: a Series of texts -> a DataFrame of results, one row per text."""
    from pyspark.sql.functions import pandas_udf

    filters = Filters(cfg)
    names = filters.signal_names()

    @pandas_udf(filter_result(names))
    def run(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        for texts in batches:
            results = [filters.analyze(t if isinstance(t, str) else "") for t in texts]
            yield pd.DataFrame(
                {
                    "text_clean": [r.text_clean for r in results],
                    "keep": [r.keep for r in results],
                    "drop_reasons": [r.reasons for r in results],
                    "language": [r.language for r in results],
                    "language_score": [r.language_score for r in results],
                    "signals": [{n: float(r.signals.get(n, float("nan"))) for n in names} for r in results],
                }
            )

    return run


def apply_filters(documents, cfg):
    """DataFrame -> DataFrame: the documents with text_clean, keep, drop_reasons, language, signals."""
    from pyspark.sql import functions as F

    # Arrow batch size of the UDF: the documents each Python call analyses.
    documents.sparkSession.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.batch_size))
    result = analyze_udf(cfg)(F.col("text"))
    return documents.withColumn("_f", result).select("*", "_f.*").drop("_f")


def gate_checks(cfg) -> Checks:
    """Each signal within its declared range, and each drop reason one the enabled families can give."""
    filters = Filters(cfg)
    expectations = []
    for s in filters.signals():
        bounds = {k: v for k, v in (("min_value", s.low), ("max_value", s.high)) if v is not None}
        expectations.append(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": f"signals_{s.name}", **bounds},
                "severity": "error",
            }
        )
    expectations.append(
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "drop_reason", "value_set": filters.reasons()},
            "view": "reasons",
            "severity": "error",
            "notes": "the reasons the enabled filter families can give (slm_curator.filters.registry)",
        }
    )
    return Checks({"reasons": "SELECT explode(drop_reasons) AS drop_reason FROM {table}"}, expectations)


def reason_counts(filtered) -> dict[str, int]:
    from pyspark.sql import functions as F

    rows = filtered.select(F.explode("drop_reasons").alias("r")).groupBy("r").count().collect()
    return dict(sorted((r["r"], int(r["count"])) for r in rows))


def _summarise(table, names: list[str], bins: int = 20, histograms: bool = True):
    """(rows, kept rows, histograms of every signal) in one Spark aggregation (histogram_numeric)."""
    from pyspark.sql import functions as F

    aggs = [F.count(F.lit(1)).alias("_rows"), F.sum(F.col("keep").cast("long")).alias("_kept")]
    if histograms:
        aggs += [F.expr(f"histogram_numeric(signals.`{n}`, {bins})").alias(n) for n in names]
    row = table.agg(*aggs).first()
    hists = {n: [(float(b["x"]), float(b["y"])) for b in (row[n] or [])] for n in names} if histograms else {}
    return int(row["_rows"]), int(row["_kept"] or 0), hists


def run_filter(
    spark, inp: Input, cfg, out_ref, stamp: dict, run_id: str | None, dry_run: bool = False
) -> FilterResult:
    """Bring `out_ref` up to date with `inp` and this filter config.

    Three cases, decided from the stamp stored in the last commit's `userMetadata`:
    - same input version and config: nothing to do;
    - same config, an older input version whose later commits only added rows (ingest's insert-only
      merges): only the new documents are analysed and appended;
    - anything else (first run, changed thresholds, a rewritten input, a dry run): every document is
      analysed (and, unless dry, the table replaced).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    names = Filters(cfg).signal_names()
    previous = read_stamp(spark, out_ref)
    if previous == stamp and not dry_run:
        log.info(
            "filter: %s is up to date with %s@v%d and this config: nothing to do",
            out_ref,
            inp.ref,
            inp.version,
        )
        return _table_result(spark, out_ref, inp.version, processed=0, names=names, skipped=True)

    documents = inp.read(spark)
    # A dry run always reports on every document: it answers "what would this config drop?".
    incremental = not dry_run and only_grew(spark, inp, previous, stamp)
    if incremental:
        documents = documents.join(delta.read(spark, out_ref).select("doc_id"), "doc_id", "left_anti")
    analysed = apply_filters(documents, cfg).withColumns(
        {
            "filtered_at": F.current_timestamp(),
            "run_id": F.lit(run_id or ""),
            "input_version": F.lit(inp.version),
        }
    )
    analysed = analysed.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        processed = analysed.count()
        log.info("filter: analysed %d documents (%s)", processed, "new only" if incremental else "all")
        if dry_run:
            _, kept, hists = _summarise(analysed, names)
            return FilterResult(
                inp.version, processed, kept, reason_counts(analysed), None, False, hists, processed
            )
        mode = "append" if incremental else "overwrite"
        delta.write(analysed, out_ref, mode, user_metadata=json.dumps(stamp, sort_keys=True))
    finally:
        analysed.unpersist()
    return _table_result(spark, out_ref, inp.version, processed=processed, names=names, skipped=False)


def _table_result(
    spark, ref, input_version: int, processed: int, names: list[str], skipped: bool
) -> FilterResult:
    """Counts, reasons and histograms of the whole table, read back from Delta (no re-analysis)."""
    table = delta.read(spark, ref)
    rows, kept, histograms = _summarise(table, names, histograms=not skipped)
    return FilterResult(
        input_version=input_version,
        documents=rows,
        kept=kept,
        drop_reasons=reason_counts(table),
        output_version=delta.current_version(spark, ref),
        skipped=skipped,
        histograms=histograms,
        processed=processed,
    )


def filter_work(ctx: StageContext) -> StageResult:
    dry_run = bool(ctx.options.get("dry_run"))
    out_ref = delta.table_ref(ctx.cfg.storage, "filtered")
    result = run_filter(ctx.spark, ctx.input, ctx.section, out_ref, ctx.stamp(), ctx.run_id, dry_run)
    ctx.tracker.log_histograms(result.histograms, "filter_signal_histograms")
    notes = []
    if result.skipped:
        notes.append(
            f"nothing new: filtered is up to date with {ctx.input.ref.name}@v{result.input_version} and this config"
        )
    if dry_run:
        notes.append("dry run: nothing written")
    reasons = sorted(result.drop_reasons.items(), key=lambda kv: -kv[1])
    return StageResult(
        input_rows=result.documents,
        output_rows=result.kept,
        new_rows=0 if dry_run else result.processed,
        version=result.output_version,
        notes=notes,
        details={f"dropped:{k}": v for k, v in reasons},
        metrics={
            "documents": result.documents,
            "kept": result.kept,
            "dropped": result.documents - result.kept,
            "analysed": result.processed,
        }
        | {f"dropped_{reason}": n for reason, n in result.drop_reasons.items()},
        validate=not dry_run,
    )


STAGE = Stage(
    name="filter",
    description="input table (documents) -> filtered: signals, cleaned text, keep and drop reasons",
    work=filter_work,
    section="filter",
    inputs=("documents",),
    output="filtered",
    checks=gate_checks,
    arguments=(Argument("--dry-run", "report what would be dropped; write nothing", option="dry_run"),),
)
