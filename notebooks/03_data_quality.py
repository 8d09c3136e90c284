# Databricks notebook source
# MAGIC %md
# MAGIC # Data-quality verdicts: the `dq_results` table
# MAGIC Every gate writes one row per expectation: table, version, suite, severity, success and the observed
# MAGIC value. This notebook shows the newest verdict of each table, what failed or warned, and how the
# MAGIC warnings moved across table versions. Same library calls on Databricks and locally.

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
results = delta.read(spark, delta.table_ref(cfg.storage, "dq_results"))

# COMMAND ----------

# MAGIC %md The newest validation of every table: expectations passed, warnings, errors.

# COMMAND ----------

newest = Window.partitionBy("table").orderBy(F.desc("table_version"), F.desc("checked_at"))
latest = results.withColumn("_rank", F.dense_rank().over(newest)).where("_rank = 1").drop("_rank").cache()
latest.groupBy("suite", "table", "table_version", "checked_at").agg(
    F.sum(F.col("success").cast("int")).alias("passed"),
    F.sum((~F.col("success") & (F.col("severity") == "warn")).cast("int")).alias("warnings"),
    F.sum((~F.col("success") & (F.col("severity") == "error")).cast("int")).alias("errors"),
).orderBy("suite").show(truncate=False)

# COMMAND ----------

# MAGIC %md What did not pass, with the observed value and examples of unexpected values.

# COMMAND ----------

latest.where("NOT success").select("suite", "severity", "description", "observed", "details").show(
    truncate=80
)

# COMMAND ----------

# MAGIC %md Each expectation's outcome across table versions: a warning that appears at one version
# MAGIC and stays is a change in the data, not noise.

# COMMAND ----------

results.groupBy("suite", "table_version").agg(
    F.count("*").alias("expectations"),
    F.sum((~F.col("success")).cast("int")).alias("not_passed"),
    F.max("checked_at").alias("checked_at"),
).orderBy("suite", "table_version").show(truncate=False)
