"""C4's bad-words rule: LDNOOBW lists (package data, CC BY 4.0) matched as whole words or phrases.

Matching happens in token space: each entry is tokenised like the documents, one-token entries are a
set lookup over the document's lower-cased tokens, and phrases are checked only where their first
token occurs. That is C4's word-boundary rule at a fraction of a regex alternation's cost. Scripts
written without spaces (Japanese, Chinese, Thai, Korean) have no word boundaries, so there entries
match as substrings, as in C4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from slm_curator.filters.family import Document, Family, Rule, Signal
from slm_curator.text.tokenize import words


@dataclass
class BadWordsConfig:
    """C4's bad-words rule with the LDNOOBW lists shipped as package data (CC BY 4.0)."""

    enabled: bool = True
    # Drop a document with more than this many matches (C4: any match drops the page).
    max_matches: int = 0
    # Language whose list applies when language ID is off or finds no list for the document's language.
    default_language: str = "en"


NO_SPACE_LANGUAGES = frozenset({"ja", "zh", "th", "ko"})


@dataclass(frozen=True)
class WordList:
    single: frozenset[str]
    phrases: dict[str, tuple[tuple[str, ...], ...]]  # first token -> token tuples
    substring: re.Pattern | None  # no-space scripts only


def available_languages() -> list[str]:
    folder = resources.files("slm_curator.filters") / "badwords"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt"))


@lru_cache(maxsize=64)
def load(language: str) -> WordList | None:
    path = resources.files("slm_curator.filters") / "badwords" / f"{language}.txt"
    if not path.is_file():
        return None
    entries = sorted({e.strip().lower() for e in path.read_text(encoding="utf-8").splitlines() if e.strip()})
    if language in NO_SPACE_LANGUAGES:
        body = "|".join(re.escape(e) for e in sorted(entries, key=len, reverse=True))
        return WordList(frozenset(), {}, re.compile(body))
    single: set[str] = set()
    phrases: dict[str, list[tuple[str, ...]]] = {}
    for entry in entries:
        toks = tuple(words(entry))
        if len(toks) == 1:
            single.add(toks[0])
        elif toks:
            phrases.setdefault(toks[0], []).append(toks)
    return WordList(frozenset(single), {k: tuple(v) for k, v in phrases.items()}, None)


def count(tokens: list[str], text: str, language: str, default_language: str = "en", engine=None) -> int:
    """Matches of the document language's list (or the default list when it has none). `engine`:
    kernels with the same results (`text.native.Engine`); None: this module's."""
    if load(language) is None:
        language = default_language
    wl = load(language)
    if wl is None:
        return 0
    if wl.substring is not None:
        return len(wl.substring.findall(text.lower()))
    return (engine.bad_words if engine else count_listed)(tokens, language)


def count_listed(tokens: list[str], language: str) -> int:
    """`count_tokens` with `language`'s token list."""
    return count_tokens(tokens, load(language))


def count_tokens(tokens: list[str], wl: WordList) -> int:
    """Lower-cased tokens that are one-word entries, plus the positions where a phrase entry starts."""
    vocabulary = set(map(str.lower, set(tokens)))  # unique tokens first: most documents match nothing
    # A phrase can only occur if all its words do: common first words ("one", "how") rarely go further.
    phrases = [
        phrase
        for first in wl.phrases.keys() & vocabulary
        for phrase in wl.phrases[first]
        if vocabulary.issuperset(phrase)
    ]
    if not phrases and wl.single.isdisjoint(vocabulary):
        return 0
    lowered = [t.lower() for t in tokens]
    return sum(map(wl.single.__contains__, lowered)) + sum(_occurrences(lowered, p) for p in phrases)


def _occurrences(tokens: list[str], phrase: tuple[str, ...]) -> int:
    """Positions where `phrase` starts, found by list.index (C speed) on its first word."""
    found, i, n = 0, -1, len(phrase)
    try:
        while True:
            i = tokens.index(phrase[0], i + 1)
            found += tuple(tokens[i : i + n]) == phrase
    except ValueError:
        return found


class BadWords(Family):
    """Reads the list of the document's language, which the language family (run before it) sets."""

    name = "bad_words"
    config = BadWordsConfig

    def signals(self, cfg: BadWordsConfig) -> list[Signal]:
        return [Signal("bad_words")]

    def rules(self, cfg: BadWordsConfig) -> list[Rule]:
        return [Rule("bad_words", "bad_words", "max", cfg.max_matches)]

    def compute(self, doc: Document, cfg: BadWordsConfig) -> dict[str, float]:
        lang = doc.language if doc.language != "unknown" else cfg.default_language
        return {"bad_words": count(doc.tokens, doc.text, lang, cfg.default_language, doc.engine)}


FAMILY = BadWords()
