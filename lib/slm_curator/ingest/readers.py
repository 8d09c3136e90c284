"""Streaming readers for raw corpora: one generator per format, no Spark.

Every reader yields one `Parsed` row per input record, either a document or a quarantine row with a
snake_case reason, so that `documents + quarantine == records in the input` holds for every file and
nothing is dropped silently. Files are streamed, never loaded whole, so a multi-GB WARC costs one task's
buffer, not its size in memory.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

# The quarantine vocabulary. Checks (issue: data-quality gates) assert reasons come from this set.
QUARANTINE_REASONS = (
    "bad_json",
    "not_an_object",
    "missing_text",
    "empty_text",
    "undecodable_bytes",
    "too_large",
    "bad_csv_row",
    "non_html_payload",
    "http_status_not_ok",
    "unreadable_file",
    "unsupported_format",
    "duplicate_id",
)

FORMATS = ("jsonl", "parquet", "csv", "text", "html", "warc")

_SUFFIXES = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "text",
    ".text": "text",
    ".md": "text",
    ".html": "html",
    ".htm": "html",
    ".warc": "warc",
    ".wet": "warc",
    ".arc": "warc",
}
_COMPRESSION = (".gz", ".gzip")


@dataclass(frozen=True)
class ReaderOptions:
    text_field: str = "text"
    html_field: str = "html"
    id_field: str = "id"
    url_field: str = "url"
    text_mode: str = "file"
    html_main_content: bool = True
    max_doc_bytes: int = 2_000_000
    preview_chars: int = 2000


@dataclass
class Parsed:
    """One input record's fate. `reason` is None for a document."""

    source: str
    file: str
    offset: int
    format: str
    source_id: str | None = None
    url: str | None = None
    text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    detail: str | None = None
    raw: str | None = None


def detect_format(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1].lower()
    for comp in _COMPRESSION:
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    dot = name.rfind(".")
    return _SUFFIXES.get(name[dot:]) if dot >= 0 else None


def source_name(path: str) -> str:
    """File name minus directory and format/compression suffixes: 'c4-sample.01.json.gz' -> 'c4-sample.01'."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    changed = True
    while changed:
        changed = False
        lower = name.lower()
        for suffix in (*_COMPRESSION, *_SUFFIXES):
            if lower.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                changed = True
                break
    return name


def doc_id(source: str, source_id: str) -> str:
    """Stable id: the same (source, source id) is the same document on every run and machine."""
    return hashlib.blake2b(f"{source}\x1f{source_id}".encode(), digest_size=16).hexdigest()


def open_binary(path: str) -> IO[bytes]:
    """Local paths with open(); URIs (s3://, hdfs://, gs://, abfss://) through pyarrow's filesystems."""
    if "://" in path and not path.startswith("file://"):
        from pyarrow import fs

        filesystem, inner = fs.FileSystem.from_uri(path)
        stream: IO[bytes] = filesystem.open_input_stream(inner, compression=None)
    else:
        stream = open(path.removeprefix("file://"), "rb")  # noqa: SIM115 - closed by the caller
    if path.lower().endswith(_COMPRESSION):
        return gzip.GzipFile(fileobj=stream)  # type: ignore[arg-type]
    return stream


# ----------------------------------------------------------------------------------------------
# Shared record logic
# ----------------------------------------------------------------------------------------------


def _lookup(record: dict[str, Any], dotted: str) -> Any:
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def html_to_text(html: str, main_content: bool = True) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=main_content)


def decode_html(payload: bytes) -> str:
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    return bytes_to_str(payload, detect_encoding(payload))


def _preview(raw: Any, opts: ReaderOptions) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    elif not isinstance(raw, str):
        raw = json.dumps(raw, ensure_ascii=False, default=str)
    return raw[: opts.preview_chars]


def _finish_text(row: Parsed, text: str, opts: ReaderOptions) -> Parsed:
    """Shared size and emptiness checks for every format."""
    if not text.strip():
        row.reason, row.detail = "empty_text", "text is empty or whitespace"
    elif len(text.encode("utf-8", errors="surrogatepass")) > opts.max_doc_bytes:
        row.reason, row.detail = (
            "too_large",
            f"{len(text.encode('utf-8', 'surrogatepass'))} bytes > {opts.max_doc_bytes}",
        )
    elif _has_surrogates(text):
        row.reason, row.detail = "undecodable_bytes", "text holds bytes that are not valid UTF-8"
    else:
        row.text = text
        return row
    row.raw = _preview(text, opts)
    return row


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def from_mapping(record: dict[str, Any], row: Parsed, opts: ReaderOptions) -> Parsed:
    """JSONL objects, Parquet rows and CSV rows share one mapping -> document rule."""
    text = _lookup(record, opts.text_field)
    html = _lookup(record, opts.html_field) if text is None else None
    rid = _lookup(record, opts.id_field)
    url = _lookup(record, opts.url_field)
    row.source_id = None if rid is None else str(rid)
    row.url = None if url is None else str(url)
    consumed = {opts.text_field, opts.html_field, opts.id_field, opts.url_field}
    row.meta = {k: v for k, v in record.items() if k not in consumed}
    if text is None and isinstance(html, str):
        if not html.strip():
            row.reason, row.detail, row.raw = (
                "empty_text",
                f"field {opts.html_field!r} is empty",
                _preview(record, opts),
            )
            return row
        text = html_to_text(html, opts.html_main_content)
        row.meta["extracted_from"] = opts.html_field
    if text is None:
        row.reason = "missing_text"
        row.detail = f"no {opts.text_field!r} (or {opts.html_field!r}) field; fields: {sorted(record)[:20]}"
        row.raw = _preview(record, opts)
        return row
    if not isinstance(text, str):
        row.reason, row.detail, row.raw = (
            "missing_text",
            f"{opts.text_field!r} is {type(text).__name__}, not text",
            _preview(record, opts),
        )
        return row
    return _finish_text(row, text, opts)


# ----------------------------------------------------------------------------------------------
# Formats
# ----------------------------------------------------------------------------------------------


def read_jsonl(stream: IO[bytes], source: str, file: str, opts: ReaderOptions) -> Iterator[Parsed]:
    for lineno, line in enumerate(stream, start=1):
        if not line.strip():
            continue  # blank lines separate nothing in JSONL: not records
        row = Parsed(source, file, lineno, "jsonl")
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            row.reason, row.detail, row.raw = "undecodable_bytes", str(exc)[:200], _preview(line, opts)
            yield row
            continue
        try:
            record = json.loads(decoded)
        except json.JSONDecodeError as exc:
            row.reason, row.detail, row.raw = "bad_json", str(exc)[:200], _preview(decoded, opts)
            yield row
            continue
        if not isinstance(record, dict):
            row.reason, row.detail, row.raw = (
                "not_an_object",
                f"a JSON {type(record).__name__}",
                _preview(decoded, opts),
            )
            yield row
            continue
        yield from_mapping(record, row, opts)


def read_parquet(stream: IO[bytes], source: str, file: str, opts: ReaderOptions) -> Iterator[Parsed]:
    import pyarrow.parquet as pq

    offset = 0
    for batch in pq.ParquetFile(stream).iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            offset += 1
            yield from_mapping(record, Parsed(source, file, offset, "parquet"), opts)


def read_csv(stream: IO[bytes], source: str, file: str, opts: ReaderOptions) -> Iterator[Parsed]:
    csv.field_size_limit(sys.maxsize)
    delimiter = "\t" if ".tsv" in file.lower() else ","
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    reader = csv.DictReader(text, delimiter=delimiter)
    header = reader.fieldnames or []
    for record in reader:
        row = Parsed(source, file, reader.line_num, "csv")
        if None in record or any(v is None for v in record.values()):
            row.reason = "bad_csv_row"
            row.detail = f"row has a different number of fields than the header ({len(header)})"
            row.raw = _preview({k if k is not None else "_extra": v for k, v in record.items()}, opts)
            yield row
            continue
        yield from_mapping(record, row, opts)


def read_text(stream: IO[bytes], source: str, file: str, opts: ReaderOptions) -> Iterator[Parsed]:
    name = file.rsplit("/", 1)[-1]
    data = stream.read()
    if opts.text_mode == "file":
        blocks = [data]
    else:
        blocks = [b for b in data.replace(b"\r\n", b"\n").split(b"\n\n") if b.strip()]
    for index, block in enumerate(blocks):
        row = Parsed(
            source, file, index, "text", source_id=name if opts.text_mode == "file" else f"{name}#{index}"
        )
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as exc:
            row.reason, row.detail, row.raw = "undecodable_bytes", str(exc)[:200], _preview(block, opts)
            yield row
            continue
        yield _finish_text(row, text.strip("\n") if opts.text_mode == "paragraph" else text, opts)


def read_html(stream: IO[bytes], source: str, file: str, opts: ReaderOptions) -> Iterator[Parsed]:
    payload = stream.read()
    row = Parsed(source, file, 0, "html", source_id=file.rsplit("/", 1)[-1])
    row.meta = {"extracted_from": "html"}
    yield _finish_text(row, html_to_text(decode_html(payload), opts.html_main_content), opts)


def read_warc(stream: IO[bytes], source: str, file: str, opts: ReaderOptions) -> Iterator[Parsed]:
    """WARC responses (HTML -> main text) and WET conversions; request/metadata records are not documents."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    wanted = WarcRecordType.response | WarcRecordType.conversion | WarcRecordType.resource
    for record in ArchiveIterator(stream, record_types=wanted, parse_http=True):
        headers = record.headers
        row = Parsed(source, file, int(record.stream_pos), "warc", source_id=record.record_id)
        row.url = headers.get("WARC-Target-URI")
        row.meta = {"warc_type": headers.get("WARC-Type"), "warc_date": headers.get("WARC-Date")}
        body = record.reader.read()
        if record.record_type == WarcRecordType.conversion:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                row.reason, row.detail, row.raw = "undecodable_bytes", str(exc)[:200], _preview(body, opts)
                yield row
                continue
            yield _finish_text(row, text, opts)
            continue
        content_type = (record.http_content_type or headers.get("Content-Type") or "").lower()
        status = record.http_headers.status_code if record.is_http and record.http_headers else None
        row.meta["content_type"] = content_type
        if status is not None:
            row.meta["http_status"] = status
        if status is not None and not 200 <= status < 300:
            row.reason, row.detail, row.raw = (
                "http_status_not_ok",
                f"HTTP {status}",
                _preview(body[:2000], opts),
            )
        elif "html" not in content_type:
            row.reason, row.detail, row.raw = (
                "non_html_payload",
                content_type or "no content type",
                _preview(body[:200], opts),
            )
        else:
            row.meta["extracted_from"] = "html"
            row = _finish_text(row, html_to_text(decode_html(body), opts.html_main_content), opts)
        yield row


READERS = {
    "jsonl": read_jsonl,
    "parquet": read_parquet,
    "csv": read_csv,
    "text": read_text,
    "html": read_html,
    "warc": read_warc,
}


def parse_file(path: str, opts: ReaderOptions, source: str | None = None) -> Iterator[Parsed]:
    """Every record of one file, documents and quarantine rows alike, in file order.

    A file that breaks mid-way (truncated gzip, corrupt Parquet) yields what it read, then one
    `unreadable_file` row at the point of failure, so a partial file is visible, not half-lost.
    """
    src = source or source_name(path)
    fmt = detect_format(path)
    if fmt is None:
        yield Parsed(
            src,
            path,
            0,
            "unknown",
            reason="unsupported_format",
            detail=f"no reader for this file name; known formats: {', '.join(FORMATS)}",
            raw=path,
        )
        return
    last = -1
    try:
        with open_binary(path) as stream:
            for row in READERS[fmt](stream, src, path, opts):
                last = row.offset
                yield row
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes a visible quarantine row
        yield Parsed(
            src,
            path,
            last + 1,
            fmt,
            reason="unreadable_file",
            detail=f"{type(exc).__name__}: {exc}"[:500],
            raw=None,
        )
