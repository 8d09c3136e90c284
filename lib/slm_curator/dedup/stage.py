"""The dedup stage: its input table (default `filtered`, rows `keep`) -> `deduped`, every row kept.

Exact duplicates share a hash of normalised text; near duplicates share an LSH bucket and pass an
exact-Jaccard check. Both kinds of edge go into one connected-components run on Spark, and each
cluster keeps one representative (`keep`); the others are `is_duplicate` with `duplicate_of` naming
it. Signatures persist in `dedup_signatures`, so a later input version hashes only its new documents
and attaches them to the clusters already there, without moving an existing representative.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from slm_curator import delta
from slm_curator.dedup import candidates
from slm_curator.dedup.components import connected_components
from slm_curator.dedup.select import POLICY_COLUMNS, check_policy, choose_representatives
from slm_curator.dedup.signatures import signatures
from slm_curator.errors import ConfigError
from slm_curator.fingerprint import fingerprint
from slm_curator.joins import broadcast_if_small
from slm_curator.stage import Stage, StageContext, StageResult, only_grew, read_stamp

log = logging.getLogger(__name__)


@contextmanager
def _phase(name: str):
    started = time.time()
    yield
    log.info("dedup: %s (%.1fs)", name, time.time() - started)


DEDUP_COLUMNS = ["exact_hash", "cluster_id", "cluster_size", "is_duplicate", "duplicate_of"]
SIZE_BINS = (1, 2, 3, 5, 10, 100, 1000)  # cluster-size histogram: [1], [2], [3, 4], [5, 9], ...


@dataclass
class DedupRun:
    """What one run did, for the summary and MLflow."""

    mode: str  # full | incremental | unchanged
    hashed: int = 0  # documents whose signature was computed in this run
    candidate_edges: int = 0
    verified_edges: int = 0
    exact_edges: int = 0
    rounds: int = 0
    bridged_clusters: int = 0
    notes: list[str] = field(default_factory=list)


SIGNATURE_ALGORITHM = 4  # bump when normalisation or hashing code changes what a signature is


def signature_fingerprint(cfg) -> str:
    """What a stored signature depends on; anything else may change and the signatures stay valid."""
    keys = ("text_column", "normalize", "near_duplicates", "ngram", "num_perm", "bands", "rows", "seed")
    return fingerprint(
        {k: getattr(cfg, k) for k in keys}
        | {"normalize": dataclasses.asdict(cfg.normalize), "algorithm": SIGNATURE_ALGORITHM}
    )


def input_documents(ctx: StageContext) -> DataFrame:
    """The input rows with `text` (the configured column), `text_key` (a hash of it) and `_keep_in`."""
    cfg = ctx.section
    frame = ctx.input.read(ctx.spark)
    columns = frame.columns
    if cfg.text_column not in columns:
        raise ConfigError(
            f"dedup.text_column: {cfg.text_column!r} is not a column of {ctx.input.ref.name}; "
            f"allowed values: {', '.join(c for c in columns if dict(frame.dtypes)[c] == 'string')}"
        )
    check_policy(cfg.representative, columns, ctx.input.ref.name)
    keep_in = F.coalesce(F.col("keep"), F.lit(False)) if "keep" in columns else F.lit(True)
    return frame.withColumns(
        {
            "_text": F.col(cfg.text_column),
            "_keep_in": keep_in,
            "_text_key": F.xxhash64(F.col(cfg.text_column)),
            "_length": F.length(F.col(cfg.text_column)),
        }
    )


def update_signatures(spark, docs: DataFrame, cfg, ref: delta.TableRef, full: bool) -> tuple[DataFrame, int]:
    """Signatures of every input document, hashing only those the table lacks; (signatures, hashed).

    Rows are keyed by (doc_id, text_key, config): a changed text or signature config is a new row.
    New rows are appended; a full run also drops rows no current document has (changed texts, other
    configs, documents gone), and writes nothing when there are none.
    """
    fp = signature_fingerprint(cfg)
    keys = docs.select("doc_id", F.col("_text_key").alias("text_key"), F.col("_text").alias("text"))
    key_cols = ["doc_id", "text_key"]
    if not delta.exists(spark, ref):
        hashed = delta.write(
            signatures(keys, cfg).withColumn("config", F.lit(fp)), ref, "overwrite", user_metadata=fp
        ).rows_inserted
        # A new table holds exactly these documents: no need to rescan and rehash every text to match.
        return delta.read(spark, ref).drop("config").localCheckpoint(eager=True), hashed
    else:
        stored = delta.read(spark, ref).where(F.col("config") == fp)
        missing = keys.join(stored.select(*key_cols), key_cols, "left_anti")
        hashed = missing.count()  # keys only: the hashing UDF runs once, inside the write below
        if hashed:
            delta.write(
                signatures(missing, cfg).withColumn("config", F.lit(fp)), ref, "append", user_metadata=fp
            )
        if full:
            table = delta.read(spark, ref)
            current = table.where(F.col("config") == fp).join(keys.select(*key_cols), key_cols, "left_semi")
            if table.count() > current.count():
                delta.write(current.localCheckpoint(eager=True), ref, "overwrite", user_metadata=fp)
    current = delta.read(spark, ref).where(F.col("config") == fp).drop("config")
    # Materialised: every later step reads it, and the semi-join would rescan and rehash every text.
    return current.join(keys.select(*key_cols), key_cols, "left_semi").localCheckpoint(eager=True), hashed


def _edges_and_components(ctx, docs, sigs, run: DedupRun, touching=None):
    """Exact and verified near edges, written to dedup_edges; the accepted ones (src, dst)."""
    cfg = ctx.section
    spark = ctx.spark
    exact = candidates.exact_edges(sigs)
    if touching is not None:  # only groups with a new member; old-old edges are already decided
        exact = exact.join(touching.select(F.col("doc_id").alias("src")), "src", "left_semi").unionByName(
            exact.join(touching.select(F.col("doc_id").alias("dst")), "dst", "left_semi")
        )
    edges = candidates.with_kind(exact.distinct())
    if cfg.near_duplicates:
        texts = docs.select("doc_id", F.col("_text").alias("text"))
        with _phase("LSH candidates and their shingle sets"):
            edges = edges.unionByName(candidates.near_edges(sigs, texts, cfg, touching))
    edges_ref = delta.table_ref(ctx.cfg.storage, cfg.edges_table)
    stamped = edges.withColumns(
        {"run_id": F.lit(ctx.run_id or ""), "input_version": F.lit(ctx.input.version)}
    )
    with _phase("candidate edges, verified"):
        delta.write(stamped, edges_ref, "append" if touching is not None else "overwrite")
    written = delta.read(spark, edges_ref).where(F.col("input_version") == ctx.input.version)
    counts = written.agg(
        F.sum((F.col("kind") == "exact").cast("long")).alias("exact"),
        F.sum((F.col("kind") == "near").cast("long")).alias("near"),
        F.sum(((F.col("kind") == "near") & F.col("verified")).cast("long")).alias("verified"),
    ).first()
    run.exact_edges, run.candidate_edges, run.verified_edges = (
        int(counts[k] or 0) for k in ("exact", "near", "verified")
    )
    accepted = written.where("verified").select("src", "dst")
    return accepted


def _checkpoint_dir(ctx) -> str:
    if ctx.section.checkpoint_dir:
        return ctx.section.checkpoint_dir
    scratch = ctx.cfg.storage.scratch or f"{ctx.cfg.storage.root.rstrip('/')}/_scratch"
    return f"{scratch}/dedup"


def _components(ctx, accepted, run: DedupRun):
    cfg = ctx.section
    with _phase("connected components"):
        comps = connected_components(accepted, _checkpoint_dir(ctx), cfg.checkpoint_every, cfg.max_rounds)
    run.rounds = comps.rounds
    for i, open_nodes in enumerate(comps.open_per_round, 1):  # the convergence curve, one point per round
        ctx.tracker.log_metrics({"components_open_nodes": open_nodes}, step=i)
    log.info(
        "dedup: components converged in %d rounds (open nodes per round: %s)",
        comps.rounds,
        comps.open_per_round,
    )
    return comps


def full_run(ctx, docs, sigs, run: DedupRun):
    accepted = _edges_and_components(ctx, docs, sigs, run)
    comps = _components(ctx, accepted, run)
    policy = ctx.section.representative
    # Decided on narrow rows, then joined to the documents once: the text is shuffled once, not thrice.
    narrow = [c for c in ("doc_id", "_keep_in", "_length", POLICY_COLUMNS.get(policy)) if c]
    clustered = (
        docs.select(*narrow)
        .join(sigs.select("doc_id", "exact_hash"), "doc_id", "left")
        .join(comps.assignments.withColumnRenamed("node", "doc_id"), "doc_id", "left")
        .withColumn("cluster_id", F.coalesce("root", "doc_id"))
        .drop("root")
    )
    decided = choose_representatives(clustered, policy).drop(*narrow[1:]).localCheckpoint(eager=True)
    # Up to ~10 MB of decisions (about 60,000 documents) go to every task instead of the text to them.
    return docs.join(broadcast_if_small(decided), "doc_id"), comps


def incremental_run(ctx, docs, sigs, previous: DataFrame, run: DedupRun):
    """New documents join the clusters already there; old rows keep their cluster and their flags.

    Edges are contracted onto old clusters (an old document stands for its cluster) and edges between
    two old clusters are dropped: an existing decision is not reopened. A new document linked to old
    clusters joins the smallest of them (`bridged_clusters` counts components that touched several;
    a full rebuild would merge those); new documents linked to no old cluster form clusters of their own.
    """
    old = previous.select("doc_id", F.col("cluster_id").alias("old_cluster"))
    new_docs = docs.join(old, "doc_id", "left_anti")
    accepted = _edges_and_components(ctx, docs, sigs, run, touching=new_docs.select("doc_id"))

    def contract(column: str):
        return F.coalesce(F.col(f"{column}_cluster"), F.col(column))

    contracted = (
        accepted.join(
            old.withColumnRenamed("doc_id", "src").withColumnRenamed("old_cluster", "src_cluster"),
            "src",
            "left",
        )
        .join(
            old.withColumnRenamed("doc_id", "dst").withColumnRenamed("old_cluster", "dst_cluster"),
            "dst",
            "left",
        )
        .where(F.col("src_cluster").isNull() | F.col("dst_cluster").isNull())
        .select(contract("src").alias("src"), contract("dst").alias("dst"))
    )
    comps = _components(ctx, contracted, run)
    assigned = comps.assignments
    members = assigned.unionByName(assigned.select(F.col("root").alias("node"), "root")).distinct()
    old_ids = previous.select(F.col("cluster_id").alias("node")).distinct()
    touched = (
        members.join(old_ids, "node", "left_semi")
        .groupBy("root")
        .agg(F.min("node").alias("target"), F.count(F.lit(1)).alias("old_clusters"))
    )
    run.bridged_clusters = touched.where(F.col("old_clusters") > 1).count()
    reps = previous.where(~F.col("is_duplicate")).select(
        F.col("cluster_id").alias("target"), F.col("doc_id").alias("rep")
    )
    placed = (
        new_docs.join(sigs.select("doc_id", "exact_hash"), "doc_id", "left")
        .join(members.withColumnRenamed("node", "doc_id"), "doc_id", "left")  # roots map to themselves
        .join(touched.select("root", "target"), "root", "left")
        .join(reps, "target", "left")
    )
    joined = placed.where(F.col("target").isNotNull()).withColumns(
        {"cluster_id": F.col("target"), "is_duplicate": F.lit(True), "duplicate_of": F.col("rep")}
    )
    fresh = choose_representatives(
        placed.where(F.col("target").isNull()).withColumn("cluster_id", F.coalesce("root", "doc_id")),
        ctx.section.representative,
    ).drop("cluster_size")
    new_rows = joined.drop("root", "target", "rep").unionByName(fresh.drop("root", "target", "rep"))
    # An old row's keep stays what it was: a representative keeps the input's keep, a duplicate stays dropped.
    old_rows = (
        previous.drop("cluster_size")
        .withColumns({"_text": F.col(ctx.section.text_column), "_keep_in": F.col("keep")})
        .drop("keep")
    )
    everything = old_rows.unionByName(new_rows.drop("_text_key"), allowMissingColumns=True)
    sizes = everything.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("cluster_size"))
    return everything.join(sizes, "cluster_id"), comps


def _output(frame: DataFrame, input_columns: list[str]) -> DataFrame:
    keep = F.col("_keep_in") & ~F.col("is_duplicate")
    ordered = [c for c in input_columns if c not in DEDUP_COLUMNS and c != "keep"]
    return frame.withColumn("keep", keep).select(*ordered, "keep", *DEDUP_COLUMNS)


def dedup_work(ctx: StageContext) -> StageResult:
    cfg, spark = ctx.section, ctx.spark
    out_ref = delta.table_ref(ctx.cfg.storage, "deduped")
    stamp = ctx.stamp()
    previous_stamp = read_stamp(spark, out_ref)
    if previous_stamp == stamp:
        return _result(
            ctx,
            out_ref,
            DedupRun(
                "unchanged",
                notes=[
                    f"nothing new: deduped is up to date with {ctx.input.ref.name}@v{ctx.input.version} and this config"
                ],
            ),
        )
    docs = input_documents(ctx)
    input_columns = ctx.input.read(spark).columns
    incremental = only_grew(spark, ctx.input, previous_stamp, stamp)
    run = DedupRun("incremental" if incremental else "full")
    sig_ref = delta.table_ref(ctx.cfg.storage, cfg.signatures_table)
    with _phase("signatures"):
        sigs, run.hashed = update_signatures(spark, docs, cfg, sig_ref, full=not incremental)
    if incremental:
        previous = delta.read(spark, out_ref)
        frame, comps = incremental_run(ctx, docs, sigs, previous, run)
    else:
        frame, comps = full_run(ctx, docs, sigs, run)
    try:
        with _phase("deduped written"):
            delta.write(
                _output(frame, input_columns),
                out_ref,
                "overwrite",
                user_metadata=json.dumps(stamp, sort_keys=True),
            )
    finally:
        comps.cleanup(spark)
    if run.bridged_clusters:
        run.notes.append(
            f"{run.bridged_clusters} new documents' components touched several existing clusters; they joined "
            "the smallest (a full rebuild, e.g. after a config change, merges such clusters)"
        )
    with _phase("summary"):
        return _result(ctx, out_ref, run)


def cluster_bins(table: DataFrame) -> list[dict]:
    """Per cluster-size bin ("1", "2", "3-4", ..., "1000+"): clusters, rows, kept, duplicates and the
    largest size, sorted by bin; one job (the rows of a table are the sum over its bins)."""
    sizes = table.groupBy("cluster_id").agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.col("keep").cast("long")).alias("kept"),
        F.sum(F.col("is_duplicate").cast("long")).alias("duplicates"),
    )
    edges = list(SIZE_BINS)
    label = F.lit(f"{edges[-1]}+")
    for low, high in reversed(list(zip(edges, edges[1:], strict=False))):
        name = str(low) if high == low + 1 else f"{low}-{high - 1}"
        label = F.when(F.col("n") < high, F.lit(name)).otherwise(label)
    rows = (
        sizes.groupBy(label.alias("bin"))
        .agg(
            F.count(F.lit(1)).alias("clusters"),
            F.sum("n").alias("rows"),
            F.coalesce(F.sum("kept"), F.lit(0)).alias("kept"),
            F.coalesce(F.sum("duplicates"), F.lit(0)).alias("duplicates"),
            F.max("n").alias("largest"),
        )
        .collect()
    )
    return [r.asDict() for r in sorted(rows, key=lambda r: _bin_low(r["bin"]))]


def cluster_size_histogram(table: DataFrame) -> dict[str, int]:
    """Clusters per size bin ("1", "2", "3-4", ..., "1000+")."""
    return {b["bin"]: int(b["clusters"]) for b in cluster_bins(table)}


def _bin_low(name: str) -> int:
    return int(name.split("-")[0].rstrip("+"))


def _result(ctx, out_ref, run: DedupRun) -> StageResult:
    bins = cluster_bins(delta.read(ctx.spark, out_ref))
    rows, kept, duplicates, clusters = (
        sum(int(b[k]) for b in bins) for k in ("rows", "kept", "duplicates", "clusters")
    )
    largest = max((int(b["largest"]) for b in bins), default=0)
    rate = duplicates / rows if rows else 0.0
    histogram = {b["bin"]: int(b["clusters"]) for b in bins} if run.mode != "unchanged" else {}
    if histogram:
        _log_histogram(ctx, histogram)
    details = {
        "duplicate rate": f"{rate:.2%} ({duplicates} of {rows}; {run.mode} run)",
        "clusters": f"{clusters}, largest {largest}",
    }
    if run.mode != "unchanged":
        details["edges"] = (
            f"{run.exact_edges} exact, {run.candidate_edges} LSH candidates, {run.verified_edges} verified"
        )
        details["components"] = f"{run.rounds} rounds"
        details["cluster sizes"] = ", ".join(f"{k}: {v}" for k, v in histogram.items())
    metrics = {
        "documents": rows,
        "kept": kept,
        "duplicates": duplicates,
        "duplicate_rate": rate,
        "clusters": clusters,
        "largest_cluster": largest,
        "hashed": run.hashed,
        "exact_edges": run.exact_edges,
        "candidate_edges": run.candidate_edges,
        "verified_edges": run.verified_edges,
        "component_rounds": run.rounds,
        "bridged_clusters": run.bridged_clusters,
    }
    return StageResult(
        input_rows=rows,
        output_rows=kept,
        new_rows=run.hashed,
        version=delta.current_version(ctx.spark, out_ref),
        notes=run.notes,
        details=details,
        metrics=metrics,
        outputs=[
            (ref, delta.current_version(ctx.spark, ref))
            for ref in (
                delta.table_ref(ctx.cfg.storage, ctx.section.signatures_table),
                delta.table_ref(ctx.cfg.storage, ctx.section.edges_table),
            )
        ],
    )


def _log_histogram(ctx, histogram: dict[str, int]) -> None:
    """The cluster-size histogram as a bar chart (log scale) and JSON in the stage's MLflow run."""
    if not ctx.tracker.enabled:
        return
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(list(histogram), list(histogram.values()))
    ax.set_yscale("log")
    ax.set_xlabel("cluster size (documents)")
    ax.set_ylabel("clusters")
    ax.set_title("dedup: cluster sizes")
    fig.tight_layout()
    with tempfile.TemporaryDirectory() as tmp:
        fig.savefig(Path(tmp) / "dedup_cluster_sizes.png", dpi=90)
        (Path(tmp) / "dedup_cluster_sizes.json").write_text(json.dumps(histogram, indent=1))
        ctx.tracker.log_artifact(str(Path(tmp) / "dedup_cluster_sizes.png"))
        ctx.tracker.log_artifact(str(Path(tmp) / "dedup_cluster_sizes.json"))
    plt.close(fig)


STAGE = Stage(
    name="dedup",
    description="input table (filtered) -> deduped: exact and near-duplicate clusters, one representative each",
    work=dedup_work,
    section="dedup",
    inputs=("filtered",),
    output="deduped",
)
