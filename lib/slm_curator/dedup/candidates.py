"""Candidate edges: exact-hash groups and LSH band collisions as star edges, then exact-Jaccard verification.

A group (an exact hash, or one band's key) links each member to its smallest `doc_id`: k members give
k - 1 edges, never k^2 / 2, so a bucket of 10,000 boilerplate pages costs 9,999 edges. Components
over the union of star edges are the components over all pairs, because a star spans its group.
Only one document per exact hash (the smallest id) takes part in banding: its copies join it through
their exact edges, so copies never crowd the LSH buckets.

With verification a star can lose a pair: a member not similar to the center fails, though it may be
similar to another member. So with verification each member is linked to the bucket's
`dedup.star_centers` smallest members (default 3), all checked in one pass: still linear in the
bucket's size, and a pair is lost only when neither is among the first centers and each fails them.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from slm_curator.joins import broadcast_if_small

EDGE_COLUMNS = ["src", "dst", "kind", "jaccard", "verified"]
BUCKET = ["band", "key"]


def _stars(members: DataFrame, group: list[str], centers: int = 1) -> DataFrame:
    """(doc_id, *group) -> (src, dst): every member of a group of 2+ linked to its `centers` smallest ids
    (smaller than its own), so src > dst always.

    One hash aggregation per group collects its sorted ids; nothing sorts the (mostly single-member)
    groups as a window would. A group's ids are one array, as large as the group (a bucket of a
    million boilerplate pages: ~20 MB in one task)."""
    grouped = (
        members.groupBy(*group)
        .agg(F.array_sort(F.collect_list("doc_id")).alias("_ids"))
        .where(F.size("_ids") > 1)
    )
    heads = F.slice("_ids", 1, centers)
    pairs = F.transform(
        F.slice("_ids", 2, F.size("_ids") - 1),
        lambda src, i: F.transform(
            F.slice(heads, 1, F.least(i + 1, F.lit(centers))),
            lambda dst: F.struct(src.alias("src"), dst.alias("dst")),
        ),
    )
    return grouped.select(F.explode(F.flatten(pairs)).alias("_e")).select("_e.src", "_e.dst")


def exact_edges(signatures: DataFrame) -> DataFrame:
    return _stars(
        signatures.where(F.col("exact_hash").isNotNull()).select("doc_id", "exact_hash"), ["exact_hash"]
    )


def canonical(signatures: DataFrame) -> DataFrame:
    """The smallest doc_id of each exact hash (documents without words have no bands and drop out)."""
    smallest = (
        signatures.where(F.col("exact_hash").isNotNull())
        .groupBy("exact_hash")
        .agg(F.min("doc_id").alias("doc_id"))
    )
    return signatures.join(smallest, ["exact_hash", "doc_id"], "left_semi").where(F.col("bands").isNotNull())


def band_rows(signatures: DataFrame) -> DataFrame:
    return signatures.select("doc_id", F.posexplode("bands").alias("band", "key"))


def bucket_rows(signatures: DataFrame, touching: DataFrame | None = None) -> DataFrame:
    """(doc_id, band, key) of the banded documents; with `touching` (doc_id), only its buckets."""
    rows = band_rows(canonical(signatures))
    if touching is not None:
        buckets = rows.join(touching, "doc_id", "left_semi").select(*BUCKET).distinct()
        rows = rows.join(buckets, BUCKET, "left_semi")
    return rows


def band_edges(signatures: DataFrame, touching: DataFrame | None = None, centers: int = 1) -> DataFrame:
    """Star edges of every LSH bucket with 2+ members; with `touching` (doc_id), only its buckets."""
    return _stars(bucket_rows(signatures, touching), BUCKET, centers).distinct()


def endpoint_sets(edges: DataFrame, texts: DataFrame, cfg) -> DataFrame:
    """(doc_id, shingles) of every endpoint, computed once and materialised (both join sides read it)."""
    from slm_curator.dedup.signatures import shingle_sets

    ends = edges.select(F.col("src").alias("doc_id")).unionByName(edges.select(F.col("dst").alias("doc_id")))
    # Broadcast when small: otherwise every document's text is shuffled to meet a few thousand ids.
    ends = broadcast_if_small(ends.distinct().localCheckpoint(eager=True))
    return shingle_sets(texts.join(ends, "doc_id", "left_semi"), cfg).localCheckpoint(eager=True)


def verify(edges: DataFrame, sets: DataFrame, cfg) -> DataFrame:
    """(src, dst) -> (src, dst, jaccard, verified): exact Jaccard of the two shingle sets, which meet in
    Spark's `array_intersect`; `sets` is (doc_id, shingles) from `endpoint_sets`."""
    a = sets.select(F.col("doc_id").alias("src"), F.col("shingles").alias("a"))
    b = sets.select(F.col("doc_id").alias("dst"), F.col("shingles").alias("b"))
    inter = F.size(F.array_intersect("a", "b"))
    union = F.size("a") + F.size("b") - inter
    jaccard = F.when(union > 0, inter / union).otherwise(F.lit(0.0))
    return (
        edges.join(a, "src")
        .join(b, "dst")
        .select("src", "dst", jaccard.alias("jaccard"))
        .withColumn("verified", F.col("jaccard") >= F.lit(cfg.jaccard_threshold))
    )


def near_edges(signatures: DataFrame, texts: DataFrame, cfg, touching=None) -> DataFrame:
    """Band edges (between documents of different exact hashes), verified, or with verify off all
    accepted (one center then gives the same components); `texts` is (doc_id, text)."""
    if not cfg.verify:
        edges = band_edges(signatures, touching)
        checked = edges.withColumns({"jaccard": F.lit(None).cast("double"), "verified": F.lit(True)})
    else:
        edges = band_edges(signatures, touching, cfg.star_centers).localCheckpoint(eager=True)
        checked = verify(edges, endpoint_sets(edges, texts, cfg), cfg)
    return checked.withColumn("kind", F.lit("near")).select(*EDGE_COLUMNS)


def with_kind(exact: DataFrame) -> DataFrame:
    return exact.withColumns({"kind": F.lit("exact"), "jaccard": F.lit(1.0), "verified": F.lit(True)}).select(
        *EDGE_COLUMNS
    )
