"""The score stage: its input (default `deduped` representatives) -> `scored`, one score per row.

Scoring runs in an iterator pandas UDF: each Python worker builds the encoder once (kept across
tasks, since Spark reuses workers), and each Arrow batch is embedded with its chunks sorted by
length and packed by token count. The driver resolves the model once (`models:/name@alias`, a
folder, or the package's default) and ships its few-kilobyte description to the workers; only an
encoder bundled inside an MLflow model is fetched by the workers themselves, from the same URI.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from slm_curator import delta
from slm_curator.errors import ConfigError
from slm_curator.stage import Stage, StageContext, StageResult, read_stamp

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["quality_score", "quality_int", "quality_model", "quality_model_version"]
HISTOGRAM_EDGES = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]

_WORKER_CACHE: dict[str, object] = {}


def _worker_model(payload: str):
    """(model, encoder) for this Python worker, built once per payload."""
    hit = _WORKER_CACHE.get(payload)
    if hit is not None:
        return hit
    from pathlib import Path

    from slm_curator.quality.encoder import EncoderSpec
    from slm_curator.quality.head import LinearHead
    from slm_curator.quality.model import BUNDLED, QualityModel, load_model

    spec = json.loads(payload)
    data = spec["model"]
    head = LinearHead.from_dict(data["head"]) if data.get("head") else None
    model = QualityModel(EncoderSpec(**data["encoder"]), data["features"], head)
    if model.encoder.location == BUNDLED and spec.get("uri"):
        import mlflow

        model = load_model(Path(mlflow.artifacts.download_artifacts(spec["uri"])))
    # Threads go in at construction: an ONNX Runtime session fixes its thread pool when created.
    encoder = model.load_encoder(
        spec["backend"],
        spec["device"],
        spec["batch_tokens"],
        spec.get("precision", "float32"),
        spec["threads"],
    )
    _WORKER_CACHE.clear()
    _WORKER_CACHE[payload] = (model, encoder)
    return model, encoder


def payload(model_dict: dict, uri: str, cfg, threads: int) -> str:
    """What a worker needs to rebuild the model: its description, URI and the run settings."""
    return json.dumps(
        {
            "model": model_dict,
            "uri": uri,
            "backend": cfg.backend,
            "device": cfg.device,
            "batch_tokens": cfg.batch_tokens,
            "precision": cfg.precision,
            "threads": threads,
        },
        sort_keys=True,
    )


def score_udf(spec: str):
    """pandas UDF: text -> quality_score (double, 0-5)."""

    @F.pandas_udf(T.DoubleType())
    def quality_score(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        model, encoder = _worker_model(spec)
        for texts in batches:
            values = texts.fillna("").astype(str).tolist()
            yield pd.Series(model.score(encoder, values) if values else np.zeros(0), dtype="float64")

    return quality_score


def inputs_udf(spec: str):
    """pandas UDF: text -> the head's inputs [embedding, features] (array<double>), for training."""

    @F.pandas_udf(T.ArrayType(T.DoubleType()))
    def head_inputs(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        model, encoder = _worker_model(spec)
        for texts in batches:
            values = texts.fillna("").astype(str).tolist()
            x = model.inputs(encoder.embed(values), values) if values else np.zeros((0, 1))
            yield pd.Series(list(x))

    return head_inputs


def spread(frame: DataFrame, batch_docs: int) -> DataFrame:
    """Enough partitions to use every task slot; Arrow batches of `batch_docs` rows."""
    spark = frame.sparkSession
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_docs))
    slots = spark.sparkContext.defaultParallelism
    if frame.rdd.getNumPartitions() < slots:
        return frame.repartition(slots, "doc_id") if "doc_id" in frame.columns else frame.repartition(slots)
    return frame


def task_threads(spark, cfg) -> int:
    """Encoder threads per task: score.threads, else spark.task.cpus (the cores Spark gives a task)."""
    if cfg.threads:
        return cfg.threads
    return max(1, int(spark.conf.get("spark.task.cpus", "1")))


def empty_vector(model) -> list[float]:
    """The encoder's vector of an empty text ([CLS] [SEP]), which Spark NLP never computes."""
    return model.load_encoder("torch", "cpu", threads=1).embed([""])[0].astype(float).tolist()


def add_scores(frame: DataFrame, text_column: str, resolved, cfg, threads: int) -> DataFrame:
    """`frame` with the score columns (row count unchanged); spread over the cluster's task slots."""
    frame = spread(frame, cfg.batch_docs)
    if cfg.backend == "sparknlp":
        from slm_curator.quality import spark_nlp

        frame = spark_nlp.add_score(frame, text_column, resolved.model, empty_vector(resolved.model))
    else:
        udf = score_udf(payload(resolved.model.to_dict(), resolved.uri, cfg, threads))
        frame = frame.withColumn("quality_score", udf(F.col(text_column)))
    return (
        frame.withColumn(
            "quality_int", F.least(F.greatest(F.round("quality_score").cast("int"), F.lit(0)), F.lit(5))
        )
        .withColumn("quality_model", F.lit(resolved.uri))
        .withColumn("quality_model_version", F.lit(resolved.version))
    )


def _histogram(table: DataFrame, by: str) -> dict[str, list[int]]:
    """Counts per score bin (HISTOGRAM_EDGES), per value of `by` (one aggregation)."""
    bins = len(HISTOGRAM_EDGES) - 1
    index = F.least(F.floor(F.col("quality_score") / 0.5).cast("int"), F.lit(bins - 1))
    key = F.coalesce(F.col(by).cast("string"), F.lit("(none)")) if by in table.columns else F.lit("all")
    rows = table.groupBy(key.alias("k"), index.alias("b")).count().collect()
    out: dict[str, list[int]] = {}
    for r in rows:
        if r["b"] is None:
            continue
        out.setdefault(r["k"], [0] * bins)[int(r["b"])] += int(r["count"])
    return dict(sorted(out.items()))


def _log_histogram(ctx, histogram: dict[str, list[int]]) -> None:
    if not ctx.tracker.enabled or not histogram:
        return
    import tempfile
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centers = [(a + b) / 2 for a, b in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:], strict=False)]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    width = 0.45 / max(len(histogram), 1)
    for i, (name, counts) in enumerate(histogram.items()):
        ax.bar([c - 0.225 + (i + 0.5) * width for c in centers], counts, width=width, label=name)
    ax.set_xlabel("quality_score")
    ax.set_ylabel("documents")
    ax.set_title("score: quality scores by source")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with tempfile.TemporaryDirectory() as tmp:
        fig.savefig(Path(tmp) / "quality_scores.png", dpi=90)
        (Path(tmp) / "quality_scores.json").write_text(
            json.dumps({"edges": HISTOGRAM_EDGES, "counts": histogram}, indent=1)
        )
        ctx.tracker.log_artifact(str(Path(tmp) / "quality_scores.png"))
        ctx.tracker.log_artifact(str(Path(tmp) / "quality_scores.json"))
    plt.close(fig)


def format_histogram(histogram: dict[str, list[int]], most: int = 6) -> str:
    """One entry per source, the `most` largest first, the rest summed: documents per unit of score."""
    units = {name: [c[2 * i] + c[2 * i + 1] for i in range(5)] for name, c in histogram.items()}
    ranked = sorted(units, key=lambda n: (-sum(units[n]), n))
    shown = [(n, units[n]) for n in ranked[:most]]
    rest = ranked[most:]
    if rest:
        shown.append((f"{len(rest)} other sources", [sum(units[n][i] for n in rest) for i in range(5)]))
    return "; ".join(f"{name} [{' '.join(str(u) for u in counts)}]" for name, counts in shown)


def score_work(ctx: StageContext) -> StageResult:
    from slm_curator.quality.model import resolve_model

    spark, cfg = ctx.spark, ctx.section
    out_ref = delta.table_ref(ctx.cfg.storage, "scored")
    frame = ctx.input.read(spark)
    if cfg.text_column not in frame.columns:
        raise ConfigError(
            f"score.text_column: {cfg.text_column!r} is not a column of {ctx.input.ref.name}; "
            f"allowed values: {', '.join(c for c, t in frame.dtypes if t == 'string')}"
        )
    local = cfg.model and not cfg.model.startswith(("models:/", "runs:/")) and "://" not in cfg.model
    if local and not os.path.exists(cfg.model):
        raise FileNotFoundError(f"score.model: {cfg.model} does not exist")
    resolved = resolve_model(cfg.model, words=cfg.backend == "sparknlp")
    if cfg.backend == "sparknlp":
        from slm_curator.quality import spark_nlp

        spark_nlp.check_model(resolved.model)
    stamp = ctx.stamp() | {
        "model": resolved.uri,
        "model_version": resolved.version,
        "model_digest": resolved.model.digest,
    }
    notes = [f"model {resolved.uri} (version {resolved.version})"]
    previous = read_stamp(spark, out_ref)
    input_rows = frame.count()
    started = time.time()
    if previous == stamp:
        notes.append(
            f"nothing new: scored is up to date with {ctx.input.ref.name}@v{ctx.input.version}, this model and config"
        )
        new_rows = 0
    else:
        threads = task_threads(spark, cfg)
        keep = [c for c in frame.columns if c not in SCORE_COLUMNS]
        delta.write(
            add_scores(frame.select(*keep), cfg.text_column, resolved, cfg, threads),
            out_ref,
            "overwrite",
            user_metadata=json.dumps(stamp, sort_keys=True),
        )
        new_rows = input_rows
    seconds = time.time() - started
    table = delta.read(spark, out_ref)
    stats = table.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count("quality_score").alias("scored"),
        F.avg("quality_score").alias("mean"),
    ).first()
    histogram = _histogram(table, cfg.histogram_by)
    if new_rows:
        _log_histogram(ctx, histogram)
    metrics = {
        "rows": int(stats["rows"]),
        "scored": int(stats["scored"]),
        "mean_score": float(stats["mean"] or 0.0),
    }
    if new_rows and seconds > 0:
        metrics["docs_per_second"] = new_rows / seconds
    return StageResult(
        input_rows=input_rows,
        output_rows=int(stats["rows"]),
        new_rows=new_rows,
        version=delta.current_version(spark, out_ref),
        notes=notes,
        details={
            "mean score": f"{metrics['mean_score']:.2f} over {metrics['scored']} of {metrics['rows']} rows",
            "scores by source (0-1 ... 4-5)": format_histogram(histogram),
        },
        metrics=metrics,
    )


STAGE = Stage(
    name="score",
    description="input table (deduped representatives) -> scored: model quality score 0-5 per document",
    work=score_work,
    section="score",
    inputs=("deduped",),
    output="scored",
)
