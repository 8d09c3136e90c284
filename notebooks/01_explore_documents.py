# Databricks notebook source
# MAGIC %md
# MAGIC # Explore the `documents` and `quarantine` tables
# MAGIC Runs on Databricks (the cluster's session, Unity Catalog names) or locally (`pip install -e .`,
# MAGIC then run this file as a script or open it in Jupyter with jupytext): the same library calls.

# COMMAND ----------

import sys

from slm_curator import delta
from slm_curator.config import load_config
from slm_curator.spark import get_spark, platform

env = "databricks" if platform() == "databricks" else "local"
cfg = load_config(env, overrides=sys.argv[1:] if env == "local" and __name__ == "__main__" else [])
spark = get_spark(cfg)
documents = delta.read(spark, delta.table_ref(cfg.storage, "documents"))
quarantine = delta.read(spark, delta.table_ref(cfg.storage, "quarantine"))

# COMMAND ----------

# MAGIC %md Documents per source and format, with text length quantiles.

# COMMAND ----------

from pyspark.sql import Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

by_source = (
    documents.groupBy("source", "format")
    .agg(
        F.count("*").alias("documents"),
        F.percentile_approx(F.length("text"), [0.1, 0.5, 0.9]).alias("chars_p10_p50_p90"),
    )
    .orderBy(F.desc("documents"))
)
by_source.show(50, truncate=False)

# COMMAND ----------

# MAGIC %md Why records were quarantined, and one example of each reason.

# COMMAND ----------

quarantine.groupBy("reason").count().orderBy(F.desc("count")).show(truncate=False)
first = F.row_number().over(Window.partitionBy("reason").orderBy("file", "offset"))
quarantine.withColumn("_n", first).where("_n = 1").select(
    "reason", "file", "offset", "detail", F.substring("raw", 1, 120).alias("raw")
).show(truncate=False)

# COMMAND ----------

# MAGIC %md Table history: every ingest is a Delta version that MLflow runs point at.

# COMMAND ----------

delta.history(spark, delta.table_ref(cfg.storage, "documents")).select(
    "version", "timestamp", "operation", "operationMetrics"
).show(truncate=False)
