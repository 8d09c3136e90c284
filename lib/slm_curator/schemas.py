"""Schemas of the tables the stages write, and of the rows their Python workers return, as StructTypes.

One place to read what each table holds. Tables written from a DataFrame transform (documents,
filtered) get their other columns from the transform; these are the rows built in Python.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def _schema(*fields: tuple[str, object]) -> StructType:
    return StructType([StructField(name, dtype, True) for name, dtype in fields])


S, L, INT, D, B = StringType(), LongType(), IntegerType(), DoubleType(), BooleanType()

# Ingest: what a reader task emits per record, documents and quarantine rows alike.
PARSED = _schema(
    ("doc_id", S), ("source", S), ("source_id", S), ("url", S), ("text", S), ("meta", S),
    ("file", S), ("offset", L), ("format", S), ("reason", S), ("detail", S), ("raw", S),
)  # fmt: skip
DOCUMENT_COLUMNS = ["doc_id", "source", "source_id", "url", "text", "meta", "file", "offset", "format"]
QUARANTINE_COLUMNS = [
    "quarantine_id",
    "reason",
    "detail",
    "file",
    "offset",
    "format",
    "source",
    "source_id",
    "raw",
]
# ingest_files: one row per file read, so an unchanged file is skipped next time.
INGEST_FILES = _schema(("path", S), ("size", L), ("mtime_ns", L), ("records", L))


def filter_result(signal_names: list[str]) -> StructType:
    """What the filter UDF returns per document: cleaned text, decision, language, every signal."""
    return _schema(
        ("text_clean", S),
        ("keep", B),
        ("drop_reasons", ArrayType(S, True)),
        ("language", S),
        ("language_score", D),
        ("signals", _schema(*((n, D) for n in signal_names))),
    )


# Dedup: what the hashing UDFs return (the dedup_signatures table adds the signature config).
DEDUP_SIGNATURE = _schema(
    ("doc_id", S), ("text_key", L), ("exact_hash", S), ("bands", ArrayType(L, True)), ("words", L),
    ("shingles", L),
)  # fmt: skip
DEDUP_SHINGLES = _schema(("doc_id", S), ("shingles", ArrayType(L, True)))

# dq_results: one row per expectation per validated table version.
DQ_RESULTS = _schema(
    ("check_id", S), ("checked_at", TimestampType()), ("run_id", S), ("stage", S), ("suite", S),
    ("suite_fingerprint", S), ("params", S), ("params_fingerprint", S), ("table", S), ("table_version", L),
    ("expectation_index", INT), ("expectation", S), ("description", S), ("severity", S), ("view", S),
    ("success", B), ("observed", S), ("unexpected_count", L), ("element_count", L), ("details", S),
    ("exception", S),
)  # fmt: skip

# Export: one row per shard file as the packing UDF returns it; `shards` adds provenance columns.
PACKED_SHARD = _schema(
    ("path", S), ("split", S), ("shard", INT), ("sequences", L), ("tokens", L), ("seq_len", INT),
    ("documents", L), ("copies", L), ("document_tokens", L), ("dropped_tokens", L),
    ("tokens_by_source", MapType(S, L, True)), ("tokens_by_quality", MapType(S, L, True)),
    ("sha256", S), ("reused", B),
)  # fmt: skip
SHARD_FILE = StructType([f for f in PACKED_SHARD.fields if f.name != "reused"])

# Evaluate: every completion, and every judge answer with how it parsed.
GENERATIONS = _schema(
    ("generation_id", S), ("prompt_id", S), ("prompt", S), ("reference", S), ("model", S),
    ("model_uri", S), ("settings", S), ("completion", S), ("run_id", S),
)  # fmt: skip
JUDGMENTS = _schema(
    ("judgment_id", S), ("kind", S), ("prompt_id", S), ("prompt", S), ("model", S), ("model_b", S),
    ("completion", S), ("completion_b", S), ("judge", S), ("rubric_version", S), ("raw_answer", S),
    ("scores", MapType(S, D, True)), ("parse_error", S), ("verdict", S), ("latency_s", D), ("cached", B),
    ("error", S), ("run_id", S),
)  # fmt: skip
