# Databricks notebook source
# MAGIC %md
# MAGIC # Duplicate clusters: what dedup merged, and why
# MAGIC `deduped` keeps every input row with its `cluster_id`, `cluster_size`, `is_duplicate` and
# MAGIC `duplicate_of`; `dedup_edges` holds every candidate edge with its exact Jaccard. This notebook shows
# MAGIC the largest clusters, one near-duplicate pair side by side with the differing words marked, the
# MAGIC similarity of candidate pairs, and the duplicate rate by source.

# COMMAND ----------

import sys

from pyspark.sql import functions as F

from slm_curator import delta
from slm_curator.config import load_config
from slm_curator.spark import get_spark, platform
from slm_curator.text.diff import marked_diff

env = "databricks" if platform() == "databricks" else "local"
cfg = load_config(env, overrides=sys.argv[1:] if env == "local" and __name__ == "__main__" else [])
spark = get_spark(cfg)
deduped = delta.read(spark, delta.table_ref(cfg.storage, "deduped"))
edges = delta.read(spark, delta.table_ref(cfg.storage, cfg.dedup.edges_table))
text = cfg.dedup.text_column

# COMMAND ----------

# MAGIC %md The largest clusters: size, the representative and the beginning of its text.

# COMMAND ----------

deduped.where("NOT is_duplicate AND cluster_size > 1").select(
    "cluster_id",
    "cluster_size",
    F.col("doc_id").alias("representative"),
    F.substring(text, 1, 80).alias("begins"),
).orderBy(F.desc("cluster_size"), "cluster_id").show(10, truncate=False)

# COMMAND ----------

# MAGIC %md One near-duplicate pair side by side: the least similar verified pair (where the threshold bites).

# COMMAND ----------

pair = (
    edges.where("kind = 'near' AND verified")
    .orderBy("jaccard", "src")
    .select("src", "dst", "jaccard")
    .first()
)
if pair is None:
    print("no verified near-duplicate pair in this table")
else:
    texts = dict(
        deduped.where(F.col("doc_id").isin(pair["src"], pair["dst"])).select("doc_id", text).collect()
    )
    left, right = marked_diff(texts[pair["src"]] or "", texts[pair["dst"]] or "")
    print(f"{pair['src']}  vs  {pair['dst']}  (Jaccard {pair['jaccard']:.3f})")
    print("LEFT: ", left[:1500])
    print("RIGHT:", right[:1500])

# COMMAND ----------

# MAGIC %md Similarity of candidate pairs (LSH band collisions) by their exact Jaccard; the verified ones
# MAGIC are those at or above `dedup.jaccard_threshold`.

# COMMAND ----------

edges.where("kind = 'near'").groupBy(F.floor(F.col("jaccard") * 10).alias("jaccard_decile")).agg(
    F.count("*").alias("pairs"), F.sum(F.col("verified").cast("int")).alias("verified")
).orderBy("jaccard_decile").show(truncate=False)

# COMMAND ----------

# MAGIC %md Duplicate rate by source.

# COMMAND ----------

deduped.groupBy("source").agg(
    F.count("*").alias("documents"),
    F.sum(F.col("is_duplicate").cast("int")).alias("duplicates"),
    F.round(F.avg(F.col("is_duplicate").cast("double")), 4).alias("duplicate_rate"),
).orderBy(F.desc("duplicates")).show(truncate=False)
