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
from pathlib import Path

from slm_curator import delta
from slm_curator.config import IngestConfig, PipelineConfig
from slm_curator.ingest.readers import ReaderOptions, detect_format, doc_id, parse_file
from slm_curator.schemas import DOCUMENT_COLUMNS, INGEST_FILES, PARSED, QUARANTINE_COLUMNS
from slm_curator.stage import Argument, Stage, StageContext, StageResult

log = logging.getLogger(__name__)

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
        columns = PARSED.fieldNames()
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
    return paths.mapInPandas(_parse_partition(opts, cfg.source or None), PARSED)


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


def already_ingested(spark, cfg: PipelineConfig, prints: dict[str, tuple[int, int]]) -> set[str]:
    """Files of this list whose exact fingerprint the `ingest_files` manifest holds (one row per file)."""
    from pyspark.sql.types import StructType

    ref = delta.table_ref(cfg.storage, "ingest_files")
    if not prints or not delta.exists(spark, ref):
        return set()
    wanted = spark.createDataFrame(
        [(p, s, m) for p, (s, m) in prints.items()], StructType(INGEST_FILES.fields[:3])
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
    files = files if files is not None else list_input_files(cfg.ingest.input)
    prints = file_fingerprints(files)
    done = already_ingested(spark, cfg, prints) if cfg.ingest.skip_unchanged_files else set()
    todo = [f for f in files if f not in done]
    docs_ref = delta.table_ref(cfg.storage, "documents")
    quar_ref = delta.table_ref(cfg.storage, "quarantine")
    if not todo:
        log.info("ingest: all %d files are unchanged since they were ingested: nothing to read", len(files))
        versions = delta.current_version(spark, docs_ref), delta.current_version(spark, quar_ref)
        return IngestResult(len(files), len(files), 0, 0, 0, 0, {}, *versions)
    unknown = [f for f in todo if detect_format(f) is None]
    log.info(
        "ingest: %d files to read, %d unchanged and skipped (%d with no known format go to quarantine)",
        len(todo),
        len(done),
        len(unknown),
    )
    records, inserted, quarantine_inserted, quarantined = _merge_files(spark, cfg, run_id, todo, prints)
    accepted = records - sum(quarantined.values())
    result = IngestResult(
        files=len(files),
        files_skipped=len(done),
        records=records,
        documents_inserted=inserted,
        documents_already_present=accepted - inserted,
        quarantine_inserted=quarantine_inserted,
        quarantined=dict(sorted(quarantined.items())),
        documents_version=delta.current_version(spark, docs_ref),
        quarantine_version=delta.current_version(spark, quar_ref),
    )
    for reason, n in result.quarantined.items():
        log.warning("ingest: quarantined %d records as %s", n, reason)
    return result


def _merge_files(spark, cfg: PipelineConfig, run_id, files: list[str], prints) -> tuple[int, int, int, dict]:
    """Parse `files`, merge documents and quarantine rows, then record the files as done.

    (records parsed, documents inserted, quarantine rows inserted, quarantined records by reason)
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    parsed = parse_files(spark, files, cfg.ingest).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        documents, quarantine = split_parsed(parsed)
        stamp = {"ingested_at": F.current_timestamp(), "run_id": F.lit(run_id or "")}
        per_file = {r["file"]: int(r["count"]) for r in parsed.groupBy("file").count().collect()}
        records = sum(per_file.values())
        log.info("ingest: parsed %d records from %d files", records, len(files))
        docs = delta.merge(
            documents.withColumns(stamp), delta.table_ref(cfg.storage, "documents"), ["doc_id"]
        )
        quar_ref = delta.table_ref(cfg.storage, "quarantine")
        quar = delta.merge(quarantine.withColumns(stamp), quar_ref, ["quarantine_id"])
        quarantined = {
            r["reason"]: r["n"] for r in quarantine.groupBy("reason").agg(F.count("*").alias("n")).collect()
        }
        manifest = spark.createDataFrame(
            [(f, *prints[f], per_file.get(f, 0)) for f in files], INGEST_FILES
        ).withColumns(stamp)
        delta.merge(manifest, delta.table_ref(cfg.storage, "ingest_files"), keys=["path", "size", "mtime_ns"])
    finally:
        parsed.unpersist()
    return records, docs.rows_inserted, quar.rows_inserted, quarantined


def result_metrics(result: IngestResult) -> dict[str, float]:
    metrics = {k: v for k, v in dataclasses.asdict(result).items() if isinstance(v, int)}
    metrics.update({f"quarantined_{reason}": n for reason, n in result.quarantined.items()})
    metrics["quarantined_total"] = result.quarantined_total
    return metrics


def sample_corpus_dir(cfg: PipelineConfig) -> Path:
    """The embedded corpus, written on first use; a size change in config rewrites it."""
    from slm_curator.sample_corpus import write_sample_corpus

    folder = Path(cfg.storage.root) / "sample_corpus" / f"n{cfg.ingest.sample_documents}"
    marker = folder / "_COMPLETE"
    if not marker.exists():
        log.info(
            "writing the embedded sample corpus (%d documents) to %s", cfg.ingest.sample_documents, folder
        )
        write_sample_corpus(folder, cfg.ingest.sample_documents)
        marker.write_text("ok\n")
    return folder


def _log_input_files(tracker, files: list[str]) -> None:
    import tempfile

    listing = [{"path": f, "bytes": os.path.getsize(f) if os.path.exists(f) else None} for f in files]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input_files.json"
        path.write_text(json.dumps(listing, indent=1))
        tracker.log_artifact(str(path))


def _notes(result: IngestResult) -> list[str]:
    if result.files_skipped == result.files:
        return [f"nothing new: all {result.files} files are unchanged since they were ingested"]
    if result.documents_inserted == 0 and result.quarantine_inserted == 0 and result.records > 0:
        return [
            f"nothing new: all {result.records - result.quarantined_total} documents were already ingested"
        ]
    return [f"{result.files_skipped} unchanged files skipped"] if result.files_skipped else []


def ingest_work(ctx: StageContext) -> StageResult:
    inputs = ctx.cfg.ingest.input or [str(sample_corpus_dir(ctx.cfg))]
    files = list_input_files(inputs)
    log.info("ingest: reading %d files from %s", len(files), ", ".join(inputs))
    result = run_ingest(ctx.spark, ctx.cfg, ctx.run_id, files)
    _log_input_files(ctx.tracker, files)
    return StageResult(
        input_rows=result.records,
        output_rows=result.records - result.quarantined_total,
        new_rows=result.documents_inserted,
        version=result.documents_version,
        notes=_notes(result),
        details={f"quarantined:{k}": v for k, v in result.quarantined.items()},
        metrics=result_metrics(result),
        outputs=[(delta.table_ref(ctx.cfg.storage, "quarantine"), result.quarantine_version)],
    )


def records_read(spark, cfg: PipelineConfig) -> int:
    """What the documents gate compares with: every record ingested so far, accepted or quarantined."""
    refs = [delta.table_ref(cfg.storage, name) for name in ("documents", "quarantine")]
    return sum(delta.read(spark, ref).count() for ref in refs if delta.exists(spark, ref))


STAGE = Stage(
    name="ingest",
    description="raw files -> documents + quarantine Delta tables",
    work=ingest_work,
    output="documents",
    input_rows=records_read,
    arguments=(
        Argument(
            "--input",
            "file, folder or glob to ingest (repeatable; default: the embedded sample corpus)",
            config_key="ingest.input",
            metavar="PATH",
            in_pipeline=True,
        ),
    ),
)
