"""The Spark layer of hashing: exact hashes, MinHash band keys and shingle sets, computed in Arrow batches.

`mapInArrow` hands each Python worker a few hundred documents at a time, as Arrow (no pandas); the numpy work in
`slm_curator.dedup.minhash` runs on the whole batch at once. What comes back is small per document
(a 128-bit hash and `bands` longs), except for the shingle sets, which only documents in a candidate
edge need.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from slm_curator.dedup.minhash import MinHasher, distinct_count
from slm_curator.text.normalize import normalize_batch

SIGNATURE_COLUMNS = ["doc_id", "text_key", "exact_hash", "bands", "words", "shingles"]


def hasher(cfg) -> MinHasher:
    return MinHasher(cfg.num_perm, cfg.bands, cfg.rows, cfg.ngram, cfg.seed)


def exact_hash(normalized: str) -> str | None:
    """128-bit hash of normalised text (no collision in any corpus that fits on Earth); None when empty."""
    return xxhash.xxh3_128_hexdigest(normalized) if normalized else None


def signature_arrays(texts, cfg, mh: MinHasher | None = None) -> dict[str, pa.Array]:
    """Pure: exact hash, band keys (null without words or when near duplicates are off), counts, as
    Arrow arrays; `texts` a sequence or an Arrow string array."""
    mh = mh or hasher(cfg)
    normalized, docs = normalize_batch(texts, cfg.normalize)
    n = len(normalized)
    out = {
        "exact_hash": pa.array([exact_hash(t) for t in normalized], pa.string()),
        "words": pc.list_value_length(docs).cast(pa.int64()),
    }
    if cfg.near_duplicates:
        shingles = mh.shingles(docs)
        keys = mh.band_keys(mh.signatures(shingles))
        empty = np.fromiter((len(s) == 0 for s in shingles), dtype=bool, count=n)
        offsets = pa.array(np.arange(n + 1, dtype=np.int32) * mh.bands)
        out["bands"] = pa.ListArray.from_arrays(offsets, pa.array(keys.ravel()), mask=pa.array(empty))
        out["shingles"] = pa.array(np.fromiter((distinct_count(s) for s in shingles), np.int64, count=n))
    else:
        out["bands"] = pa.nulls(n, pa.list_(pa.int64()))
        out["shingles"] = pa.array(np.zeros(n, dtype=np.int64))
    return out


def signature_rows(texts, cfg, mh: MinHasher | None = None) -> dict[str, list]:
    """`signature_arrays` as Python lists (tests, notebooks)."""
    return {k: v.to_pylist() for k, v in signature_arrays(texts, cfg, mh).items()}


def signatures(docs, cfg):
    """(doc_id, text_key, text) -> SIGNATURE_COLUMNS, one row per document."""
    from slm_curator.schemas import DEDUP_SIGNATURE

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        mh = hasher(cfg)
        for batch in batches:
            arrays = signature_arrays(batch.column("text"), cfg, mh)
            columns = {"doc_id": batch.column("doc_id"), "text_key": batch.column("text_key"), **arrays}
            yield pa.RecordBatch.from_pydict({name: columns[name] for name in SIGNATURE_COLUMNS})

    docs.sparkSession.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.batch_size))
    return docs.select("doc_id", "text_key", "text").mapInArrow(run, DEDUP_SIGNATURE)


def shingle_sets(docs, cfg):
    """(doc_id, text) -> (doc_id, shingles: sorted distinct shingle hashes as longs)."""
    from slm_curator.schemas import DEDUP_SHINGLES

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        mh = hasher(cfg)
        for batch in batches:
            _, docs = normalize_batch(batch.column("text"), cfg.normalize)
            sets = mh.shingle_sets(docs)
            lengths = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
            offsets = pa.array(np.concatenate(([0], np.cumsum(lengths))).astype(np.int32))
            flat = np.concatenate(sets).view(np.int64) if sets else np.zeros(0, dtype=np.int64)
            shingles = pa.ListArray.from_arrays(offsets, pa.array(flat))
            yield pa.RecordBatch.from_pydict({"doc_id": batch.column("doc_id"), "shingles": shingles})

    docs.sparkSession.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.batch_size))
    return docs.select("doc_id", "text").mapInArrow(run, DEDUP_SHINGLES)
