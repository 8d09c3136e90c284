"""The filter families, in the order they run. Adding a family is one module and one line here.

Order matters where a family reads what an earlier one published: C4 cleans the text, language ID
sets the language that picks the bad-words list.
"""

from __future__ import annotations

from slm_curator.filters import bad_words, c4, fineweb, gopher_quality, gopher_repetition, language
from slm_curator.filters.family import Family

FAMILIES: tuple[Family, ...] = (
    c4.FAMILY,
    gopher_quality.FAMILY,
    gopher_repetition.FAMILY,
    fineweb.FAMILY,
    language.FAMILY,
    bad_words.FAMILY,
)
