"""Gopher quality rules (Rae et al. 2021, appendix A1): length, word shape, symbols, bullets, stop words."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import filterfalse
from pathlib import Path

from slm_curator.filters.family import Document, Family, Rule, Signal
from slm_curator.text.tokenize import MEMO_MAX_CHARS


@dataclass
class GopherQualityConfig:
    """Gopher quality rules (Rae et al. 2021, appendix A1)."""

    enabled: bool = True
    # Fewest words.
    min_doc_words: int = 50
    # Most words.
    max_doc_words: int = 100_000
    # Shortest mean word length.
    min_avg_word_length: float = 3.0
    # Longest mean word length.
    max_avg_word_length: float = 10.0
    # Most # or ... per word.
    max_symbol_word_ratio: float = 0.1
    # Most lines starting with a bullet.
    max_bullet_lines_ratio: float = 0.9
    # Most lines ending in an ellipsis.
    max_ellipsis_lines_ratio: float = 0.3
    # Fewest words with a letter.
    min_alpha_words_ratio: float = 0.8
    # Fewest stop words.
    min_stop_words: int = 2
    # The stop words counted.
    stop_words: list[str] = field(
        default_factory=lambda: ["the", "be", "to", "of", "and", "that", "have", "with"]
    )


def _punctuation() -> str:
    """datatrove's punctuation characters (exported by scripts/export_datatrove_punctuation.py)."""
    data = json.loads(Path(__file__).with_name("gopher_punctuation.json").read_text(encoding="utf-8"))
    return "".join(map(chr, data["code_points"]))


PUNCTUATION = _punctuation()


def is_symbol_word(word: str) -> bool:
    """Every character is punctuation in datatrove's sense (so emoji, "£" and "©" are words, as there)."""
    return not word.strip(PUNCTUATION)


def has_letter(word: str) -> bool:
    """At least one alphabetic character (str.isalpha: letters of any script; not digits or "²")."""
    return word.isalpha() or any(map(str.isalpha, word))


SYMBOL, LETTER, OTHER = 0, 1, 2
# Token -> its shape. Most non-alphabetic tokens (",", ".", "2019") recur across documents, so each
# regex runs once per distinct token; cleared when full, so memory stays bounded.
_SHAPES: dict[str, int] = {}


def _shape(word: str) -> int:
    shape = SYMBOL if is_symbol_word(word) else LETTER if has_letter(word) else OTHER
    if len(word) <= MEMO_MAX_CHARS:  # long tokens (URLs) are rarely seen twice
        if len(_SHAPES) >= 200_000:
            _SHAPES.clear()
        _SHAPES[word] = shape
    return shape


def clear_memo() -> None:
    _SHAPES.clear()


def token_counts(tokens: list[str], stop_words: list[str]) -> tuple[int, int, int, int, int]:
    """(symbol words, their characters, characters of all words, words with a letter, distinct stop
    words present): what Gopher quality reads off the tokens, in one pass."""
    # Most tokens are plain words: str.isalpha settles them at C speed; only the rest needs a shape.
    others = list(filterfalse(str.isalpha, tokens))
    shapes = list(map(_SHAPES.get, others))
    if None in shapes:
        shapes = [_shape(w) if s is None else s for w, s in zip(others, shapes, strict=True)]
    n_symbols = shapes.count(SYMBOL)
    symbol_chars = sum(len(w) for w, s in zip(others, shapes, strict=True) if s == SYMBOL) if n_symbols else 0
    alpha_words = len(tokens) - len(others) + shapes.count(LETTER)
    stop_hits = len(_stop_words(tuple(stop_words)).intersection(tokens))
    return n_symbols, symbol_chars, sum(map(len, tokens)), alpha_words, stop_hits


def signals(
    text: str, tokens: list[str], lines: list[str], stop_words: list[str], engine=None
) -> dict[str, float]:
    """`engine`: kernels with the same results (`text.native.Engine`); None: this module's."""
    n_words = len(tokens)
    counts = engine.gopher_counts if engine else token_counts
    n_symbols, symbol_chars, chars, alpha_words, stop_hits = counts(tokens, stop_words)
    n_content = n_words - n_symbols
    content_chars = chars - symbol_chars
    n_lines = len(lines) or 1
    return {
        "gopher_words": n_content,
        "gopher_mean_word_length": content_chars / n_content if n_content else 0.0,
        "gopher_hash_ratio": text.count("#") / n_words if n_words else 0.0,
        "gopher_ellipsis_ratio": (text.count("...") + text.count("…")) / n_words if n_words else 0.0,
        "gopher_bullet_lines_ratio": sum(ln.lstrip().startswith(("•", "-")) for ln in lines) / n_lines,
        "gopher_ellipsis_lines_ratio": sum(ln.rstrip().endswith(("...", "…")) for ln in lines) / n_lines,
        "gopher_alpha_words_ratio": alpha_words / n_words if n_words else 0.0,
        "gopher_stop_words": stop_hits,
    }


# "#" inside a URL token and "......" (two ellipses, one token) can put the symbol ratios above 1.
SIGNALS = [
    Signal("gopher_words"),
    Signal("gopher_mean_word_length"),
    Signal("gopher_hash_ratio"),
    Signal("gopher_ellipsis_ratio"),
    Signal("gopher_bullet_lines_ratio", 0.0, 1.0),
    Signal("gopher_ellipsis_lines_ratio", 0.0, 1.0),
    Signal("gopher_alpha_words_ratio", 0.0, 1.0),
    Signal("gopher_stop_words"),
]


@lru_cache(maxsize=8)
def _stop_words(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(words)


class GopherQuality(Family):
    name = "gopher"
    config = GopherQualityConfig

    def signals(self, cfg: GopherQualityConfig) -> list[Signal]:
        return SIGNALS

    def rules(self, cfg: GopherQualityConfig) -> list[Rule]:
        return [
            Rule("gopher_short_doc", "gopher_words", "min", cfg.min_doc_words),
            Rule("gopher_long_doc", "gopher_words", "max", cfg.max_doc_words),
            # A mean over no words is not "short words".
            Rule(
                "gopher_below_avg_word_length",
                "gopher_mean_word_length",
                "min",
                cfg.min_avg_word_length,
                "gopher_words",
            ),
            Rule("gopher_above_avg_word_length", "gopher_mean_word_length", "max", cfg.max_avg_word_length),
            Rule("gopher_too_many_hashes", "gopher_hash_ratio", "max", cfg.max_symbol_word_ratio),
            Rule("gopher_too_many_ellipsis", "gopher_ellipsis_ratio", "max", cfg.max_symbol_word_ratio),
            Rule("gopher_too_many_bullets", "gopher_bullet_lines_ratio", "max", cfg.max_bullet_lines_ratio),
            Rule(
                "gopher_too_many_end_ellipsis",
                "gopher_ellipsis_lines_ratio",
                "max",
                cfg.max_ellipsis_lines_ratio,
            ),
            Rule(
                "gopher_below_alpha_threshold", "gopher_alpha_words_ratio", "min", cfg.min_alpha_words_ratio
            ),
            Rule("gopher_few_stop_words", "gopher_stop_words", "min", cfg.min_stop_words),
        ]

    def compute(self, doc: Document, cfg: GopherQualityConfig) -> dict[str, float]:
        return signals(doc.text, doc.tokens, doc.lines, cfg.stop_words, doc.engine)


FAMILY = GopherQuality()
