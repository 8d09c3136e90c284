"""The filter stage in Spark: `documents` -> `filtered`, every document kept with its signals.

One pandas UDF runs `analyze` on each document (one tokenisation for every filter) and returns a struct
of cleaned text, decision, reasons, language and all signals. The output keeps every input row, so an
analyst can re-threshold from the signals without recomputing them; the curated corpus is
`keep = true`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from slm_curator import delta
from slm_curator.config import FilterConfig, PipelineConfig
from slm_curator.filters.document import analyze, signal_names

log = logging.getLogger(__name__)


@dataclass
class FilterResult:
    input_version: int | None
    documents: int
    kept: int
    drop_reasons: dict[str, int]
    output_version: int | None
    skipped: bool  # already up to date: nothing recomputed or written
    histograms: dict[str, list[tuple[float, float]]]
    processed: int = 0  # documents analysed in this run (all, only the new ones, or none)


def config_fingerprint(cfg: FilterConfig) -> str:
    blob = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def result_schema(names: list[str]) -> str:
    signals = ", ".join(f"`{n}`: double" for n in names)
    return (
        "text_clean string, keep boolean, drop_reasons array<string>, language string, "
        f"language_score double, signals struct<{signals}>"
    )


def analyze_udf(cfg: FilterConfig):
    """The pandas UDF: a Series of texts -> a DataFrame of results, one row per text."""
    from pyspark.sql.functions import pandas_udf

    names = signal_names(cfg)

    @pandas_udf(result_schema(names))
    def run(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        for texts in batches:
            results = [analyze(t if isinstance(t, str) else "", cfg) for t in texts]
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


def apply_filters(documents, cfg: FilterConfig):
    """DataFrame -> DataFrame: the documents with text_clean, keep, drop_reasons, language, signals."""
    from pyspark.sql import functions as F

    # Arrow batch size of the UDF: the documents each Python call analyses.
    documents.sparkSession.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.batch_size))
    result = analyze_udf(cfg)(F.col("text"))
    return documents.withColumn("_f", result).select("*", "_f.*").drop("_f")


def reason_counts(filtered) -> dict[str, int]:
    from pyspark.sql import functions as F

    rows = filtered.select(F.explode("drop_reasons").alias("r")).groupBy("r").count().collect()
    return dict(sorted((r["r"], int(r["count"])) for r in rows))


def signal_histograms(filtered, names: list[str], bins: int = 20) -> dict[str, list[tuple[float, float]]]:
    """Approximate histograms of every signal in one Spark aggregation (histogram_numeric)."""
    from pyspark.sql import functions as F

    aggs = [F.expr(f"histogram_numeric(signals.`{n}`, {bins})").alias(n) for n in names]
    row = filtered.agg(*aggs).first()
    return {n: [(float(b["x"]), float(b["y"])) for b in (row[n] or [])] for n in names}


def run_filter(spark, cfg: PipelineConfig, run_id: str | None, dry_run: bool = False) -> FilterResult:
    """Bring `filtered` up to date with the current `documents` version and this filter config.

    Three cases, decided from the stamp stored in the last commit's `userMetadata`:
    - same input version and config: nothing to do;
    - same config, older input version: only documents not yet in `filtered` are analysed and appended
      (ingest only ever inserts, so the new documents are exactly the anti-join);
    - anything else (first run, changed thresholds, a dry run): every document is analysed (and, unless
      dry, the table replaced).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    docs_ref = delta.table_ref(cfg.storage, "documents")
    out_ref = delta.table_ref(cfg.storage, "filtered")
    version = delta.current_version(spark, docs_ref)
    if version is None:
        raise FileNotFoundError(f"filter: input table {docs_ref} does not exist; run ingest first")
    stamp = {
        "input_table": docs_ref.identifier,
        "input_version": version,
        "config": config_fingerprint(cfg.filter),
    }
    names = signal_names(cfg.filter)
    previous = _last_stamp(spark, out_ref)

    if previous == stamp and not dry_run:
        log.info(
            "filter: %s is up to date with %s@v%d and this config: nothing to do", out_ref, docs_ref, version
        )
        return _table_result(spark, out_ref, version, processed=0, names=names, skipped=True)

    documents = delta.read(spark, docs_ref, version)
    # A dry run always reports on every document: it answers "what would this config drop?".
    incremental = (
        not dry_run
        and previous is not None
        and {k: v for k, v in previous.items() if k != "input_version"}
        == {k: v for k, v in stamp.items() if k != "input_version"}
    )
    if incremental:
        done = delta.read(spark, out_ref).select("doc_id")
        documents = documents.join(done, "doc_id", "left_anti")
    analysed = apply_filters(documents, cfg.filter).withColumns(
        {"filtered_at": F.current_timestamp(), "run_id": F.lit(run_id or ""), "input_version": F.lit(version)}
    )
    analysed = analysed.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        processed = analysed.count()
        log.info("filter: analysed %d documents (%s)", processed, "new only" if incremental else "all")
        if dry_run:
            return FilterResult(
                version,
                processed,
                analysed.where("keep").count(),
                reason_counts(analysed),
                None,
                False,
                signal_histograms(analysed, names),
                processed,
            )
        delta.write(
            analysed,
            out_ref,
            "append" if incremental else "overwrite",
            user_metadata=json.dumps(stamp, sort_keys=True),
        )
    finally:
        analysed.unpersist()
    return _table_result(spark, out_ref, version, processed=processed, names=names, skipped=False)


def _table_result(
    spark, ref, input_version: int, processed: int, names: list[str], skipped: bool
) -> FilterResult:
    """Counts, reasons and histograms of the whole table, read back from Delta (no re-analysis)."""
    table = delta.read(spark, ref)
    return FilterResult(
        input_version=input_version,
        documents=table.count(),
        kept=table.where("keep").count(),
        drop_reasons=reason_counts(table),
        output_version=delta.current_version(spark, ref),
        skipped=skipped,
        histograms={} if skipped else signal_histograms(table, names),
        processed=processed,
    )


def _last_stamp(spark, ref) -> dict | None:
    if not delta.exists(spark, ref):
        return None
    meta = delta.history(spark, ref, 1).select("userMetadata").first()[0]
    try:
        return json.loads(meta) if meta else None
    except json.JSONDecodeError:
        return None
