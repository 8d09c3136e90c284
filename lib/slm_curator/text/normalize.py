"""Text normalisation for duplicate detection: two pages that differ only in case, spacing,
punctuation or (optionally) digits are the same document to a language model's training set.

A batch is normalised at once with Arrow's string kernels (utf8proc case mapping, RE2 Unicode
classes): a few C passes over one buffer instead of a Python call per document and step, which
halves what normalising and splitting cost. The Unicode normal form stays Python's `unicodedata`,
because Arrow 21's `utf8_normalize` does not compose (its "NFC" and "NFKC" come back decomposed).
`normalize` and `words` are the one-document views of the same code, so every caller agrees.

Chinese and Japanese put no spaces between words: split at whitespace, a "word" there is a whole clause
(punctuation erased) and one changed character changes it: nine real Chinese and Japanese pages with
1% of their characters changed kept word 5-gram Jaccard 0.37-0.83 to the original, eight below the 0.8
threshold. Each Han, Hiragana and Katakana character is therefore a word of its own (`cjk_characters`;
0.90-0.94 on the same pages). Korean and Thai are left to whitespace: Korean spaces its words, and a
Thai letter is not a syllable.
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
# Characters that are words by themselves: Han (with the iteration mark), kana, the prolonged sound mark.
_CJK_CHARACTER = r"([\p{Han}\p{Hiragana}\p{Katakana}\x{3005}\x{30fc}])"
# Whitespace to Arrow's Unicode kernel but not to its ASCII one (all of it, U+0000-U+10FFFF, checked)
_UNICODE_SPACE = r"[\x1c-\x1f\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"

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
    # Each Han, Hiragana and Katakana character is a word (those scripts put no spaces between words).
    cjk_characters: bool = True


def _as_arrow(texts: Sequence[str | None] | pa.Array) -> pa.LargeStringArray:
    """Texts as one Arrow array; None (or any non-string, such as pandas' NaN) is empty."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if isinstance(texts, pa.Array):
        return texts.cast(pa.large_string()).fill_null("")
    return pa.array([t if isinstance(t, str) else "" for t in texts], pa.large_string())


def _unicode_normalized(arr: pa.LargeStringArray, form: str) -> pa.LargeStringArray:
    """Python's normal form on the texts that need it: ASCII is in every normal form already."""
    odd = pc.invert(pc.string_is_ascii(arr))
    if not pc.any(odd).as_py():
        return arr
    fixed = [unicodedata.normalize(form, t) for t in arr.filter(odd).to_pylist()]
    return pc.replace_with_mask(arr, odd, pa.array(fixed, pa.large_string()))


def _erased(texts: Sequence[str | None] | pa.Array, how: Normalization) -> pa.LargeStringArray:
    """Every step but the whitespace one."""
    arr = _as_arrow(texts)
    if how.unicode_form != "none":
        arr = _unicode_normalized(arr, how.unicode_form)
    if how.lowercase:
        arr = pc.utf8_lower(arr)
    if how.punctuation:
        arr = pc.replace_substring_regex(arr, _PUNCTUATION, " ")
    if how.digits:
        arr = pc.replace_substring_regex(arr, _DIGIT, "0")
    return arr


def _cjk_spaced(texts: pa.Array) -> pa.Array:
    """A space on both sides of every Han and kana character (only texts holding one are rewritten)."""
    hit = pc.match_substring_regex(texts, _CJK_CHARACTER)
    if not pc.any(hit).as_py():
        return texts
    spaced = pc.replace_substring_regex(texts.filter(hit), _CJK_CHARACTER, r" \1 ")
    return pc.replace_with_mask(texts, hit, spaced)


def _ascii_split(texts: pa.Array) -> pa.Array:
    return pc.ascii_split_whitespace(pc.ascii_trim_whitespace(texts))  # trimmed: no empty end words


def _utf8_split(texts: pa.Array) -> pa.Array:
    return pc.utf8_split_whitespace(pc.utf8_trim_whitespace(texts))


def _split_whitespace(texts: pa.Array) -> pa.Array:
    """`utf8_split_whitespace`, with every text free of non-ASCII whitespace (after NFKC, nearly all)
    on the ASCII kernel, 4x faster and the same split: UTF-8 continuation bytes are never ASCII."""
    slow = pc.match_substring_regex(texts, _UNICODE_SPACE).fill_null(False).to_numpy(zero_copy_only=False)
    if not slow.any():
        return _ascii_split(texts)
    if slow.all():
        return _utf8_split(texts)
    quick, rest = np.flatnonzero(~slow), np.flatnonzero(slow)
    both = pa.concat_arrays([_ascii_split(texts.take(quick)), _utf8_split(texts.take(rest))])
    order = np.empty(len(texts), dtype=np.int64)
    order[np.concatenate((quick, rest))] = np.arange(len(texts))
    return both.take(pa.array(order))


def split_words(texts: pa.Array) -> pa.LargeListArray:
    """Per text, its whitespace-separated words (no empty ones), as one Arrow list array."""
    lists = _split_whitespace(texts)
    flat = lists.flatten()
    nonempty = pc.not_equal(pc.binary_length(flat), 0)
    if pc.all(nonempty).as_py() is not False:  # no blank text in the batch
        return lists.cast(pa.large_list(pa.large_string()))
    parents = pc.list_parent_indices(lists).to_numpy()
    counts = np.bincount(parents[nonempty.to_numpy(zero_copy_only=False)], minlength=len(texts))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return pa.LargeListArray.from_arrays(pa.array(offsets), flat.filter(nonempty))


def normalize_batch(texts: Sequence[str | None] | pa.Array, how: Normalization = Normalization()):
    """(normalised texts as str, their words as an Arrow list array), for a batch of documents (a
    sequence or an Arrow string array; None is the empty text)."""
    erased = _erased(texts, how)
    word_lists = split_words(_cjk_spaced(erased) if how.cjk_characters else erased)
    normalized = pc.binary_join(word_lists, pa.scalar(" ", pa.large_string())) if how.whitespace else erased
    return normalized.to_numpy(zero_copy_only=False).tolist(), word_lists


def normalize(text: str | None, how: Normalization = Normalization()) -> str:
    """`text` with what `how` erases erased; None is the empty string."""
    return normalize_batch([text], how)[0][0]


def words(normalized: str, how: Normalization = Normalization()) -> list[str]:
    """Shingling words: whitespace-separated, whatever the normalisation kept (Han and kana one each)."""
    texts = pa.array([normalized], pa.large_string())
    return split_words(_cjk_spaced(texts) if how.cjk_characters else texts)[0].as_py()
