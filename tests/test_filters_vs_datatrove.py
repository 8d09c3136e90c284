"""Correctness bar: per filter, our keep/drop decision matches datatrove's on >= 98% of real web documents.

datatrove (with spaCy's English tokenizer) is the reference implementation of these heuristics; it is a
test-only dependency. Disagreements come from tokenisation (see README, "Filter decisions vs datatrove").
"""

from __future__ import annotations

import dataclasses
import gzip
import json

import pytest
from tests.conftest import shared_data

from slm_curator.config import FilterConfig
from slm_curator.filters.document import analyze

AGREEMENT_BAR = 0.98


def web_documents() -> list[str]:
    texts = []
    for path in sorted(shared_data("web").glob("*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                text = json.loads(line).get("text") or ""
                if text.strip():  # empty records never reach the filter stage (ingest quarantines them)
                    texts.append(text)
    return texts


@pytest.fixture(scope="module")
def decisions():
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    reference = {
        "c4": C4QualityFilter(),
        "gopher": GopherQualityFilter(),
        "gopher_repetition": GopherRepetitionFilter(),
        "fineweb": FineWebQualityFilter(),
    }
    base = FilterConfig()
    cfg = dataclasses.replace(
        base,
        language=dataclasses.replace(base.language, enabled=False),
        bad_words=dataclasses.replace(base.bad_words, enabled=False),
    )
    rows = []
    for i, text in enumerate(web_documents()):
        ours = analyze(text, cfg).families
        theirs = {name: f.filter(Document(text=text, id=str(i))) is True for name, f in reference.items()}
        rows.append({name: (not ours[name], theirs[name]) for name in reference})
    return rows


@pytest.mark.parametrize("family", ["c4", "gopher", "gopher_repetition", "fineweb"])
def test_keep_drop_agrees_with_datatrove(decisions, family):
    assert len(decisions) >= 1700  # all non-empty documents of ../shared/data/web
    agree = sum(ours == theirs for ours, theirs in (row[family] for row in decisions))
    rate = agree / len(decisions)
    assert rate >= AGREEMENT_BAR, f"{family}: {rate:.4f} agreement"
    # and the filter actually decides something: both keeps and drops occur
    assert 0 < sum(row[family][1] for row in decisions) < len(decisions)
