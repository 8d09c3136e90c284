# Databricks notebook source
# MAGIC %md
# MAGIC # Tune filter thresholds from stored signals
# MAGIC `filtered` keeps every document with every signal, so a threshold can be re-tried in seconds
# MAGIC without recomputing anything: this notebook sweeps one, shows which reasons overlap, and shows
# MAGIC documents that a single rule drops on its own (the ones a threshold change would bring back).

# COMMAND ----------

import sys

from pyspark.sql import functions as F

from slm_curator import delta
from slm_curator.config import load_config
from slm_curator.spark import get_spark, platform

env = "databricks" if platform() == "databricks" else "local"
cfg = load_config(env, overrides=sys.argv[1:] if env == "local" and __name__ == "__main__" else [])
spark = get_spark(cfg)
filtered = delta.read(spark, delta.table_ref(cfg.storage, "filtered"))
total = filtered.count()
print(f"{total} documents, {filtered.where('keep').count()} kept")

# COMMAND ----------

# MAGIC %md Sweep: the keep rate of the Gopher word-count rule alone, and of the whole filter, per threshold.

# COMMAND ----------

signal, current = "gopher_words", cfg.filter.gopher.min_doc_words
others_keep = F.expr("size(filter(drop_reasons, r -> r <> 'gopher_short_doc')) = 0")
sweep = filtered.select(F.col(f"signals.{signal}").alias("v"), others_keep.alias("others_keep")).agg(
    *[F.avg((F.col("v") >= t).cast("double")).alias(f"rule_keep@{t}") for t in (10, 25, current, 100, 200)],
    *[
        F.avg(((F.col("v") >= t) & F.col("others_keep")).cast("double")).alias(f"all_keep@{t}")
        for t in (10, 25, current, 100, 200)
    ],
)
sweep.show(truncate=False)

# COMMAND ----------

# MAGIC %md Which reasons come together (pairs of reasons on the same document).

# COMMAND ----------

pairs = (
    filtered.select("doc_id", F.explode("drop_reasons").alias("a"))
    .join(filtered.select("doc_id", F.explode("drop_reasons").alias("b")), "doc_id")
    .where("a < b")
    .groupBy("a", "b")
    .count()
    .orderBy(F.desc("count"))
)
pairs.show(15, truncate=False)

# COMMAND ----------

# MAGIC %md Documents dropped by exactly one reason: what each rule removes on its own.

# COMMAND ----------

only = filtered.where("size(drop_reasons) = 1").select(
    F.col("drop_reasons")[0].alias("reason"), "doc_id", F.substring("text", 1, 160).alias("text")
)
only.groupBy("reason").count().orderBy(F.desc("count")).show(truncate=False)
only.orderBy("reason", "doc_id").show(20, truncate=100)
