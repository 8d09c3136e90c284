"""Connected components of an edge DataFrame: alternating large-star / small-star rounds on Spark.

Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014). Edges are kept oriented
as (node, parent) with parent < node. Large-star links every neighbour larger than a node to the
node's smallest neighbour (itself included); small-star links a node and its smaller neighbours to
the smallest of them. Both are one group-by and one join. The fixed point is a forest of stars, each
centred on its component's smallest node, which is exactly when no parent has a parent and no node
has two parents: that count is the only thing the driver sees per round. Only `min` and `distinct` decide
anything, so the result does not depend on partitioning, ordering, caching or adaptive execution.
Every round is cut from its plan by a local checkpoint (each round reads its input twice, so the
plan would otherwise double per round), and every `checkpoint_every` rounds the edges are written as
Parquet and read back, so a lost executor recomputes from the last checkpoint, not from round 1.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class ComponentsDidNotConverge(RuntimeError):
    """More than max_rounds rounds: the message names dedup.max_rounds."""


@dataclass
class Components:
    """`assignments`: (node, root) for every node of an edge, root the smallest node of its component."""

    assignments: object  # DataFrame
    rounds: int
    open_per_round: list[int] = field(default_factory=list)
    checkpoint_path: str = ""

    def cleanup(self, spark) -> None:
        """Delete the checkpoints, once whatever reads `assignments` has been written."""
        if self.checkpoint_path:
            remove_path(spark, self.checkpoint_path)


def _oriented(edges):
    from pyspark.sql import functions as F

    return (
        edges.where(F.col("src") != F.col("dst"))
        .select(F.greatest("src", "dst").alias("node"), F.least("src", "dst").alias("parent"))
        .distinct()
    )


def large_star(edges):
    """(node, parent) -> each node's larger neighbours linked to its smallest neighbour (or itself).

    Duplicates are left in: small-star's minimum does not mind them and its output is distinct.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    both = edges.select(F.col("node").alias("u"), F.col("parent").alias("v")).unionByName(
        edges.select(F.col("parent").alias("u"), F.col("node").alias("v"))
    )
    smallest = F.least(F.min("v").over(Window.partitionBy("u")), F.col("u"))
    return (
        both.withColumn("m", smallest)
        .where(F.col("v") > F.col("u"))
        .select(F.col("v").alias("node"), F.col("m").alias("parent"))
    )


def small_star(edges):
    """(node, parent) -> each node and its smaller neighbours linked to the smallest of them."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    linked = edges.withColumn("m", F.min("parent").over(Window.partitionBy("node")))
    moved = linked.where(F.col("parent") != F.col("m")).select(
        F.col("parent").alias("node"), F.col("m").alias("parent")
    )
    return moved.unionByName(linked.select("node", F.col("m").alias("parent"))).distinct()


def _not_stars(edges) -> int:
    """Nodes that are a parent and have a parent, or have two parents: 0 exactly when every component
    is one star. (A leaf of two stars joins them: small-star can give a node a second parent when it
    moves the node's children to their own minimum, and that node then has no children left.)

    `edges` is distinct (small-star's output), so a child's row count is its number of parents."""
    from pyspark.sql import functions as F

    roles = edges.select(
        F.col("node").alias("id"), F.lit(1).alias("child"), F.lit(0).alias("parent")
    ).unionByName(
        edges.select(F.col("parent").alias("id"), F.lit(0).alias("child"), F.lit(1).alias("parent"))
    )
    open_nodes = (
        roles.groupBy("id")
        .agg((F.max("child") + F.max("parent")).alias("roles"), F.sum("child").alias("parents"))
        .where((F.col("roles") == 2) | (F.col("parents") > 1))
    )
    return open_nodes.count()


def connected_components(
    edges, checkpoint_dir: str, checkpoint_every: int = 3, max_rounds: int = 60
) -> Components:
    """`edges` (src, dst), undirected, any orderable type -> Components; nodes without edges are absent."""

    spark = edges.sparkSession
    path = f"{checkpoint_dir.rstrip('/')}/components-{uuid.uuid4().hex[:12]}"
    current = _checkpoint(_oriented(edges), f"{path}/round-0")
    counts: list[int] = []
    if current.isEmpty():
        return Components(current.select("node", current["parent"].alias("root")), 0, counts, path)
    for rounds in range(1, max_rounds + 1):
        # Each round reads its input twice: without a cut the plan would double every round.
        step = small_star(large_star(current)).localCheckpoint(eager=True)
        open_nodes = _not_stars(step)
        counts.append(open_nodes)
        log.info("components: round %d, %d nodes still between a leaf and its root", rounds, open_nodes)
        if rounds % checkpoint_every == 0 or open_nodes == 0:
            step = _checkpoint(step, f"{path}/round-{rounds}")  # reliable: survives a lost executor
        current = step
        if open_nodes == 0:
            assignments = current.select("node", current["parent"].alias("root"))
            return Components(assignments, rounds, counts, path)
    remove_path(spark, path)
    raise ComponentsDidNotConverge(
        f"dedup.max_rounds: connected components did not converge in {max_rounds} rounds "
        f"({counts[-1]} nodes still open); raise dedup.max_rounds"
    )


def _checkpoint(frame, path: str):
    frame.write.mode("overwrite").parquet(path)
    return frame.sparkSession.read.parquet(path)


def remove_path(spark, path: str) -> None:
    """Delete a scratch folder: a local path directly, anything else through Hadoop's FileSystem."""
    if "://" not in path or path.startswith("file:"):
        shutil.rmtree(Path(path.removeprefix("file:")), ignore_errors=True)
        return
    try:  # classic Spark; on Spark Connect there is no JVM handle and scratch lifecycle rules apply
        jvm = spark.sparkContext._jvm
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(hadoop_path, True)
    except Exception as exc:  # pragma: no cover - depends on the platform
        log.warning("components: could not delete checkpoints at %s (%s)", path, exc)
