"""The `quality_labels` table: imported annotations, reference-vs-web pairs and LLM annotations, one schema.

Every row carries its source, its raw `label` (the source's scale), its `target` on the 0-5 scale the
heads learn, a training `weight`, and a `split` fixed by a hash of the text, so a text is never on
both sides and a re-run splits the same way. LLM answers that do not parse are kept (`ok` false,
`answer` kept) and counted, never guessed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from slm_curator import delta
from slm_curator.errors import ConfigError
from slm_curator.fingerprint import fingerprint
from slm_curator.stage import Stage, StageContext, StageResult, read_stamp

log = logging.getLogger(__name__)

LABELS_TABLE = "quality_labels"
LABEL_SCHEMA = T.StructType(
    [
        T.StructField("label_id", T.StringType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("kind", T.StringType(), False),  # imported | reference | web_negative | llm
        T.StructField("text", T.StringType(), True),
        T.StructField("label", T.DoubleType(), True),
        T.StructField("target", T.DoubleType(), True),
        T.StructField("weight", T.DoubleType(), False),
        T.StructField("split", T.StringType(), False),
        T.StructField("annotator", T.StringType(), True),
        T.StructField("answer", T.StringType(), True),
        T.StructField("ok", T.BooleanType(), False),
        T.StructField("origin", T.StringType(), True),
    ]
)


def read_records(spark: SparkSession, path: str) -> DataFrame:
    """A JSONL, CSV or Parquet file (or folder of them) as a DataFrame."""
    name = path.rstrip("/").lower()
    if not Path(path).exists() and "://" not in path:
        raise FileNotFoundError(f"{path}: no such label file")
    if name.endswith((".parquet", ".pq")) or (Path(path).is_dir() and any(Path(path).glob("*.parquet"))):
        return spark.read.parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        return spark.read.csv(path, header=True, multiLine=True, escape='"')
    return spark.read.json(path)


def _field(frame: DataFrame, name: str, key: str) -> F.Column:
    if name not in frame.columns:
        raise ConfigError(
            f"{key}: {name!r} is not a field of the file; allowed values: {', '.join(frame.columns)}"
        )
    return F.col(name)


def _finish(frame: DataFrame, test_fraction: float, seed: int) -> DataFrame:
    bucket = F.pmod(F.xxhash64(F.lit(seed), F.coalesce(F.col("text"), F.lit(""))), F.lit(10_000))
    return frame.withColumns(
        {
            "label_id": F.sha2(F.concat_ws("\u0001", "source", F.coalesce(F.col("text"), F.lit(""))), 256),
            "split": F.when(bucket < int(test_fraction * 10_000), "test").otherwise("train"),
        }
    ).select(*LABEL_SCHEMA.fieldNames())


def imported_labels(spark, imp, index: int) -> DataFrame:
    key = f"quality.labels.imported[{index}]"
    frame = read_records(spark, imp.path)
    text = _field(frame, imp.text_field, key + ".text_field").cast("string")
    score = _field(frame, imp.score_field, key + ".score_field").cast("double")
    name = imp.name or Path(imp.path).name.split(".")[0]
    return frame.select(
        F.lit(name).alias("source"),
        F.lit("imported").alias("kind"),
        text.alias("text"),
        score.alias("label"),
        F.least(F.greatest(score * (5.0 / imp.max_score), F.lit(0.0)), F.lit(5.0)).alias("target"),
        F.lit(float(imp.weight)).alias("weight"),
        F.lit(None).cast("string").alias("annotator"),
        F.lit(None).cast("string").alias("answer"),
        (score.isNotNull() & text.isNotNull()).alias("ok"),
        F.lit(imp.path).alias("origin"),
    )


def _seeded_sample(spark, cfg, name: str, where: str, column: str, n: int, seed: int, keys: tuple[str, str]):
    """(table ref, the first `n` non-empty rows of a table by a seeded hash of doc_id, as doc_id + text)."""
    table = delta.table_ref(cfg.storage, name)
    if not delta.exists(spark, table):
        raise FileNotFoundError(f"{keys[0]}: no table {name}; run the stage that writes it first")
    frame = delta.read(spark, table)
    if where:
        frame = frame.where(where)
    if column not in frame.columns:
        raise ConfigError(
            f"{keys[1]}: {column!r} is not a column of {name}; allowed values: {', '.join(frame.columns)}"
        )
    sample = (
        frame.where(F.length(F.trim(column)) > 0)
        .orderBy(F.xxhash64(F.lit(seed), F.col("doc_id")), "doc_id")
        .limit(n)
        .select("doc_id", F.col(column).alias("text"))
    )
    return table, sample


def reference_labels(spark, cfg, ref_cfg, seed: int) -> DataFrame | None:
    """Reference positives and as many (x negatives_per_positive) seeded-random negatives from a table."""
    if not ref_cfg.paths:
        return None
    positives = None
    for path in ref_cfg.paths:
        frame = read_records(spark, path)
        part = frame.select(
            _field(frame, ref_cfg.text_field, "quality.labels.reference.text_field")
            .cast("string")
            .alias("text"),
            F.lit(path).alias("origin"),
        )
        positives = part if positives is None else positives.unionByName(part)
    positives = positives.where(F.length(F.trim("text")) > 0)
    wanted = int(round(positives.count() * ref_cfg.negatives_per_positive))
    key = "quality.labels.reference."
    table, sample = _seeded_sample(
        spark,
        cfg,
        ref_cfg.negatives_table,
        ref_cfg.negatives_where,
        ref_cfg.negatives_text_column,
        wanted,
        seed,
        (key + "negatives_table", key + "negatives_text_column"),
    )
    negatives = sample.select("text", F.lit(str(table.identifier)).alias("origin"))

    def side(frame, kind, value):
        return frame.select(
            F.lit(ref_cfg.name if kind == "reference" else f"{ref_cfg.name}_web").alias("source"),
            F.lit(kind).alias("kind"),
            "text",
            F.lit(value).alias("label"),
            F.lit(5.0 * value).alias("target"),
            F.lit(float(ref_cfg.weight)).alias("weight"),
            F.lit(None).cast("string").alias("annotator"),
            F.lit(None).cast("string").alias("answer"),
            F.lit(True).alias("ok"),
            "origin",
        )

    return side(positives, "reference", 1.0).unionByName(side(negatives, "web_negative", 0.0))


def annotated_labels(spark, cfg, ann, seed: int) -> DataFrame | None:
    """A seeded sample of a table, scored by an LLM with the FineWeb-Edu prompt (answers cached)."""
    if not ann.enabled:
        return None
    from slm_curator.evaluate.client import JudgeClient
    from slm_curator.quality.annotate import PROMPT_VERSION, annotation_messages, parse_score

    # A bounded sample (ann.sample rows) is what the driver sends; nothing else is collected.
    table, sample = _seeded_sample(
        spark,
        cfg,
        ann.table,
        ann.where,
        ann.text_column,
        ann.sample,
        seed,
        ("quality.labels.annotate.table", "quality.labels.annotate.text_column"),
    )
    rows = sample.collect()
    requests = []
    for row in rows:
        messages = annotation_messages(row["text"] or "", ann.max_chars)
        requests.append((messages, (PROMPT_VERSION, messages[0]["content"])))
    cache = Path(cfg.storage.root) / "judge" / "cache.sqlite"
    with JudgeClient(ann.judge, cache) as client:
        replies = client.chat_many(requests)
    records = []
    for row, reply in zip(rows, replies, strict=True):
        score = parse_score(reply.text) if reply.ok else None
        records.append(
            (
                f"llm_{ann.judge.model or 'judge'}",
                "llm",
                row["text"],
                None if score is None else float(score),
                None if score is None else float(score),
                float(ann.weight),
                ann.judge.model,
                reply.text if reply.ok else f"error: {reply.error}",
                score is not None,
                f"{table.identifier}:{row['doc_id']}",
            )
        )
    bad = sum(1 for r in records if not r[8])
    if bad:
        log.warning(
            "labels: %d of %d LLM answers had no parseable score; kept with ok = false", bad, len(records)
        )
    schema = T.StructType([f for f in LABEL_SCHEMA.fields if f.name not in ("label_id", "split")])
    return spark.createDataFrame(records, schema)


def label_frame(spark, cfg) -> DataFrame:
    lab = cfg.quality.labels
    parts = [imported_labels(spark, imp, i) for i, imp in enumerate(lab.imported)]
    parts.append(reference_labels(spark, cfg, lab.reference, lab.seed))
    parts.append(annotated_labels(spark, cfg, lab.annotate, lab.seed))
    parts = [p for p in parts if p is not None]
    if not parts:
        raise ConfigError(
            "quality.labels: no source configured; set quality.labels.imported, quality.labels.reference.paths "
            "or quality.labels.annotate.enabled"
        )
    frame = parts[0]
    for p in parts[1:]:
        frame = frame.unionByName(p)
    return _finish(frame, lab.test_fraction, lab.seed).dropDuplicates(["label_id"])


def _stamp(spark, cfg) -> dict:
    lab = cfg.quality.labels
    files = [imp.path for imp in lab.imported] + list(lab.reference.paths)
    sizes = {p: [Path(p).stat().st_size, int(Path(p).stat().st_mtime)] for p in files if Path(p).exists()}
    versions = {}
    for name in ([lab.reference.negatives_table] if lab.reference.paths else []) + (
        [lab.annotate.table] if lab.annotate.enabled else []
    ):
        versions[name] = delta.current_version(spark, delta.table_ref(cfg.storage, name))
    return {"stage": "labels", "config": fingerprint(lab), "files": sizes, "tables": versions}


def labels_work(ctx: StageContext) -> StageResult:
    spark, cfg = ctx.spark, ctx.cfg
    ref = delta.table_ref(cfg.storage, LABELS_TABLE)
    stamp = _stamp(spark, cfg)
    notes = []
    if read_stamp(spark, ref) == stamp:
        notes.append("nothing new: the labels are up to date with their files, tables and config")
    else:
        delta.write(
            label_frame(spark, cfg), ref, "overwrite", user_metadata=json.dumps(stamp, sort_keys=True)
        )
    table = delta.read(spark, ref)
    by = {
        (r["source"], r["split"]): (int(r["n"]), int(r["bad"]))
        for r in table.groupBy("source", "split")
        .agg(F.count(F.lit(1)).alias("n"), F.sum((~F.col("ok")).cast("int")).alias("bad"))
        .collect()
    }
    sources = sorted({s for s, _ in by})
    details = {
        s: f"{by.get((s, 'train'), (0, 0))[0]} train, {by.get((s, 'test'), (0, 0))[0]} test"
        + (
            f", {by.get((s, 'train'), (0, 0))[1] + by.get((s, 'test'), (0, 0))[1]} unparseable"
            if by.get((s, "train"), (0, 0))[1] + by.get((s, "test"), (0, 0))[1]
            else ""
        )
        for s in sources
    }
    rows = sum(n for n, _ in by.values())
    unparseable = sum(b for _, b in by.values())
    return StageResult(
        input_rows=rows,
        output_rows=rows - unparseable,
        new_rows=0 if notes else rows,
        version=delta.current_version(spark, ref),
        notes=notes,
        details=details,
        metrics={"labels": rows, "unparseable": unparseable},
    )


STAGE = Stage(
    name="labels",
    description="label files, reference-vs-web pairs and LLM annotations -> quality_labels",
    work=labels_work,
    output=LABELS_TABLE,
    in_default=False,
)
