"""datatrove's four filters (the reference) and our config with the same four families only."""

from __future__ import annotations

import dataclasses


def reference_filters() -> dict:
    """Family name -> datatrove filter, default settings (spaCy's English tokenizer inside)."""
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return {
        "c4": C4QualityFilter(),
        "gopher": GopherQualityFilter(),
        "gopher_repetition": GopherRepetitionFilter(),
        "fineweb": FineWebQualityFilter(),
    }


def four_families(cfg=None):
    """`cfg` (default: the defaults) without language ID and bad words, which datatrove's four lack."""
    from slm_curator.config import FilterConfig

    base = cfg or FilterConfig()
    return dataclasses.replace(
        base,
        language=dataclasses.replace(base.language, enabled=False),
        bad_words=dataclasses.replace(base.bad_words, enabled=False),
    )


def datatrove_drops(filters: dict, text: str, doc_id: str) -> dict[str, bool]:
    """Family name -> whether datatrove drops `text`."""
    from datatrove.data import Document

    return {name: f.filter(Document(text=text, id=doc_id)) is not True for name, f in filters.items()}
