"""One representative per cluster, by a configured policy; every other member is its duplicate."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from slm_curator.errors import ConfigError

POLICY_COLUMNS = {"quality": "quality_score", "earliest": "ingested_at"}


def check_policy(policy: str, columns: list[str], table: str) -> None:
    """A policy that needs a column the input lacks fails before any work, naming the key."""
    needed = POLICY_COLUMNS.get(policy)
    if needed and needed not in columns:
        raise ConfigError(
            f"dedup.representative: {policy!r} needs a {needed} column, which {table} does not have; "
            "allowed values: 'longest', 'quality', 'earliest'"
        )


def priority(policy: str) -> list[Column]:
    """Sort order of a cluster's members, best first; doc_id breaks every tie, so the choice is total.
    `longest` reads `_length` (the text's characters), so the members need not carry their text."""
    first = [F.col("_keep_in").desc()]  # a member the previous stage kept beats one it dropped
    if policy == "longest":
        first.append(F.col("_length").desc_nulls_last())
    elif policy == "quality":
        first.append(F.col("quality_score").desc_nulls_last())
    elif policy == "earliest":
        first.append(F.col("ingested_at").asc_nulls_last())
    return [*first, F.col("doc_id").asc()]


def choose_representatives(clustered: DataFrame, policy: str) -> DataFrame:
    """(…, cluster_id, _keep_in, _length) -> + is_duplicate, duplicate_of, cluster_size."""
    ordered = Window.partitionBy("cluster_id").orderBy(*priority(policy))
    whole = Window.partitionBy("cluster_id")
    rank = F.row_number().over(ordered)
    return clustered.withColumns(
        {
            "is_duplicate": rank > 1,
            "duplicate_of": F.when(rank > 1, F.first("doc_id").over(ordered)),
            "cluster_size": F.count(F.lit(1)).over(whole),
        }
    )
