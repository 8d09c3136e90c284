# Databricks notebook source
# MAGIC %md
# MAGIC # Quality scores: what the model likes, what it does not, and how it relates to the filters
# MAGIC `scored` holds the score stage's `quality_score` (0-5, FineWeb-Edu scale), `quality_int`, and
# MAGIC the model's URI and version. This notebook shows the score distribution per source, the
# MAGIC highest- and lowest-scored documents of each source, and the score against each filter signal
# MAGIC (Spearman over the scored rows, joined to `filtered` by doc_id), with document length first.

# COMMAND ----------

import sys

from pyspark.sql import Window
from pyspark.sql import functions as F

from slm_curator import delta
from slm_curator.config import load_config
from slm_curator.spark import get_spark, platform

env = "databricks" if platform() == "databricks" else "local"
cfg = load_config(env, overrides=sys.argv[1:] if env == "local" and __name__ == "__main__" else [])
spark = get_spark(cfg)
scored = delta.read(spark, delta.table_ref(cfg.storage, "scored"))
text = cfg.score.text_column
by = cfg.score.histogram_by if cfg.score.histogram_by in scored.columns else None

# COMMAND ----------

# MAGIC %md Score distribution per source (documents per integer score) and the model that scored them.

# COMMAND ----------

group = [by] if by else []
scored.groupBy(*group, "quality_model", "quality_model_version").pivot(
    "quality_int", list(range(6))
).count().show(truncate=False)

# COMMAND ----------

# MAGIC %md The three highest- and lowest-scored documents of each source, with the beginning of their text.

# COMMAND ----------

key = F.col(by) if by else F.lit("all")
ranked = scored.select(
    key.alias("group"),
    "doc_id",
    F.round("quality_score", 2).alias("quality_score"),
    F.substring(F.regexp_replace(text, r"\s+", " "), 1, 100).alias("begins"),
    F.row_number().over(Window.partitionBy(key).orderBy(F.desc("quality_score"), "doc_id")).alias("top"),
    F.row_number().over(Window.partitionBy(key).orderBy("quality_score", "doc_id")).alias("bottom"),
)
ranked.where("top <= 3").orderBy("group", "top").drop("bottom").show(truncate=False)
ranked.where("bottom <= 3").orderBy("group", "bottom").drop("top").show(truncate=False)

# COMMAND ----------

# MAGIC %md Score against each filter signal: Spearman's rho over the scored documents (ranks in Spark).

# COMMAND ----------

filtered_ref = delta.table_ref(cfg.storage, "filtered")
if delta.exists(spark, filtered_ref):
    filtered = delta.read(spark, filtered_ref)
    names = (
        [f.name for f in filtered.schema["signals"].dataType.fields] if "signals" in filtered.columns else []
    )
    joined = scored.select("doc_id", "quality_score").join(
        filtered.select("doc_id", *[F.col(f"signals.{n}").cast("double").alias(n) for n in names]), "doc_id"
    )
    whole = Window.orderBy("quality_score")
    ranks = joined.withColumn("r_score", F.percent_rank().over(whole))
    for n in names:
        ranks = ranks.withColumn(f"r_{n}", F.percent_rank().over(Window.orderBy(n)))
    spread = ranks.agg(*[F.stddev(f"r_{n}").alias(n) for n in ["score", *names]]).first().asDict()
    varying = [n for n in names if spread[n]] if spread["score"] else []  # corr of a constant divides by 0
    rho = (
        ranks.agg(*[F.corr("r_score", f"r_{n}").alias(n) for n in varying]).first().asDict()
        if varying
        else {}
    )
    rows = sorted(((n, v) for n, v in rho.items() if v is not None), key=lambda kv: -abs(kv[1]))
    print(f"{'signal':<36} spearman_with_score")
    for n, v in rows:
        print(f"{n:<36} {v:+.3f}")
else:
    print("no filtered table: run the filter stage to compare scores with its signals")
