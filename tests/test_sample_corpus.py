"""The embedded corpus is deterministic and holds what each stage must handle."""

from __future__ import annotations

import collections
import gzip
import json

from slm_curator.ingest.readers import ReaderOptions, parse_file
from slm_curator.sample_corpus import write_sample_corpus


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_and_size_give_identical_bytes(tmp_path):
    a = write_sample_corpus(tmp_path / "a", documents=400)
    b = write_sample_corpus(tmp_path / "b", documents=400)
    assert _files(a) == _files(b)
    c = write_sample_corpus(tmp_path / "c", documents=400, seed=99)
    assert _files(a) != _files(c)


def test_corpus_mixes_junk_duplicates_languages_and_broken_records(tmp_path):
    folder = write_sample_corpus(tmp_path / "s", documents=1000)
    with gzip.open(folder / "web_pages.jsonl.gz", "rt") as fh:
        web = [json.loads(line) for line in fh]
    texts = collections.Counter(d["text"] for d in web)
    assert any(n > 1 for n in texts.values()), "exact duplicates"
    assert {d["language_hint"] for d in web} >= {"en", "de", "fr", "es"}
    assert any("Lorem ipsum" in t for t in texts)
    assert any("{" in t for t in texts), "code"
    assert any("Mon Tue Wed" in t for t in texts), "calendar junk"
    assert any("All rights reserved" in t for t in texts), "boilerplate"
    reasons = collections.Counter(r.reason for r in parse_file(str(folder / "broken.jsonl"), ReaderOptions()))
    assert reasons[None] == 2 and sum(reasons.values()) == 9
    formats = {p.suffix for p in folder.rglob("*") if p.is_file()}
    assert formats >= {".gz", ".jsonl", ".parquet", ".txt"}
