"""Broadcasts chosen from a measured size, under the session's own threshold."""

from __future__ import annotations

import pytest

from slm_curator.joins import broadcast_if_small, measured_bytes, parse_bytes


@pytest.mark.parametrize(
    "value, expected",
    [("10485760b", 10485760), ("10MB", 10 * 2**20), ("64k", 65536), ("1g", 2**30), ("-1", -1), ("0", 0)],
)
def test_spark_size_strings(value, expected):
    assert parse_bytes(value) == expected


@pytest.mark.parametrize("value", ["ten", "10 parsecs", ""])
def test_a_size_that_is_not_one_is_refused(value):
    with pytest.raises(ValueError, match="not a Spark size"):
        parse_bytes(value)


def _plan(frame) -> str:
    return frame._jdf.queryExecution().executedPlan().toString()


@pytest.mark.spark
def test_a_checkpointed_join_result_is_broadcast_only_when_measured_small(spark):
    from pyspark.sql import functions as F

    big = spark.range(5_000_000).select(F.format_string("d%06d", "id").alias("doc_id"), F.lit("x").alias("t"))
    # 300 rows from a checkpointed cross join: Spark's estimate is the product of the sides (~11 MB).
    left = spark.range(300).select(F.format_string("d%06d", "id").alias("doc_id")).localCheckpoint()
    small = left.crossJoin(spark.range(1000).select(F.col("id").alias("k"))).where("k = 0").localCheckpoint()
    assert 300 * 24 <= measured_bytes(small) <= 300 * 40
    previous = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "false")  # the plan as chosen up front
    try:
        assert "BroadcastHashJoin" not in _plan(big.join(small, "doc_id"))  # Spark alone would not
        assert "BroadcastHashJoin" in _plan(big.join(broadcast_if_small(small), "doc_id"))
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
        assert "BroadcastHashJoin" not in _plan(big.join(broadcast_if_small(small), "doc_id"))
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "1k")
        assert "BroadcastHashJoin" not in _plan(big.join(broadcast_if_small(small), "doc_id"))
    finally:
        spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")
        spark.conf.set("spark.sql.adaptive.enabled", previous)
