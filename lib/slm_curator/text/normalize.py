"""Text normalisation for duplicate detection: two pages that differ only in case, spacing,
punctuation or (optionally) digits are the same document to a language model's training set.

A batch is normalised at once with Arrow's string kernels (utf8proc case mapping, RE2 Unicode
classes): a few C passes over one buffer instead of a Python call per document and step, which
halves what normalising and splitting cost. The Unicode normal form stays Python's `unicodedata`,
because Arrow 21's `utf8_normalize` does not compose (its "NFC" and "NFKC" come back decomposed).
`normalize` and `words` are the one-document views of the same code, so every caller agrees.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_PUNCTUATION = r"[\p{P}\p{S}]"  # RE2: Unicode categories P and S
_DIGIT = r"\p{Nd}"

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


def _erased(texts: Sequence[str | None], how: Normalization) -> pa.LargeStringArray:
    """Every step but the whitespace one; None (or any non-string, such as pandas' NaN) is empty."""
    values = [t if isinstance(t, str) else "" for t in texts]
    if how.unicode_form != "none":
        values = [unicodedata.normalize(how.unicode_form, t) for t in values]
    arr = pa.array(values, pa.large_string())
    if how.lowercase:
        arr = pc.utf8_lower(arr)
    if how.punctuation:
        arr = pc.replace_substring_regex(arr, _PUNCTUATION, " ")
    if how.digits:
        arr = pc.replace_substring_regex(arr, _DIGIT, "0")
    return arr


def split_words(texts: pa.Array) -> pa.LargeListArray:
    """Per text, its whitespace-separated words (no empty ones), as one Arrow list array."""
    lists = pc.utf8_split_whitespace(texts)
    flat = lists.flatten()
    nonempty = pc.not_equal(pc.binary_length(flat), 0)
    parents = pc.list_parent_indices(lists).to_numpy()
    counts = np.bincount(parents[nonempty.to_numpy(zero_copy_only=False)], minlength=len(texts))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return pa.LargeListArray.from_arrays(pa.array(offsets), flat.filter(nonempty))


def normalize_batch(texts: Sequence[str | None], how: Normalization = Normalization()):
    """(normalised texts as str, their words as an Arrow list array), for a batch of documents."""
    erased = _erased(texts, how)
    word_lists = split_words(erased)
    normalized = pc.binary_join(word_lists, pa.scalar(" ", pa.large_string())) if how.whitespace else erased
    return normalized.to_pylist(), word_lists


def normalize(text: str | None, how: Normalization = Normalization()) -> str:
    """`text` with what `how` erases erased; None is the empty string."""
    return normalize_batch([text], how)[0][0]


def words(normalized: str) -> list[str]:
    """Shingling words: whitespace-separated, whatever the normalisation kept."""
    return split_words(pa.array([normalized], pa.large_string()))[0].as_py()
