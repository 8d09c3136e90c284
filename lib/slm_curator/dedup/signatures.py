"""The Spark layer of hashing: exact hashes, MinHash band keys and shingle sets, computed in Arrow batches.

`mapInPandas` hands each Python worker a few hundred documents at a time; the numpy work in
`slm_curator.dedup.minhash` runs on the whole batch at once. What comes back is small per document
(a 128-bit hash and `bands` longs), except for the shingle sets, which only documents in a candidate
edge need.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
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


def signature_rows(texts: list, cfg, mh: MinHasher | None = None) -> dict[str, list]:
    """Pure: exact hash, band keys (None without words or when near duplicates are off), counts."""
    mh = mh or hasher(cfg)
    normalized, docs = normalize_batch(texts, cfg.normalize)
    out = {
        "exact_hash": [exact_hash(n) for n in normalized],
        "words": pc.list_value_length(docs).to_numpy(zero_copy_only=False).tolist(),
    }
    if cfg.near_duplicates:
        shingles = mh.shingles(docs)
        keys = mh.band_keys(mh.signatures(shingles))
        out["bands"] = [k if len(s) else None for k, s in zip(keys, shingles, strict=True)]
        out["shingles"] = [distinct_count(s) for s in shingles]
    else:
        out["bands"] = [None] * len(texts)
        out["shingles"] = [0] * len(texts)
    return out


def signatures(docs, cfg):
    """(doc_id, text_key, text) -> SIGNATURE_COLUMNS, one row per document."""
    from slm_curator.schemas import DEDUP_SIGNATURE

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        mh = hasher(cfg)
        for batch in batches:
            rows = signature_rows(batch["text"].tolist(), cfg, mh)
            yield pd.DataFrame({"doc_id": batch["doc_id"], "text_key": batch["text_key"], **rows})

    docs.sparkSession.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.batch_size))
    return docs.select("doc_id", "text_key", "text").mapInPandas(run, DEDUP_SIGNATURE)


def shingle_sets(docs, cfg):
    """(doc_id, text) -> (doc_id, shingles: sorted distinct shingle hashes as longs)."""
    from slm_curator.schemas import DEDUP_SHINGLES

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        mh = hasher(cfg)
        for batch in batches:
            _, docs = normalize_batch(batch["text"].tolist(), cfg.normalize)
            sets = mh.shingle_sets(docs)
            yield pd.DataFrame({"doc_id": batch["doc_id"], "shingles": [s.view(np.int64) for s in sets]})

    docs.sparkSession.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.batch_size))
    return docs.select("doc_id", "text").mapInPandas(run, DEDUP_SHINGLES)
