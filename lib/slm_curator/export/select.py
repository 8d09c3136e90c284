"""Spark side of selection: hash-derived keys and exact token-budget prefixes without a global sort.

"Take documents in key order until the budget is spent" is a running sum over a sorted table. A window
ordered over a whole source puts that source in one task; instead keys are cut into ~1000 quantile
buckets, bucket token totals (a small aggregate) fix which buckets are wholly in, and only the one
boundary bucket per group is sorted. The answer is exact whatever the cut points are.
"""

from __future__ import annotations

from pyspark.ml.feature import Bucketizer
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from slm_curator.export.sampling import TWO_POW_52


def hash_uniform(seed: int | Column, *cols) -> Column:
    """A uniform in (0, 1) from xxhash64(seed, cols): same value on any partitioning, any run."""
    h = F.xxhash64(seed if isinstance(seed, Column) else F.lit(seed), *cols)
    return (F.shiftrightunsigned(h, 12).cast("double") + F.lit(0.5)) / F.lit(TWO_POW_52)


def gumbel_key(score: Column, u: Column, temperature: float) -> Column:
    """Spark twin of sampling.gumbel_keys."""
    return score / F.lit(temperature) - F.log(-F.log(u))


def take_prefix(
    df: DataFrame,
    key: str,
    weight: str,
    budgets: dict[str, int],
    group: str,
    tiebreak: str,
    out: str = "in_prefix",
    buckets: int = 1000,
) -> DataFrame:
    """Mark rows that fall in the key-descending prefix of their group with cumulative weight ≤ budget.

    Groups missing from `budgets` take nothing. Ties in `key` are broken by `tiebreak` ascending.
    """
    spark = df.sparkSession
    cuts = sorted(set(df.approxQuantile(key, [i / buckets for i in range(1, buckets)], 0.5 / buckets)))
    splits = [float("-inf"), *(cuts or [0.0]), float("inf")]  # Bucketizer wants >= 3 splits
    bucketed = (
        Bucketizer(splits=splits, inputCol=key, outputCol="_b")
        .transform(df)
        .withColumn("_bucket", F.col("_b").cast("int"))
        .drop("_b")
    )
    totals = bucketed.groupBy(group, "_bucket").agg(F.sum(weight).alias("w")).collect()
    per_group: dict[str, list[tuple[int, int]]] = {}
    for row in totals:
        per_group.setdefault(row[group], []).append((row["_bucket"], int(row["w"] or 0)))
    bounds = []  # (group, boundary bucket, budget left for it)
    for name, rows in per_group.items():
        left = int(budgets.get(name, 0))
        boundary = len(splits)  # above every bucket: nothing in
        for bucket, w in sorted(rows, reverse=True):
            boundary = bucket
            if w > left:
                break
            left -= w
        else:
            boundary, left = -1, 0  # the whole group fits
        bounds.append((name, boundary, left))
    schema = f"`{group}` string, _boundary int, _left long"
    bound_df = F.broadcast(spark.createDataFrame(bounds, schema))
    joined = bucketed.join(bound_df, group, "left")
    inner = joined.where(F.col("_bucket") == F.col("_boundary"))
    order = Window.partitionBy(group).orderBy(F.col(key).desc(), F.col(tiebreak).asc())
    running = F.sum(weight).over(order.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    inner = inner.withColumn(out, running <= F.col("_left"))
    outer = joined.where(F.col("_boundary").isNull() | (F.col("_bucket") != F.col("_boundary"))).withColumn(
        out, F.coalesce(F.col("_bucket") > F.col("_boundary"), F.lit(False))
    )
    return inner.unionByName(outer).drop("_bucket", "_boundary", "_left")
