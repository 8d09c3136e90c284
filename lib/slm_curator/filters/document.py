"""All heuristics over one tokenisation of a document: signals, cleaned text, drop reasons.

The text is split into lines once and each line into tokens once; the document's words are the
concatenation of its lines' tokens (tokens never cross a newline), so C4's per-line sentence counts and
the document-level Gopher and FineWeb statistics share one pass. Every filter sees the raw text;
C4's line cleaning produces `text_clean` for the stages after this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slm_curator.config import FilterConfig
from slm_curator.filters import bad_words, c4, fineweb, gopher_quality, gopher_repetition, language
from slm_curator.text.tokenize import words


@dataclass
class Analysis:
    text_clean: str
    signals: dict[str, float]
    reasons: list[str]
    language: str
    language_score: float
    families: dict[str, list[str]] = field(default_factory=dict)

    @property
    def keep(self) -> bool:
        return not self.reasons


def analyze(text: str, cfg: FilterConfig) -> Analysis:
    text = _valid_utf8(text or "")
    if not text.strip():
        return Analysis(
            "", {"n_chars": len(text or "")}, ["empty_text"], "unknown", 0.0, {"empty": ["empty_text"]}
        )
    lines = text.splitlines()
    line_tokens = [words(line) for line in lines]
    tokens = [t for toks in line_tokens for t in toks]
    signals: dict[str, Any] = {"n_chars": len(text), "n_tokens": len(tokens), "n_lines": len(lines)}
    families: dict[str, list[str]] = {}

    text_clean = text
    if cfg.c4.enabled:
        text_clean, s = c4.clean(lines, line_tokens, cfg.c4)
        signals.update(s)
        families["c4"] = c4.reasons(s, cfg.c4)
    if cfg.gopher.enabled:
        s = gopher_quality.signals(text, tokens, lines, frozenset(cfg.gopher.stop_words))
        signals.update(s)
        families["gopher"] = gopher_quality.reasons(s, cfg.gopher)
    if cfg.gopher_repetition.enabled:
        s = gopher_repetition.signals(text, tokens, cfg.gopher_repetition)
        signals.update(s)
        families["gopher_repetition"] = gopher_repetition.reasons(s, cfg.gopher_repetition)
    if cfg.fineweb.enabled:
        s = fineweb.signals(text, len(tokens), cfg.fineweb.short_line_length)
        signals.update(s)
        families["fineweb"] = fineweb.reasons(s, cfg.fineweb)

    lang, score = ("unknown", 0.0)
    if cfg.language.enabled:
        lang, score = language.detect(text, cfg.language)
        families["language"] = language.reasons(lang, score, cfg.language)
    if cfg.bad_words.enabled:
        lang_for_list = lang if lang != "unknown" else cfg.bad_words.default_language
        matches = bad_words.count(tokens, text, lang_for_list, cfg.bad_words.default_language)
        signals["bad_words"] = matches
        families["bad_words"] = bad_words.reasons(matches, cfg.bad_words.max_matches)
    reasons = [r for family in families.values() for r in family]
    return Analysis(text_clean, signals, reasons, lang, score, families)


def _valid_utf8(text: str) -> str:
    """Lone surrogates (from bad decoding upstream) cannot be written to Arrow or read by lingua."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")


def signal_names(cfg: FilterConfig) -> list[str]:
    """Every signal key `analyze` produces under this config, in a stable order (the struct's fields)."""
    probe = "The quick brown fox jumps over the lazy dog. It was the best of times, and that is all.\n" * 3
    return list(analyze(probe, _without_models(cfg)).signals)


def _without_models(cfg: FilterConfig) -> FilterConfig:
    import dataclasses

    return dataclasses.replace(cfg, language=dataclasses.replace(cfg.language, enabled=False))
