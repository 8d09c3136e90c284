"""Export: a curated Delta table -> tokenizer, quality-weighted mixed selection, packed shards, `shards` table.

Every choice is a pure function of (input table version, export config, tokenizer): keys come from
seeded hashes, shard membership and order too, so a re-run writes byte-identical files. Shards land in a
folder named by that fingerprint; a re-run with the same fingerprint skips files already written (a
killed export resumes) and skips everything when the `shards` table already lists them all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import functions as F

from slm_curator import delta
from slm_curator.config import ConfigError, PipelineConfig, check_export
from slm_curator.export import sampling
from slm_curator.export.select import gumbel_key, hash_uniform, take_prefix
from slm_curator.export.shard_format import MANIFEST_FILE, file_sha256, read_header, write_shard
from slm_curator.export.tokenizer import (
    TOKENIZER_FILE,
    encode_with_eos,
    eos_id,
    load_tokenizer,
    tokenizer_sha,
    train_tokenizer,
)
from slm_curator.fingerprint import fingerprint
from slm_curator.schemas import PACKED_SHARD, SHARD_FILE
from slm_curator.stage import Input, Stage, StageContext, StageResult, resolve_input

log = logging.getLogger(__name__)

SPLITS = ("train", "anneal", "val")


@dataclass
class ExportResult:
    input_table: str
    input_version: int
    fingerprint: str
    folder: str
    tokenizer_path: str
    tokenizer_trained: bool
    candidates: int
    splits: dict[str, dict[str, int]]  # split -> shards, sequences, tokens, documents, copies
    plans: list[sampling.SourcePlan]
    shards_version: int | None
    skipped: bool
    files_reused: int = 0
    has_score: bool = False
    notes: list[str] = field(default_factory=list)


def export_fingerprint(input_id: str, version: int, cfg: PipelineConfig, tok_sha: str) -> str:
    export = dataclasses.asdict(cfg.export)
    export.pop("output_dir")
    export.pop("shards_table")
    return fingerprint({"input": input_id, "version": version, "export": export, "tokenizer": tok_sha})


def output_root(cfg: PipelineConfig) -> Path:
    root = cfg.export.output_dir or f"{cfg.storage.root.rstrip('/')}/shards"
    if "://" in root and not root.startswith("file://"):
        raise ConfigError(
            f"export.output_dir: {root!r} is not a file system path; shards are written by executors, so use a "
            "path every executor sees (local disk in local mode, /Volumes/... or /dbfs/... on Databricks, "
            "a shared mount on EMR)"
        )
    return Path(root.removeprefix("file://"))


def candidates(df, cfg: PipelineConfig):
    """doc_id, source, cluster, score, text of the curated rows (export.where already applied).

    Absent optional columns get defaults.
    """
    e = cfg.export
    cols = set(df.columns)
    if e.text_column not in cols:
        raise ConfigError(
            f"export.text_column: {e.text_column!r} is not a column; columns: {', '.join(df.columns)}"
        )
    has_score = e.score_column in cols
    score = F.col(e.score_column).cast("double") if has_score else F.lit(0.0)
    out = df.select(
        F.col("doc_id"),
        (F.col(e.source_column) if e.source_column in cols else F.lit("all")).cast("string").alias("source"),
        # A document dedup left alone may have no cluster id: it is its own cluster.
        (
            F.coalesce(F.col(e.cluster_column).cast("string"), F.col("doc_id"))
            if e.cluster_column in cols
            else F.col("doc_id")
        )
        .cast("string")
        .alias("cluster"),
        score.alias("score"),
        F.col(e.text_column).alias("text"),
    ).where(F.col("text").isNotNull() & (F.length("text") > 0))
    if has_score:
        out = out.where(F.col("score").isNotNull() & ~F.isnan("score"))
        if e.min_score is not None:
            out = out.where(F.col("score") >= F.lit(e.min_score))
    return out, has_score


def get_tokenizer(spark, cfg: PipelineConfig, docs, input_id: str, version: int, root: Path):
    """Load the configured tokenizer, reuse one trained earlier on this input, or train one."""
    t = cfg.export.tokenizer
    if t.path:
        return load_tokenizer(t.path), t.path, False
    key = {
        "input": input_id,
        "version": version,
        "tok": dataclasses.asdict(t),
        # Everything that decides which documents the sample is drawn from.
        "where": cfg.export.where,
        "text": cfg.export.text_column,
        "score": cfg.export.score_column,
        "min_score": cfg.export.min_score,
        "seed": cfg.export.seed,
    }
    path = root / "tokenizers" / fingerprint(key) / TOKENIZER_FILE
    if path.is_file():
        return load_tokenizer(str(path)), str(path), False
    sample = (
        docs.select("doc_id", "text")
        .orderBy(F.xxhash64(F.lit(cfg.export.seed), F.col("doc_id")), "doc_id")
        .limit(t.sample_documents)
        .collect()
    )
    log.info("export: training a %d-token byte-level BPE on %d sampled documents", t.vocab_size, len(sample))
    tok = train_tokenizer((r["text"] for r in sample), t.vocab_size, t.min_frequency, t.eos_token)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tok.save(str(tmp))
    tmp.replace(path)
    return tok, str(path), True


_TOKENIZERS: dict[str, object] = {}


def _worker_tokenizer(tok_json: str):
    """One parsed tokenizer per Python worker, keyed by its content."""
    key = hashlib.sha256(tok_json.encode()).hexdigest()
    if key not in _TOKENIZERS:
        from tokenizers import Tokenizer

        _TOKENIZERS[key] = Tokenizer.from_str(tok_json)
    return _TOKENIZERS[key]


def token_counts(docs, tok_json: str, eos: int):
    """Tokens per document (with its end-of-text) from a batched pandas UDF."""

    @F.pandas_udf("long")
    def count(texts: pd.Series) -> pd.Series:
        tok = _worker_tokenizer(tok_json)
        return pd.Series([len(ids) for ids in encode_with_eos(tok, texts.tolist(), eos)], dtype="int64")

    return docs.withColumn("tokens", count("text"))


def select_documents(scored, cfg: PipelineConfig, has_score: bool):
    """Rows (doc_id, split, copies) chosen by mixture plan, Gumbel keys, budget and annealing slice."""
    e = cfg.export
    train = scored.where(F.col("split") == "train")
    available = {
        r["source"]: int(r["t"]) for r in train.groupBy("source").agg(F.sum("tokens").alias("t")).collect()
    }
    plans = sampling.plan_mixture(available, e.mixture, e.token_budget, e.max_epochs)
    full = F.create_map(*[x for p in plans for x in (F.lit(p.source), F.lit(p.full_passes))])
    remainders = {p.source: p.remainder_tokens for p in plans}
    train = take_prefix(train, "key", "tokens", remainders, "source", "doc_id", out="_partial")
    train = (
        train.withColumn(
            "copies", F.coalesce(full[F.col("source")], F.lit(0)) + F.col("_partial").cast("int")
        )
        .where(F.col("copies") > 0)
        .drop("_partial")
    )
    if has_score and e.anneal_fraction > 0:
        weighted = train.withColumn("_w", F.col("tokens") * F.col("copies")).withColumn("_all", F.lit("all"))
        total = weighted.agg(F.sum("_w")).first()[0] or 0
        budget = int(total * e.anneal_fraction)
        # One group: Spark sorts its boundary bucket (about 1/1000 of the rows) in a single task and
        # warns "No Partition Defined for Window operation"; that is the intended cost.
        weighted = take_prefix(weighted, "score", "_w", {"all": budget}, "_all", "doc_id", out="_anneal")
        train = weighted.withColumn(
            "split", F.when(F.col("_anneal"), F.lit("anneal")).otherwise(F.col("split"))
        ).drop("_w", "_all", "_anneal")
    val = scored.where(F.col("split") == "val").withColumn("copies", F.lit(1))
    return train.unionByName(val), plans


def _pack_function(tok_json: str, eos: int, vocab: int, seq_len: int, folder: str, edges: list[float]):
    def pack(pdf: pd.DataFrame) -> pd.DataFrame:
        split, shard = pdf["split"].iat[0], int(pdf["shard"].iat[0])
        pdf = pdf.sort_values(["order", "doc_id", "copy"], kind="stable")
        total = int(pdf["tokens"].sum())
        sequences = total // seq_len
        path = Path(folder) / f"{split}-{shard:05d}.bin"
        reused = False
        if path.is_file():
            try:
                h = read_header(path)
                reused = (h.sequences, h.seq_len, h.vocab_size) == (sequences, seq_len, vocab)
            except ValueError:
                reused = False
        if reused:
            sha = file_sha256(path)
        else:
            tok = _worker_tokenizer(tok_json)
            ids = np.fromiter(
                (t for doc in encode_with_eos(tok, pdf["text"].tolist(), eos) for t in doc), dtype=np.int64
            )
            sha = write_shard(path, ids[: sequences * seq_len].reshape(sequences, seq_len), vocab, eos)
        buckets = (
            [sampling.quality_bucket(s, edges) for s in pdf["score"]] if pdf["has_score"].iat[0] else None
        )
        by_quality = (
            pdf.groupby(pd.Series(buckets, index=pdf.index))["tokens"].sum()
            if buckets
            else pd.Series({"unscored": total})
        )
        return pd.DataFrame(
            {
                "path": [str(path)],
                "split": [split],
                "shard": [shard],
                "sequences": [sequences],
                "tokens": [sequences * seq_len],
                "seq_len": [seq_len],
                "documents": [pdf["doc_id"].nunique()],
                "copies": [len(pdf)],
                "document_tokens": [total],
                "dropped_tokens": [total - sequences * seq_len],
                "tokens_by_source": [{k: int(v) for k, v in pdf.groupby("source")["tokens"].sum().items()}],
                "tokens_by_quality": [{k: int(v) for k, v in by_quality.items()}],
                "sha256": [sha],
                "reused": [reused],
            }
        )

    return pack


def run_export(
    spark, cfg: PipelineConfig, run_id: str | None = None, inp: Input | None = None
) -> ExportResult:
    """Tokenizer, selection and shards for `inp` (default: export.input_table at its current version).

    Nothing is rewritten when the shards of this fingerprint are intact.
    """
    check_export(cfg)
    inp = inp or resolve_input(STAGE, spark, cfg)
    root = output_root(cfg)
    docs, has_score = candidates(inp.read(spark), cfg)
    tok, tok_path, trained = get_tokenizer(spark, cfg, docs, inp.ref.identifier, inp.version, root)
    fp = export_fingerprint(inp.ref.identifier, inp.version, cfg, tokenizer_sha(tok))
    folder = root / fp
    shards_ref = delta.table_ref(cfg.storage, cfg.export.shards_table)
    listed = _listed_shards(spark, shards_ref, fp)
    if (
        listed
        and (folder / MANIFEST_FILE).is_file()
        and all(_intact(r["path"], r["sequences"], r["seq_len"]) for r in listed)
    ):
        log.info("export: shards %s are up to date with %s@v%d and this config", fp, inp.ref, inp.version)
        version_now = delta.current_version(spark, shards_ref)
        return _result(inp, fp, folder, tok_path, trained, listed, version_now, has_score, skipped=True)

    written, plans, n_candidates, unique_docs = _select_and_pack(cfg, docs, tok, folder, has_score, inp)
    reused = sum(r.pop("reused") for r in written)
    tok.save(str(folder / TOKENIZER_FILE))
    eos, vocab = eos_id(tok, cfg.export.tokenizer.eos_token), tok.get_vocab_size()
    _write_manifest(folder, fp, inp.ref.identifier, inp.version, written, vocab, eos, cfg.export, unique_docs)
    provenance = {
        "fingerprint": fp,
        "tokenizer_sha256": tokenizer_sha(tok),
        "vocab_size": vocab,
        "eos_id": eos,
    }
    version = _record_shards(spark, shards_ref, written, provenance, inp, run_id)
    result = _result(inp, fp, folder, tok_path, trained, written, version, has_score)
    result.plans, result.candidates, result.files_reused = plans, n_candidates, reused
    return result


def _keyed(docs, cfg: PipelineConfig, tok_json: str, eos: int):
    """Candidates with their token count, Gumbel key and train/val split (by cluster)."""
    e = cfg.export
    split = F.when(hash_uniform(e.seed + 1, F.col("cluster")) < F.lit(e.val_fraction), "val").otherwise(
        "train"
    )
    return (
        token_counts(docs, tok_json, eos)
        .withColumn("key", gumbel_key(F.col("score"), hash_uniform(e.seed, F.col("doc_id")), e.temperature))
        .withColumn("split", split)
        .drop("text")
    )


def _shard_assignment(chosen, docs, cfg: PipelineConfig, n_shards: dict[str, int], has_score: bool):
    """Every chosen copy with its shard (a seeded hash) and its order in the shard, joined to its text."""
    e = cfg.export
    shard_count = F.create_map(*[x for s, n in n_shards.items() for x in (F.lit(s), F.lit(n))])
    shard = F.pmod(F.xxhash64(F.lit(e.seed), F.lit("shard"), "doc_id", "copy"), shard_count[F.col("split")])
    return (
        chosen.withColumn("shard", shard.cast("int"))
        .withColumn("order", F.xxhash64(F.lit(e.seed), F.lit("order"), "doc_id", "copy"))
        .withColumn("has_score", F.lit(has_score))
        .select("doc_id", "source", "score", "split", "copy", "tokens", "shard", "order", "has_score")
        .join(docs.select("doc_id", "text"), "doc_id")
    )


def _select_and_pack(cfg: PipelineConfig, docs, tok, folder: Path, has_score: bool, inp: Input):
    """The Spark part: key, select by mixture and budget, pack shards. (rows, plans, candidates, unique docs)"""
    e = cfg.export
    tok_json = tok.to_str()
    eos, vocab = eos_id(tok, e.tokenizer.eos_token), tok.get_vocab_size()
    scored = _keyed(docs, cfg, tok_json, eos).persist(StorageLevel.MEMORY_AND_DISK)
    chosen = None
    try:
        n_candidates = scored.count()
        log.info("export: %d candidate documents from %s@v%d", n_candidates, inp.ref, inp.version)
        if not scored.where(F.col("split") == "train").limit(1).count():
            raise ConfigError(
                f"export.where: no training documents in {inp.ref}@v{inp.version} after the filters "
                f"({n_candidates} candidates, export.val_fraction={e.val_fraction}); nothing to export"
            )
        chosen, plans = select_documents(scored, cfg, has_score)
        chosen = chosen.withColumn("copy", F.explode(F.sequence(F.lit(0), F.col("copies") - 1)))
        chosen = chosen.persist(StorageLevel.MEMORY_AND_DISK)
        stats = chosen.groupBy("split").agg(F.sum("tokens").alias("t"), F.countDistinct("doc_id").alias("d"))
        stats = stats.collect()
        per_split = {r["split"]: int(r["t"]) for r in stats}
        n_shards = {s: max(1, math.ceil(t / e.shard_tokens)) for s, t in per_split.items()}
        packed_input = _shard_assignment(chosen, docs, cfg, n_shards, has_score)
        folder.mkdir(parents=True, exist_ok=True)
        pack = _pack_function(tok_json, eos, vocab, e.seq_len, str(folder), list(e.quality_bucket_edges))
        log.info("export: packing %s tokens into %s shards", per_split, n_shards)
        rows = packed_input.groupBy("split", "shard").applyInPandas(pack, PACKED_SHARD).collect()
    finally:
        scored.unpersist()
        if chosen is not None:
            chosen.unpersist()
    written = sorted((r.asDict() for r in rows), key=lambda r: r["path"])
    return written, plans, n_candidates, {r["split"]: int(r["d"]) for r in stats}


def _record_shards(
    spark, ref, written: list[dict], provenance: dict, inp: Input, run_id: str | None
) -> int | None:
    """Upsert one `shards` row per file, with where it came from."""
    table = spark.createDataFrame(written, SHARD_FILE).withColumns(
        {
            "fingerprint": F.lit(provenance["fingerprint"]),
            "input_table": F.lit(inp.ref.identifier),
            "input_version": F.lit(inp.version).cast("long"),
            "tokenizer_sha256": F.lit(provenance["tokenizer_sha256"]),
            "vocab_size": F.lit(provenance["vocab_size"]),
            "eos_id": F.lit(provenance["eos_id"]),
            "run_id": F.lit(run_id or ""),
            "created_at": F.current_timestamp(),
        }
    )
    return delta.merge(table, ref, ["path"], update_matched=True).version


def _listed_shards(spark, ref, fp: str) -> list[dict]:
    if not delta.exists(spark, ref):
        return []
    return [r.asDict() for r in delta.read(spark, ref).where(F.col("fingerprint") == fp).collect()]


def _intact(path: str, sequences: int, seq_len: int) -> bool:
    try:
        h = read_header(path)
    except (OSError, ValueError):
        return False
    return (h.sequences, h.seq_len) == (sequences, seq_len)


def _write_manifest(folder: Path, fp, input_id, version, rows, vocab, eos, e, unique_docs) -> None:
    """What a Spark-free trainer needs: splits -> files, the tokenizer, and where it all came from."""
    manifest = {
        "fingerprint": fp,
        "input_table": input_id,
        "input_version": version,
        "seq_len": e.seq_len,
        "vocab_size": vocab,
        "eos_id": eos,
        "eos_token": e.tokenizer.eos_token,
        "tokenizer": TOKENIZER_FILE,
        "splits": {s: sorted(Path(r["path"]).name for r in rows if r["split"] == s) for s in SPLITS},
        "tokens": {s: sum(r["tokens"] for r in rows if r["split"] == s) for s in SPLITS},
        "documents": {s: unique_docs.get(s, 0) for s in SPLITS},
    }
    tmp = folder / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    tmp.replace(folder / MANIFEST_FILE)


def _result(inp: Input, fp, folder, tok_path, trained, rows, shards_version, has_score, skipped=False):
    """Per-split totals; unique documents come from the manifest (a document's copies span shards)."""
    manifest = json.loads((Path(folder) / MANIFEST_FILE).read_text())
    splits = {}
    for s in SPLITS:
        mine = [r for r in rows if r["split"] == s]
        if mine:
            splits[s] = {
                k: sum(int(r[k]) for r in mine) for k in ("sequences", "tokens", "copies", "dropped_tokens")
            } | {"shards": len(mine), "documents": manifest["documents"][s]}
    return ExportResult(
        input_table=inp.ref.identifier,
        input_version=inp.version,
        fingerprint=fp,
        folder=str(folder),
        tokenizer_path=tok_path,
        tokenizer_trained=trained,
        candidates=0,
        splits=splits,
        plans=[],
        shards_version=shards_version,
        skipped=skipped,
        has_score=has_score,
    )


def _summary(result: ExportResult, cfg: PipelineConfig) -> tuple[list[str], dict[str, str]]:
    notes = [f"shards: {result.folder}"]
    if result.skipped:
        notes.append(f"nothing new: shards are up to date with {result.input_table}@v{result.input_version}")
    if not result.has_score:
        notes.append(f"no {cfg.export.score_column} column: uniform sampling weights, no annealing slice")
    details = {
        f"{split}: tokens / documents / shards": f"{t['tokens']} / {t['documents']} / {t['shards']}"
        for split, t in result.splits.items()
    }
    repeated = [f"{p.source} x{p.epochs:.2f}" for p in result.plans if p.epochs > 1.0001]
    if repeated:
        details["repeated sources"] = ", ".join(repeated[:6]) + (" ..." if len(repeated) > 6 else "")
    return notes, details


def export_work(ctx: StageContext) -> StageResult:
    result = run_export(ctx.spark, ctx.cfg, ctx.run_id, ctx.input)
    ctx.tracker.log_artifact(result.tokenizer_path, "tokenizer")
    ctx.tracker.log_artifact(str(Path(result.folder) / MANIFEST_FILE), "shards")
    notes, details = _summary(result, ctx.cfg)
    train_docs = sum(t["documents"] for s, t in result.splits.items() if s != "val")
    shards = sum(t["shards"] for t in result.splits.values())
    return StageResult(
        input_rows=result.candidates if not result.skipped else train_docs,
        output_rows=train_docs,
        new_rows=0 if result.skipped else shards - result.files_reused,
        version=result.shards_version,
        notes=notes,
        details=details,
        metrics={f"{split}_{k}": v for split, totals in result.splits.items() for k, v in totals.items()}
        | {f"epochs_{p.source}": p.epochs for p in result.plans}
        | {"candidates": result.candidates, "files_reused": result.files_reused},
    )


STAGE = Stage(
    name="export",
    description="curated table -> tokenizer, quality-weighted mixed token shards and the shards table",
    work=export_work,
    section="export",
    inputs=("scored", "deduped", "filtered"),
    output="shards",
)
