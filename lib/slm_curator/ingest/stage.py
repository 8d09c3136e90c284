"""The ingest stage in Spark: raw files -> `documents` and `quarantine` Delta tables.

Files are listed on the driver (names only), spread one file per task, and parsed by the pure readers
inside `mapInPandas`, so executors stream their own files and nothing but counts returns to the driver.
Both tables are written with insert-only merges on stable keys, so ingesting the same files twice adds
nothing, and a run killed half-way is completed by the next one without duplicates.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from slm_curator import delta
from slm_curator.config import IngestConfig, PipelineConfig
from slm_curator.ingest.readers import ReaderOptions, detect_format, doc_id, parse_file

log = logging.getLogger(__name__)

PARSED_SCHEMA = (
    "doc_id string, source string, source_id string, url string, text string, meta string, "
    "file string, offset long, format string, reason string, detail string, raw string"
)
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
BATCH_ROWS = 256


@dataclass
class IngestResult:
    files: int
    files_skipped: int  # unchanged since an earlier ingest recorded them in `ingest_files`
    records: int
    documents_inserted: int
    documents_already_present: int
    quarantine_inserted: int
    quarantined: dict[str, int]
    documents_version: int | None
    quarantine_version: int | None

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


def reader_options(cfg: IngestConfig) -> ReaderOptions:
    return ReaderOptions(
        text_field=cfg.text_field,
        html_field=cfg.html_field,
        id_field=cfg.id_field,
        url_field=cfg.url_field,
        text_mode=cfg.text_mode,
        html_main_content=cfg.html_main_content,
        max_doc_bytes=cfg.max_doc_bytes,
        preview_chars=cfg.quarantine_preview_chars,
    )


def list_input_files(inputs: list[str]) -> list[str]:
    """Expand files, directories (recursively) and globs into a sorted, de-duplicated file list.

    Hidden files and Spark/Hadoop markers (_SUCCESS, .crc) are skipped; remote URIs are listed with
    pyarrow's filesystems. A path that matches nothing is an error, not an empty ingest.
    """
    found: set[str] = set()
    for item in inputs:
        if "://" in item and not item.startswith("file://"):
            found.update(_list_remote(item))
            continue
        path = item.removeprefix("file://")
        matches = glob.glob(path, recursive=True) if any(c in path for c in "*?[") else [path]
        if not matches or not all(os.path.exists(m) for m in matches):
            raise FileNotFoundError(f"ingest.input: {item!r} matches no file")
        for match in matches:
            if os.path.isdir(match):
                for root, dirs, files in os.walk(match):
                    dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
                    found.update(os.path.abspath(os.path.join(root, f)) for f in files if _visible(f))
            else:
                found.add(os.path.abspath(match))
    return sorted(found)


def _visible(name: str) -> bool:
    return not name.startswith((".", "_")) and not name.endswith(".crc")


def _list_remote(uri: str) -> list[str]:
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(uri)
    info = filesystem.get_file_info(inner)
    scheme = uri.split("://", 1)[0]
    if info.type == fs.FileType.File:
        return [uri]
    if info.type == fs.FileType.NotFound:
        raise FileNotFoundError(f"ingest.input: {uri!r} does not exist")
    selector = fs.FileSelector(inner, recursive=True)
    return [
        f"{scheme}://{f.path}"
        for f in filesystem.get_file_info(selector)
        if f.type == fs.FileType.File and _visible(f.base_name)
    ]


def parsed_rows(path: str, opts: ReaderOptions, source: str | None) -> Iterator[dict]:
    """Readers' output as flat rows with ids: what each Spark task emits for one file."""
    base = path.rsplit("/", 1)[-1]
    for p in parse_file(path, opts, source):
        sid = p.source_id if p.source_id not in (None, "") else f"{base}:{p.offset}"
        yield {
            "doc_id": doc_id(p.source, sid),
            "source": p.source,
            "source_id": sid,
            "url": p.url,
            "text": p.text,
            "meta": json.dumps(p.meta, ensure_ascii=False, default=str, sort_keys=True),
            "file": p.file,
            "offset": p.offset,
            "format": p.format,
            "reason": p.reason,
            "detail": p.detail,
            "raw": p.raw,
        }


def _parse_partition(opts: ReaderOptions, source: str | None):
    import pandas as pd

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        columns = [c.split(" ")[0] for c in PARSED_SCHEMA.split(", ")]
        for files in batches:
            for path in files["path"]:
                buffer = []
                for row in parsed_rows(path, opts, source):
                    buffer.append(row)
                    if len(buffer) >= BATCH_ROWS:
                        yield pd.DataFrame(buffer, columns=columns)
                        buffer = []
                if buffer:
                    yield pd.DataFrame(buffer, columns=columns)

    return run


def parse_files(spark, files: list[str], cfg: IngestConfig):
    """DataFrame of every record in `files` (documents and quarantine rows), one task per file."""
    opts = reader_options(cfg)
    slices = max(1, min(len(files), cfg.max_read_partitions))
    rdd = spark.sparkContext.parallelize([(f,) for f in files], numSlices=slices)
    paths = spark.createDataFrame(rdd, "path string")
    return paths.mapInPandas(_parse_partition(opts, cfg.source or None), PARSED_SCHEMA)


def split_parsed(parsed):
    """(documents, quarantine) DataFrames; a repeated doc_id within one ingest is quarantined, not merged."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    good = parsed.where(F.col("reason").isNull())
    first = Window.partitionBy("doc_id").orderBy("file", "offset")
    ranked = good.withColumn("_rank", F.row_number().over(first))
    documents = ranked.where("_rank = 1").select(*DOCUMENT_COLUMNS)
    repeated = (
        ranked.where("_rank > 1")
        .withColumn("reason", F.lit("duplicate_id"))
        .withColumn(
            "detail", F.concat(F.lit("source_id "), F.col("source_id"), F.lit(" already seen in this ingest"))
        )
        .withColumn("raw", F.substring("text", 1, 2000))
        .drop("_rank")
    )
    bad = parsed.where(F.col("reason").isNotNull()).unionByName(repeated)
    quarantine = bad.withColumn("quarantine_id", quarantine_id_col()).select(*QUARANTINE_COLUMNS)
    return documents, quarantine


def quarantine_id_col():
    """One quarantine row per (file, offset, reason): re-ingesting a broken file adds nothing."""
    from pyspark.sql import functions as F

    key = F.concat_ws("\u001f", F.col("file"), F.col("offset").cast("string"), F.col("reason"))
    return F.substring(F.sha2(key, 256), 1, 32)


def file_fingerprints(files: list[str]) -> dict[str, tuple[int, int]]:
    """path -> (size, modification time in ns): what "unchanged since the last ingest" means."""
    out: dict[str, tuple[int, int]] = {}
    for path in files:
        if "://" in path and not path.startswith("file://"):
            from pyarrow import fs

            filesystem, inner = fs.FileSystem.from_uri(path)
            info = filesystem.get_file_info(inner)
            out[path] = (int(info.size or 0), int(info.mtime_ns or 0))
        else:
            st = os.stat(path.removeprefix("file://"))
            out[path] = (st.st_size, st.st_mtime_ns)
    return out


MANIFEST_SCHEMA = "path string, size long, mtime_ns long, records long"


def already_ingested(spark, cfg: PipelineConfig, prints: dict[str, tuple[int, int]]) -> set[str]:
    """Files of this list whose exact fingerprint the `ingest_files` manifest holds (one row per file)."""
    ref = delta.table_ref(cfg.storage, "ingest_files")
    if not prints or not delta.exists(spark, ref):
        return set()
    wanted = spark.createDataFrame(
        [(p, s, m) for p, (s, m) in prints.items()], "path string, size long, mtime_ns long"
    )
    done = delta.read(spark, ref).join(wanted, ["path", "size", "mtime_ns"], "left_semi")
    return {r["path"] for r in done.select("path").collect()}


def run_ingest(
    spark, cfg: PipelineConfig, run_id: str | None, files: list[str] | None = None
) -> IngestResult:
    """Ingest `files` (default: cfg.ingest.input) into the documents and quarantine tables.

    Files recorded as done in the `ingest_files` manifest with the same size and modification time are
    skipped; the manifest is written after both merges commit, so a run killed before that point is
    simply redone (the insert-only merges make the redo add nothing twice).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    files = files if files is not None else list_input_files(cfg.ingest.input)
    prints = file_fingerprints(files)
    done = already_ingested(spark, cfg, prints) if cfg.ingest.skip_unchanged_files else set()
    todo = [f for f in files if f not in done]
    docs_ref = delta.table_ref(cfg.storage, "documents")
    quar_ref = delta.table_ref(cfg.storage, "quarantine")
    if not todo:
        log.info("ingest: all %d files are unchanged since they were ingested: nothing to read", len(files))
        return IngestResult(
            files=len(files),
            files_skipped=len(files),
            records=0,
            documents_inserted=0,
            documents_already_present=0,
            quarantine_inserted=0,
            quarantined={},
            documents_version=delta.current_version(spark, docs_ref),
            quarantine_version=delta.current_version(spark, quar_ref),
        )
    unknown = [f for f in todo if detect_format(f) is None]
    log.info(
        "ingest: %d files to read, %d unchanged and skipped (%d with no known format go to quarantine)",
        len(todo),
        len(done),
        len(unknown),
    )
    files = todo
    parsed = parse_files(spark, files, cfg.ingest).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        documents, quarantine = split_parsed(parsed)
        stamp = {"ingested_at": F.current_timestamp(), "run_id": F.lit(run_id or "")}
        documents = documents.withColumns(stamp)
        quarantine = quarantine.withColumns(stamp)

        counts = {
            r["reason"]: r["n"] for r in parsed.groupBy("reason").agg(F.count("*").alias("n")).collect()
        }
        records = sum(counts.values())
        log.info("ingest: parsed %d records from %d files", records, len(files))

        docs_result = delta.merge(documents, docs_ref, keys=["doc_id"])
        quar_result = delta.merge(quarantine, quar_ref, keys=["quarantine_id"])
        quarantined = {
            r["reason"]: r["n"] for r in quarantine.groupBy("reason").agg(F.count("*").alias("n")).collect()
        }
        per_file = {r["file"]: r["count"] for r in parsed.groupBy("file").count().collect()}
        manifest = spark.createDataFrame(
            [(f, *prints[f], int(per_file.get(f, 0))) for f in files], MANIFEST_SCHEMA
        ).withColumns(stamp)
        delta.merge(manifest, delta.table_ref(cfg.storage, "ingest_files"), keys=["path", "size", "mtime_ns"])
    finally:
        parsed.unpersist()

    inserted = docs_result.rows_inserted
    accepted = records - sum(quarantined.values())
    result = IngestResult(
        files=len(files) + len(done),
        files_skipped=len(done),
        records=records,
        documents_inserted=inserted,
        documents_already_present=accepted - inserted,
        quarantine_inserted=quar_result.rows_inserted,
        quarantined=dict(sorted(quarantined.items())),
        documents_version=delta.current_version(spark, docs_ref),
        quarantine_version=delta.current_version(spark, quar_ref),
    )
    for reason, n in result.quarantined.items():
        log.warning("ingest: quarantined %d records as %s", n, reason)
    return result


def result_metrics(result: IngestResult) -> dict[str, float]:
    metrics = {k: v for k, v in dataclasses.asdict(result).items() if isinstance(v, int)}
    metrics.update({f"quarantined_{reason}": n for reason, n in result.quarantined.items()})
    metrics["quarantined_total"] = result.quarantined_total
    return metrics
