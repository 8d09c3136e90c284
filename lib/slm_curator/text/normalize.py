"""Text normalisation for duplicate detection: two pages that differ only in case, spacing,
punctuation or (optionally) digits are the same document to a language model's training set.

Each option is one C-speed pass: punctuation and symbols go through one compiled `regex` class
(Unicode categories P and S, from the regex module's Unicode tables, pinned with it), twice as fast
as `str.translate` with a per-character table; the digit table is built once per process.
"""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import regex

_PUNCTUATION = regex.compile(r"[\p{P}\p{S}]")

UnicodeForm = Literal["NFC", "NFKC", "NFD", "NFKD", "none"]


@dataclass(frozen=True)
class Normalization:
    """What is erased before hashing and shingling (dedup.normalize)."""

    # Case-fold.
    lowercase: bool = True
    # Runs of whitespace -> one space, ends stripped.
    whitespace: bool = True
    # Unicode punctuation and symbols -> a space.
    punctuation: bool = True
    # Every decimal digit -> 0 (dates, counters and prices stop mattering).
    digits: bool = False
    # Unicode normal form applied first (NFKC folds full-width and compatibility characters); none: as is.
    unicode_form: UnicodeForm = "NFKC"


@lru_cache(maxsize=1)
def _digit_table() -> dict[int, str]:
    return {cp: "0" for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Nd"}


def normalize(text: str | None, how: Normalization = Normalization()) -> str:
    """`text` with what `how` erases erased; None is the empty string."""
    if not text:
        return ""
    if how.unicode_form != "none":
        text = unicodedata.normalize(how.unicode_form, text)
    if how.lowercase:
        text = text.lower()
    if how.punctuation:
        text = _PUNCTUATION.sub(" ", text)
    if how.digits:
        text = text.translate(_digit_table())
    if how.whitespace:
        text = " ".join(text.split())
    return text


def words(normalized: str) -> list[str]:
    """Shingling words: whitespace-separated, whatever the normalisation kept."""
    return normalized.split()
