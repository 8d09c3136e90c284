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

STAGE_APP_ID = "slm-curator.filter"


@dataclass
class FilterResult:
    input_version: int | None
    documents: int
    kept: int
    drop_reasons: dict[str, int]
    output_version: int | None
    skipped: bool  # already up to date: nothing recomputed or written
    histograms: dict[str, list[tuple[float, float]]]


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
    """Filter the current `documents` version into `filtered` (skipped when already up to date)."""
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

    if not dry_run and _up_to_date(spark, out_ref, stamp):
        filtered = delta.read(spark, out_ref)
        kept = filtered.where("keep").count()
        log.info(
            "filter: %s is up to date with %s@v%d and this config: nothing to do", out_ref, docs_ref, version
        )
        return FilterResult(
            version,
            filtered.count(),
            kept,
            reason_counts(filtered),
            delta.current_version(spark, out_ref),
            True,
            {},
        )

    documents = delta.read(spark, docs_ref, version)
    filtered = apply_filters(documents, cfg.filter).withColumns(
        {"filtered_at": F.current_timestamp(), "run_id": F.lit(run_id or ""), "input_version": F.lit(version)}
    )
    filtered = filtered.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        total = filtered.count()
        kept = filtered.where("keep").count()
        reasons = reason_counts(filtered)
        histograms = signal_histograms(filtered, names)
        out_version = None
        if not dry_run:
            out_version = delta.write(
                filtered, out_ref, "overwrite", user_metadata=json.dumps(stamp, sort_keys=True)
            ).version
    finally:
        filtered.unpersist()
    return FilterResult(version, total, kept, reasons, out_version, False, histograms)


def _up_to_date(spark, ref, stamp: dict) -> bool:
    if not delta.exists(spark, ref):
        return False
    meta = delta.history(spark, ref, 1).select("userMetadata").first()[0]
    try:
        return json.loads(meta or "{}") == stamp
    except json.JSONDecodeError:
        return False
