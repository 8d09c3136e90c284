"""Broadcast joins that Spark cannot choose by itself.

A checkpointed frame keeps the size estimate of the plan that made it, and without cost-based
optimisation a join's estimate is the product of its sides: a few thousand edges look like
terabytes. Spark then shuffles the other side too, even when that side is every document's text,
and adaptive execution switches to a broadcast only after both sides have been shuffled. A frame
whose size is measured (a small aggregate over the materialised rows) can be broadcast knowingly,
under the session's own `spark.sql.autoBroadcastJoinThreshold`.
"""

from __future__ import annotations

import re

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, StringType

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30, "gb": 2**30}


def parse_bytes(value: str) -> int:
    """Spark's size strings ("10485760b", "10MB", "-1") as bytes; -1 stays -1 (broadcast off)."""
    match = re.fullmatch(r"\s*(-?\d+)\s*([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a Spark size: {value!r}")
    number = int(match.group(1))
    return number if number < 0 else number * _UNITS[match.group(2).lower()]


def broadcast_threshold(spark) -> int:
    return parse_bytes(spark.conf.get("spark.sql.autoBroadcastJoinThreshold", "10MB"))


def measured_bytes(frame: DataFrame) -> int:
    """In-memory size of a (materialised) frame as Spark's rows hold it: 8 bytes a field plus the
    string and binary bytes, rounded to words (nested types count their slot only); one aggregate."""
    variable = [f.name for f in frame.schema.fields if isinstance(f.dataType, (StringType, BinaryType))]
    fixed = 8 * (len(frame.schema.fields) + 1)
    sizes = [F.coalesce(F.sum(F.ceil(F.octet_length(F.col(c)) / 8) * 8), F.lit(0)) for c in variable]
    row = frame.agg(F.count(F.lit(1)).alias("rows"), *[s.alias(f"v{i}") for i, s in enumerate(sizes)]).first()
    return int(row["rows"]) * fixed + sum(int(row[f"v{i}"]) for i in range(len(variable)))


def broadcast_if_small(frame: DataFrame) -> DataFrame:
    """`frame` with a broadcast hint when its measured size is under the threshold, else as it is."""
    limit = broadcast_threshold(frame.sparkSession)
    if limit >= 0 and measured_bytes(frame) <= limit:
        return F.broadcast(frame)
    return frame
