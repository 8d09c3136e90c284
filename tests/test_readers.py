"""Pure readers: every record becomes a document or a quarantine row with a reason; no Spark."""

from __future__ import annotations

import collections
import gzip
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import shared_data

from slm_curator.ingest.readers import (
    QUARANTINE_REASONS,
    ReaderOptions,
    detect_format,
    doc_id,
    parse_file,
    source_name,
)
from slm_curator.sample_corpus import write_sample_corpus

OPTS = ReaderOptions()


def reasons(path, opts=OPTS):
    return collections.Counter(r.reason for r in parse_file(str(path), opts))


def test_format_and_source_from_file_names():
    assert detect_format("a/b/c4-sample.01.json.gz") == "jsonl"
    assert detect_format("x.warc.wet.gz") == "warc"
    assert detect_format("x.PARQUET") == "parquet"
    assert detect_format("x.tsv") == "csv"
    assert detect_format("x.bin") is None
    assert source_name("/d/c4-sample.01.json.gz") == "c4-sample.01"
    assert source_name("whirlwind.warc.wet.gz") == "whirlwind"


def test_doc_id_is_stable_and_distinguishes_sources():
    assert doc_id("c4", "1") == doc_id("c4", "1")
    assert doc_id("c4", "1") != doc_id("dolma", "1")
    assert re.fullmatch(r"[0-9a-f]{32}", doc_id("c4", "1"))


def test_jsonl_broken_records_each_get_their_reason(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "hello world", "url": "https://x", "lang": "en"}).encode(),
        b'{"id": "b", "text": "unterminated',
        b"[1, 2]",
        json.dumps({"id": "c", "body": "no text"}).encode(),
        json.dumps({"id": "d", "text": "  "}).encode(),
        b'{"id": "e", "text": "caf\xe9"}',
        json.dumps({"id": "f", "text": "x" * 300}).encode(),
        b"",
        json.dumps({"id": "g", "html": "<html><body><p>Extracted from HTML.</p></body></html>"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    rows = list(parse_file(str(path), ReaderOptions(max_doc_bytes=200, preview_chars=50)))
    got = {(r.source_id or str(r.offset)): r.reason for r in rows}
    assert got == {
        "a": None,
        "2": "bad_json",
        "3": "not_an_object",
        "c": "missing_text",
        "d": "empty_text",
        "6": "undecodable_bytes",
        "f": "too_large",
        "g": None,
    }
    first = rows[0]
    assert (first.url, first.meta, first.text, first.offset) == (
        "https://x",
        {"lang": "en"},
        "hello world",
        1,
    )
    html_doc = rows[-1]
    assert "Extracted from HTML." in html_doc.text and html_doc.meta["extracted_from"] == "html"
    assert all(len(r.raw or "") <= 50 for r in rows)
    assert {r.reason for r in rows} - {None} <= set(QUARANTINE_REASONS)


def test_custom_field_names_and_nested_paths(tmp_path):
    path = tmp_path / "custom.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps({"key": 7, "content": "body text", "metadata": {"url": "https://y"}}) + "\n")
    opts = ReaderOptions(text_field="content", id_field="key", url_field="metadata.url")
    (row,) = parse_file(str(path), opts)
    assert (row.source_id, row.text, row.url, row.reason) == ("7", "body text", "https://y", None)


def test_csv_rows_and_ragged_rows(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text('id,text\n1,"first, with comma"\n2,"multi\nline"\n3\n4,fine,extra\n')
    rows = list(parse_file(str(path), OPTS))
    assert [(r.source_id, r.reason) for r in rows] == [
        ("1", None),
        ("2", None),
        (None, "bad_csv_row"),
        (None, "bad_csv_row"),
    ]
    assert rows[1].text == "multi\nline"


def test_parquet_rows(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": ["some text", None], "score": [1.5, 2.0]}), path)
    rows = list(parse_file(str(path), OPTS))
    assert [(r.source_id, r.reason) for r in rows] == [("p1", None), ("p2", "missing_text")]
    assert rows[0].meta == {"score": 1.5}


def test_plain_text_by_file_and_by_paragraph(tmp_path):
    path = tmp_path / "essay.txt"
    path.write_text("First block line one.\nline two.\n\n\nSecond block.\n\nThird.\n")
    (whole,) = parse_file(str(path), OPTS)
    assert whole.source_id == "essay.txt" and whole.text.startswith("First block")
    blocks = list(parse_file(str(path), ReaderOptions(text_mode="paragraph")))
    assert [b.text for b in blocks] == ["First block line one.\nline two.", "Second block.", "Third."]
    assert [b.source_id for b in blocks] == ["essay.txt#0", "essay.txt#1", "essay.txt#2"]


def test_truncated_gzip_keeps_what_was_read_and_reports_the_break(tmp_path):
    good = b"".join(json.dumps({"id": i, "text": f"doc {i} " * 50}).encode() + b"\n" for i in range(200))
    blob = gzip.compress(good)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(blob[: len(blob) // 2])
    rows = list(parse_file(str(path), OPTS))
    assert rows[-1].reason == "unreadable_file"
    assert 0 < sum(r.reason is None for r in rows) < 200


def test_unsupported_format_is_quarantined(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00\x01")
    (row,) = parse_file(str(path), OPTS)
    assert row.reason == "unsupported_format"


def test_warc_responses_non_html_and_errors(tmp_path):
    folder = write_sample_corpus(tmp_path / "corpus", documents=500)
    rows = list(parse_file(str(folder / "crawl.warc.gz"), OPTS))
    counts = collections.Counter(r.reason for r in rows)
    assert counts["non_html_payload"] >= 1 and counts["http_status_not_ok"] >= 1
    docs = [r for r in rows if r.reason is None]
    assert docs and all(r.url.startswith("https://blog") for r in docs)
    # main-content extraction drops the navigation list and keeps the article
    assert all("Login" not in r.text.split("\n")[0] for r in docs)


# ---- the real files in ../shared/data: record counts checked independently of the readers ----


def _jsonl_records(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def _warc_records(path):
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    return len(re.findall(rb"^WARC-Type: (?:response|resource|conversion)\r?$", data, flags=re.M))


@pytest.mark.parametrize("folder", ["web", "warc", "html"])
def test_every_shared_record_is_accounted_for(folder):
    base = shared_data(folder)
    files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert files
    for path in files:
        fmt = detect_format(str(path))
        expected = {"jsonl": _jsonl_records, "warc": _warc_records}.get(fmt, lambda p: 1)(path)
        rows = list(parse_file(str(path), OPTS))
        assert len(rows) == expected, path.name
        assert all(r.reason in (None, *QUARANTINE_REASONS) for r in rows)
        assert sum(r.reason is None for r in rows) > 0, path.name


def test_shared_dolma_sample_empty_documents_are_quarantined():
    path = shared_data("web", "dolma_cc_2019-30_sample.jsonl.gz")
    assert reasons(path) == collections.Counter({None: 670, "empty_text": 27})
