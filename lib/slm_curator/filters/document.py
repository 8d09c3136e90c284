"""All enabled filter families over one parse of a document: signals, cleaned text, drop reasons.

The text is split into lines once and each line into tokens once; the document's words are the
concatenation of its lines' tokens (tokens never cross a newline), so C4's per-line sentence counts and
the document-level Gopher and FineWeb statistics share one pass. Every family sees the raw text; C4's
line cleaning produces `text_clean` for the stages after this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain

from slm_curator.filters import gopher_quality
from slm_curator.filters.family import Document, Signal
from slm_curator.filters.registry import FAMILIES
from slm_curator.text import native, tokenize

# Computed for every document whatever families are enabled.
CORE_SIGNALS = [Signal("n_chars"), Signal("n_tokens"), Signal("n_lines")]
EMPTY_TEXT = "empty_text"


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


class Filters:
    """The enabled families of one `FilterConfig`, with their rules built once: what the UDF runs."""

    def __init__(self, cfg):
        self.enabled = [(f, getattr(cfg, f.name)) for f in FAMILIES if getattr(cfg, f.name).enabled]
        self._plan = [(f, section, f.rules(section)) for f, section in self.enabled]
        self.engine_choice = getattr(cfg, "engine", "auto")
        self._engine = native.engine(self.engine_choice)  # here: a config error surfaces on the driver

    @property
    def engine(self) -> native.Engine:
        if self._engine is None:  # unpickled in a Python worker: that worker's own kernels
            self._engine = native.engine(self.engine_choice)
        return self._engine

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_engine": None}  # compiled objects do not pickle; rebuilt where used

    def signals(self) -> list[Signal]:
        """Every signal `analyze` reports, in the order of the UDF's struct."""
        return [*CORE_SIGNALS, *(s for f, section in self.enabled for s in f.signals(section))]

    def signal_names(self) -> list[str]:
        return [s.name for s in self.signals()]

    def reasons(self) -> list[str]:
        """Every drop reason `analyze` can give."""
        return [EMPTY_TEXT, *(r for f, section in self.enabled for r in f.reasons(section))]

    def analyze(self, text: str) -> Analysis:
        text = _valid_utf8(text or "")
        if not text.strip():
            return Analysis("", {"n_chars": len(text)}, [EMPTY_TEXT], "unknown", 0.0, {"empty": [EMPTY_TEXT]})
        engine = self.engine
        lines = text.splitlines()
        line_tokens = list(map(engine.words, lines))
        tokens = list(chain.from_iterable(line_tokens))
        doc = Document(text, lines, line_tokens, tokens, text_clean=text, engine=engine)
        signals: dict[str, float] = {"n_chars": len(text), "n_tokens": len(tokens), "n_lines": len(lines)}
        families: dict[str, list[str]] = {}
        for family, section, rules in self._plan:
            mine = family.compute(doc, section)
            signals.update(mine)
            families[family.name] = family.decide(mine, doc, section, rules)
        reasons = [r for family in families.values() for r in family]
        return Analysis(doc.text_clean, signals, reasons, doc.language, doc.language_score, families)


def analyze(text: str, cfg) -> Analysis:
    """One document under `cfg` (a FilterConfig); build `Filters(cfg)` once to analyse many."""
    return Filters(cfg).analyze(text)


def signal_names(cfg) -> list[str]:
    return Filters(cfg).signal_names()


def clear_caches() -> None:
    """Empty the memo tables (whitespace runs -> tokens, token shapes, punctuation): a cold start, as a
    new Python worker has. Results never depend on them; benchmarks call this before each timed run."""
    tokenize.clear_memo()
    native.clear_memo()
    gopher_quality.clear_memo()


def _valid_utf8(text: str) -> str:
    """Lone surrogates (from bad decoding upstream) cannot be written to Arrow or read by lingua."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")
